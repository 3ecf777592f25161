//! The checksum job as a reusable function: walk a tree, hash every regular
//! file on a blocking stage, aggregate async. Used by `main.rs`, by
//! `tests/checksum.rs` and by the W3 benchmark (each `#[path]`-includes it).

#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowline::blocking::BlockingOptions;
use flowline::runtime::Runtime;
use flowline::{producer, PipelineError, RunReport};
use sha2::{Digest, Sha256};

/// Bytes read per `read` call.
const READ_BUF: usize = 256 * 1024;

/// What happened to one path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file, read and hashed.
    Hashed {
        path: PathBuf,
        /// Lowercase hex SHA-256, as `sha256sum` prints it.
        hex: String,
        bytes: u64,
    },
    /// A special file (FIFO, socket, device, symlink): not opened.
    Skipped { path: PathBuf, why: String },
    /// A file or directory that could not be read.
    Unreadable { path: PathBuf, error: String },
}

/// The outcome of [`checksum_tree`].
#[derive(Debug)]
pub struct Checksums {
    /// `(path, hex)` for every hashed file, sorted by path.
    pub files: Vec<(PathBuf, String)>,
    /// Total bytes hashed.
    pub bytes: u64,
    /// Special files not opened.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files or directories that could not be read.
    pub unreadable: Vec<(PathBuf, String)>,
    /// The run's per-stage report.
    pub report: RunReport,
}

impl Checksums {
    /// The `sha256sum`-compatible listing: `<hex>  <path>` per line, sorted.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for (path, hex) in &self.files {
            out.push_str(hex);
            out.push_str("  ");
            out.push_str(&path.to_string_lossy());
            out.push('\n');
        }
        out
    }
}

/// Checksums every regular file under `root` with `parallelism` blocking
/// threads, calling `on_entry` (on the async side) as each path is done.
///
/// The directory walk runs on a thread of its own (`from_blocking_iter`),
/// reading and hashing on the `map_blocking_with(.. .unordered(), ..)` stage; the async
/// consumer only aggregates. Symlinks (dangling or not), FIFOs, sockets and
/// devices are skipped without being opened, so none can block the run.
pub async fn checksum_tree(
    root: &Path,
    parallelism: usize,
    runtime: Option<Arc<dyn Runtime>>,
    mut on_entry: impl FnMut(&Entry),
) -> Result<Checksums, PipelineError> {
    let (mut files, mut bytes_total) = (Vec::new(), 0);
    let (mut skipped, mut unreadable) = (Vec::new(), Vec::new());
    let walk = walkdir::WalkDir::new(root).follow_links(false);
    let report = producer::from_blocking_iter(walk)
        .named("walk")
        // Directories need no hashing; everything else is looked at on a worker.
        .filter(|entry| !matches!(entry, Ok(e) if e.file_type().is_dir()))
        .map_blocking_with(
            BlockingOptions::new().parallelism(parallelism).unordered(),
            |entry| match entry {
                Ok(e) => hash_path(e.path()),
                Err(err) => Entry::Unreadable {
                    path: err.path().map(Path::to_path_buf).unwrap_or_default(),
                    error: io::Error::from(err).to_string(),
                },
            },
        )
        .named("hash")
        .on_runtime(runtime)
        .for_each(|entry| {
            on_entry(&entry);
            match entry {
                Entry::Hashed { path, hex, bytes } => {
                    bytes_total += bytes;
                    files.push((path, hex));
                }
                Entry::Skipped { path, why } => skipped.push((path, why)),
                Entry::Unreadable { path, error } => unreadable.push((path, error)),
            }
            async {}
        })
        .await?;
    files.sort_unstable();
    skipped.sort_unstable();
    unreadable.sort_unstable();
    Ok(Checksums {
        files,
        bytes: bytes_total,
        skipped,
        unreadable,
        report,
    })
}

/// Hashes `path` if it is a regular file. Blocking.
pub fn hash_path(path: &Path) -> Entry {
    let unreadable = |e: io::Error| Entry::Unreadable {
        path: path.to_path_buf(),
        error: e.to_string(),
    };
    // `symlink_metadata` never follows a link nor opens anything.
    let kind = match fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(e) => return unreadable(e),
    };
    if !kind.is_file() {
        return Entry::Skipped {
            path: path.to_path_buf(),
            why: describe(kind).to_string(),
        };
    }
    match hash_file(path) {
        Ok((hex, bytes)) => Entry::Hashed {
            path: path.to_path_buf(),
            hex,
            bytes,
        },
        Err(e) => unreadable(e),
    }
}

fn describe(kind: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
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

/// Reads and hashes one regular file: `(hex, bytes)`.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut bytes = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((to_hex(&hasher.finalize()), bytes))
}

/// Opens `path` without blocking even if it was swapped for a FIFO after it
/// was checked (O_NONBLOCK on Linux), and checks again that it is a file.
fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
