//! The main job, `examples/checksum`, against the reference tools:
//! `sha256sum`, `sha256sum -c` and `b3sum` on generated trees with odd
//! names (spaces, newlines, backslashes, carriage returns, non-UTF-8 bytes),
//! special files, pseudo filesystems, and closed stdout / stderr.
//!
//! `b3sum` comes from the Debian package `b3sum`; `.ci/run` installs it.
//! Without it (and without `CI=true`) the tests that need it say that they
//! were skipped; with `CI=true` they fail.

#[path = "../support/mod.rs"]
#[macro_use]
mod support;

#[path = "../../examples/checksum/job/mod.rs"]
mod job;

mod check;
mod coreutils;
mod listing;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use job::cli::{self, Options};
use job::{Algo, Entry};
use support::Rt;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempTree(PathBuf);

impl TempTree {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flowline-checksum-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempTree(dir)
    }

    fn path(&self, rel: impl AsRef<OsStr>) -> PathBuf {
        self.0.join(rel.as_ref())
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        // Restore permissions so the tree can be removed.
        for entry in walkdir::WalkDir::new(&self.0).into_iter().flatten() {
            if !entry.path_is_symlink() {
                let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Deterministic bytes.
pub(crate) fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names that each reference tool escapes or writes in its own way.
pub(crate) fn odd_names(non_utf8: bool) -> Vec<OsString> {
    let mut names: Vec<OsString> = [
        "with space.txt",
        " leading space",
        "new\nline",
        "back\\slash",
        "both\\\nand",
        "carriage\rreturn",
        "tab\there",
        "it's",
        "star*",
        "ünïcödé",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if non_utf8 {
        names.push(OsString::from_vec(b"bad\xffbyte".to_vec()));
        names.push(OsString::from_vec(b"odd\xc3(\n".to_vec()));
    }
    names
}

/// What [`build_tree`] made.
pub(crate) struct Tree {
    /// Regular files, sorted as the walk outputs them.
    files: Vec<PathBuf>,
    /// Special files, sorted, with the kind the job names.
    special: Vec<(PathBuf, &'static str)>,
    /// Files that cannot be read (none when running as root).
    unreadable: Vec<PathBuf>,
}

/// Builds a tree with odd names, nested and empty directories, empty and
/// large files, special files and (unless root) an unreadable file.
pub(crate) fn build_tree(tree: &TempTree, non_utf8: bool) -> Tree {
    let root = &tree.0;
    let mut files = Vec::new();
    let mut write = |rel: &Path, data: &[u8]| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        files.push(path);
    };
    write(Path::new("empty"), b"");
    write(Path::new("big.bin"), &bytes(3 * 1024 * 1024 + 17, 1));
    write(Path::new("a/b/c/deep.txt"), b"deep\n");
    // `a-b` sorts before `a/` byte-wise but after it component-wise.
    write(Path::new("a-b"), b"dash\n");
    for (i, name) in odd_names(non_utf8).into_iter().enumerate() {
        write(Path::new(&name), &bytes(i * 100, i as u64));
        let nested = Path::new("odd dir\\\n").join(&name);
        write(&nested, &bytes(i * 7, 100 + i as u64));
    }
    for i in 0..30 {
        write(
            Path::new(&format!("many/f{i:02}")),
            &bytes(i * 1000, i as u64),
        );
    }
    fs::create_dir_all(root.join("empty-dir")).unwrap();

    // Special files: none may block or fail the run.
    let special_dir = root.join("special");
    fs::create_dir_all(&special_dir).unwrap();
    let fifo = special_dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(root.join("nowhere"), special_dir.join("dangling")).unwrap();
    std::os::unix::fs::symlink(root.join("empty"), special_dir.join("link-to-file")).unwrap();
    std::os::unix::fs::symlink(root.join("a"), special_dir.join("link-to-dir")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(special_dir.join("socket")).unwrap());
    let special = vec![
        (special_dir.join("dangling"), "symlink"),
        (special_dir.join("fifo"), "fifo"),
        (special_dir.join("link-to-dir"), "symlink"),
        (special_dir.join("link-to-file"), "symlink"),
        (special_dir.join("socket"), "socket"),
    ];

    let locked = root.join("locked.txt");
    fs::write(&locked, b"secret\n").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let mut unreadable = Vec::new();
    if is_root() {
        files.push(locked);
    } else {
        unreadable.push(locked);
    }
    files.sort();
    Tree {
        files,
        special,
        unreadable,
    }
}

/// Runs `tool args…`; its stdout, stderr and exit code.
pub(crate) fn tool(tool: &str, args: &[&OsStr]) -> (Vec<u8>, String, i32) {
    let out = Command::new(tool)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.stdout, err, out.status.code().unwrap_or(-1))
}

pub(crate) fn os(paths: &[PathBuf]) -> Vec<&OsStr> {
    paths.iter().map(|p| p.as_os_str()).collect()
}

/// Whether `b3sum` can be run: a failure under `CI=true`, a clear skip
/// message otherwise.
pub(crate) fn b3sum_available(test: &str) -> bool {
    if Command::new("b3sum").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: b3sum is missing; .ci/run installs it (apt-get install -y b3sum)");
    }
    // Straight to stderr, past the test harness's capture of `eprintln!`,
    // so that the skip shows in a plain `cargo test`.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: b3sum is not installed; install it with \
         `apt-get install b3sum` (Debian) to run this test"
    );
    false
}

/// What one [`cli::run`] wrote and returned.
#[derive(Debug)]
pub(crate) struct Outcome {
    status: u8,
    out: Vec<u8>,
    err: String,
    entries: Vec<Entry>,
}

pub(crate) fn run_cli(rt: Rt, opts: Options) -> Outcome {
    rt.block_on(|env| async move {
        let (mut out, mut err, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        let status = cli::run(&opts, env.runtime, &mut out, &mut err, &mut |e: &Entry| {
            entries.push(e.clone())
        })
        .await;
        Outcome {
            status,
            out,
            err: String::from_utf8_lossy(&err).into_owned(),
            entries,
        }
    })
}

pub(crate) fn options(paths: Vec<PathBuf>, algo: Algo, parallelism: usize) -> Options {
    let mut opts = Options::new(paths);
    opts.algo = algo;
    opts.parallelism = parallelism;
    opts
}

/// The stderr lines the job writes for the tree's special files.
pub(crate) fn skip_notes(tree: &Tree) -> Vec<String> {
    tree.special
        .iter()
        .map(|(p, why)| format!("checksum: {}: skipped ({why})", p.display()))
        .collect()
}
