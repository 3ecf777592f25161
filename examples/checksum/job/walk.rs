//! From the command line's paths to the work for the blocking stage: each
//! path in order; a directory walked depth-first with entries sorted by
//! name, so the output order is the sorted order of the paths under it.
//!
//! Runs on a thread of its own (`producer::from_blocking_iter`): every
//! `stat` and `readdir` here is blocking.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::entry::Entry;
use super::hash::describe_error;

/// One unit of work for the hashing stage, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// A path given by the user that is not a directory: read whatever it is.
    Named(PathBuf),
    /// A regular file found by the walk.
    Found(PathBuf),
    /// Decided without reading anything: a skipped file or an error.
    Done(Entry),
}

/// The filesystems whose files are not read unless named: their sizes are
/// made up (`/proc/self/pagemap` says 0 bytes and reads for hours), and
/// reading some of them has side effects.
#[derive(Debug, Clone)]
struct PseudoFs {
    /// `st_dev` of `/proc` and `/sys`, when they exist.
    devices: Vec<(u64, &'static str)>,
}

impl PseudoFs {
    fn detect() -> Self {
        let devices = [("/proc", "proc filesystem"), ("/sys", "sysfs")]
            .into_iter()
            .filter_map(|(path, name)| fs::metadata(path).ok().map(|m| (m.dev(), name)))
            .collect();
        PseudoFs { devices }
    }

    /// What pseudo filesystem the directory at `real` (its path with no
    /// symlink in it) with metadata `meta` is on, if any. The device catches
    /// proc mounted anywhere; the path catches the mounts under `/sys` and
    /// `/proc` that have devices of their own (cgroup, debugfs, binfmt_misc).
    fn of(&self, real: Option<&Path>, meta: &fs::Metadata) -> Option<&'static str> {
        if let Some(&(_, name)) = self.devices.iter().find(|(dev, _)| *dev == meta.dev()) {
            return Some(name);
        }
        let real = real?;
        if real.starts_with("/proc") {
            Some("proc filesystem")
        } else if real.starts_with("/sys") {
            Some("sysfs")
        } else {
            None
        }
    }
}

/// The tasks for `paths`, in order. Blocking: iterate it on a thread of its
/// own.
pub fn tasks(paths: Vec<PathBuf>) -> impl Iterator<Item = Task> + Send + 'static {
    let pseudo = PseudoFs::detect();
    paths
        .into_iter()
        .flat_map(move |path| tasks_for(path, pseudo.clone()))
}

/// The tasks for one path given by the user.
fn tasks_for(path: PathBuf, pseudo: PseudoFs) -> Box<dyn Iterator<Item = Task> + Send> {
    if path.as_os_str() == "-" {
        return Box::new(std::iter::once(Task::Named(path)));
    }
    // `metadata` follows a symlink given as an argument, as `sha256sum` does.
    match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => {
            let real = fs::canonicalize(&path).ok();
            match pseudo.of(real.as_deref(), &meta) {
                Some(fs_name) => Box::new(std::iter::once(skipped_pseudo(path, fs_name))),
                None => Box::new(Walk::new(path, real, pseudo)),
            }
        }
        Ok(_) => Box::new(std::iter::once(Task::Named(path))),
        Err(e) => Box::new(std::iter::once(Task::Done(Entry::Unreadable {
            error: describe_error(&e),
            path,
        }))),
    }
}

/// A directory walk that yields only files, skipping special files and
/// pseudo filesystems with an [`Entry::Skipped`] each.
struct Walk {
    walk: walkdir::IntoIter,
    root: PathBuf,
    /// The root with no symlink in it, to tell where a directory really is.
    real_root: Option<PathBuf>,
    pseudo: PseudoFs,
}

impl Walk {
    /// Walks the directory `root`, whose real path is `real_root`.
    fn new(root: PathBuf, real_root: Option<PathBuf>, pseudo: PseudoFs) -> Self {
        // The root is checked by the caller; walkdir follows it if it is a
        // symlink, and nothing under it.
        let walk = walkdir::WalkDir::new(&root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        Walk {
            walk,
            real_root,
            root,
            pseudo,
        }
    }

    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix(&self.root).ok()?;
        Some(self.real_root.as_ref()?.join(rel))
    }
}

impl Iterator for Walk {
    type Item = Task;

    fn next(&mut self) -> Option<Task> {
        loop {
            let entry = match self.walk.next()? {
                Ok(entry) => entry,
                Err(err) => {
                    let path = err.path().map(Path::to_path_buf).unwrap_or_default();
                    let error = match err.io_error() {
                        Some(e) => describe_error(e),
                        None => err.to_string(),
                    };
                    return Some(Task::Done(Entry::Unreadable { path, error }));
                }
            };
            let kind = entry.file_type();
            if kind.is_file() {
                return Some(Task::Found(entry.into_path()));
            }
            if kind.is_dir() {
                // One `lstat` per directory, none per file.
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(_) => continue, // walkdir reports it when it reads the directory
                };
                let real = self.real_path(entry.path());
                if let Some(fs_name) = self.pseudo.of(real.as_deref(), &meta) {
                    self.walk.skip_current_dir();
                    return Some(skipped_pseudo(entry.into_path(), fs_name));
                }
                continue;
            }
            return Some(Task::Done(Entry::Skipped {
                path: entry.into_path(),
                why: special_kind(kind).to_string(),
            }));
        }
    }
}

/// The note for a directory on a pseudo filesystem, not walked.
fn skipped_pseudo(path: PathBuf, fs_name: &str) -> Task {
    Task::Done(Entry::Skipped {
        path,
        why: format!("{fs_name}; name its files to read them"),
    })
}

/// What a non-regular, non-directory file is.
pub fn special_kind(kind: fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "symlink"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device"
    } else {
        "not a regular file"
    }
}
