//! The main job: `examples/checksum` against `sha256sum` on a generated tree
//! with empty, large, special and unreadable files.

mod support;

#[path = "../examples/checksum/job.rs"]
mod job;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use support::Rt;

/// A fresh directory under the system temp dir, removed on drop.
struct TempTree(PathBuf);

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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Deterministic bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
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

/// Builds the tree; returns the regular files `sha256sum` should agree on,
/// and the ones that cannot be read (empty when running as root, which can
/// read anything).
fn build_tree(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut write = |rel: &str, data: &[u8]| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        files.push(path);
    };
    write("empty", b"");
    write("big.bin", &bytes(3 * 1024 * 1024 + 17, 1));
    write("a/b/c/deep.txt", b"deep\n");
    write("with space.txt", b"spaced out\n");
    for i in 0..40 {
        write(&format!("many/f{i:02}"), &bytes(i * 1000, i as u64));
    }
    fs::create_dir_all(root.join("empty-dir")).unwrap();

    // Special files: none may block or fail the run.
    let fifo = root.join("special/fifo");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("special/dangling")).unwrap();
    std::os::unix::fs::symlink(root.join("empty"), root.join("special/link-to-file")).unwrap();
    let socket = std::os::unix::net::UnixListener::bind(root.join("special/socket")).unwrap();
    drop(socket); // the socket file stays

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
    (files, unreadable)
}

fn sha256sum(files: &[PathBuf]) -> String {
    let out = Command::new("sha256sum")
        .args(files)
        .output()
        .expect("sha256sum runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn matches_sha256sum_on_a_generated_tree(rt: Rt) {
    let tree = TempTree::new();
    let (files, unreadable) = build_tree(&tree.0);
    let expected = sha256sum(&files);
    for parallelism in [1, 3, 16] {
        let runtime = rt;
        let sums = runtime.block_on(|env| {
            let root = tree.0.clone();
            async move {
                job::checksum_tree(&root, parallelism, env.runtime, |_| {})
                    .await
                    .unwrap()
            }
        });
        assert_eq!(sums.listing(), expected, "parallelism {parallelism}");
        let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
        assert_eq!(sums.bytes, total);
        let skipped: Vec<(String, String)> = sums
            .skipped
            .iter()
            .map(|(p, why)| {
                let rel = p
                    .strip_prefix(&tree.0)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (rel, why.clone())
            })
            .collect();
        assert_eq!(
            skipped,
            [
                ("special/dangling".to_string(), "symlink".to_string()),
                ("special/fifo".to_string(), "fifo".to_string()),
                ("special/link-to-file".to_string(), "symlink".to_string()),
                ("special/socket".to_string(), "socket".to_string()),
            ]
        );
        let bad: Vec<PathBuf> = sums.unreadable.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(bad, unreadable);
        let hash = sums.report.stage("hash").unwrap();
        assert_eq!(hash.items_out, (files.len() + 4 + unreadable.len()) as u64);
    }
}

fn missing_root_is_reported_not_fatal(rt: Rt) {
    rt.block_on(|env| async move {
        let sums = job::checksum_tree(Path::new("/no/such/flowline/dir"), 2, env.runtime, |_| {})
            .await
            .unwrap();
        assert!(sums.files.is_empty());
        assert_eq!(sums.unreadable.len(), 1);
        assert!(
            sums.unreadable[0].1.contains("No such file"),
            "{:?}",
            sums.unreadable
        );
    });
}

on_all_runtimes!(
    matches_sha256sum_on_a_generated_tree,
    missing_root_is_reported_not_fatal
);

/// Root can read a chmod 000 file, so the tree test cannot make one
/// unreadable when run as root; `/proc/self/mem` fails to read at offset 0
/// for everyone (EIO).
#[test]
fn a_file_that_fails_to_read_is_reported_unreadable() {
    let path = Path::new("/proc/self/mem");
    match job::hash_path(path) {
        job::Entry::Unreadable { path: p, error } => {
            assert_eq!(p, path);
            assert!(!error.is_empty());
        }
        other => panic!("expected unreadable, got {other:?}"),
    }
}
