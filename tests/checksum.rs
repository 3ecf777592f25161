//! The main job, `examples/checksum`, against the reference tools:
//! `sha256sum`, `sha256sum -c` and `b3sum` on generated trees with odd
//! names (spaces, newlines, backslashes, carriage returns, non-UTF-8 bytes),
//! special files, pseudo filesystems, and closed stdout / stderr.
//!
//! `b3sum` comes from the Debian package `b3sum`; `.ci/run` installs it.
//! Without it (and without `CI=true`) the tests that need it say that they
//! were skipped; with `CI=true` they fail.

mod support;

#[path = "../examples/checksum/job/mod.rs"]
mod job;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use job::cli::{self, Options};
use job::list::Line;
use job::{Algo, Entry};
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

/// Names that each reference tool escapes or writes in its own way.
fn odd_names(non_utf8: bool) -> Vec<OsString> {
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
struct Tree {
    /// Regular files, sorted as the walk outputs them.
    files: Vec<PathBuf>,
    /// Special files, sorted, with the kind the job names.
    special: Vec<(PathBuf, &'static str)>,
    /// Files that cannot be read (none when running as root).
    unreadable: Vec<PathBuf>,
}

/// Builds a tree with odd names, nested and empty directories, empty and
/// large files, special files and (unless root) an unreadable file.
fn build_tree(tree: &TempTree, non_utf8: bool) -> Tree {
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
fn tool(tool: &str, args: &[&OsStr]) -> (Vec<u8>, String, i32) {
    let out = Command::new(tool)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.stdout, err, out.status.code().unwrap_or(-1))
}

fn os(paths: &[PathBuf]) -> Vec<&OsStr> {
    paths.iter().map(|p| p.as_os_str()).collect()
}

/// Whether `b3sum` can be run: a failure under `CI=true`, a clear skip
/// message otherwise.
fn b3sum_available(test: &str) -> bool {
    if Command::new("b3sum").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: b3sum is missing; .ci/run installs it (apt-get install -y b3sum)");
    }
    eprintln!(
        "SKIPPED {test}: b3sum is not installed; install it with \
         `apt-get install b3sum` (Debian) to run this test"
    );
    false
}

/// What one [`cli::run`] wrote and returned.
#[derive(Debug)]
struct Outcome {
    status: u8,
    out: Vec<u8>,
    err: String,
    entries: Vec<Entry>,
}

fn run_cli(rt: Rt, opts: Options) -> Outcome {
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

fn options(paths: Vec<PathBuf>, algo: Algo, parallelism: usize) -> Options {
    let mut opts = Options::new(paths);
    opts.algo = algo;
    opts.parallelism = parallelism;
    opts
}

/// The stderr lines the job writes for the tree's special files.
fn skip_notes(tree: &Tree) -> Vec<String> {
    tree.special
        .iter()
        .map(|(p, why)| format!("checksum: {}: skipped ({why})", p.display()))
        .collect()
}

fn sha256_listing_matches_sha256sum(rt: Rt) {
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (expected, _, code) = tool("sha256sum", &os(&tree.files));
    assert_eq!(code, 0);
    for parallelism in [1, 3, 16] {
        let got = run_cli(rt, options(vec![dir.0.clone()], Algo::Sha256, parallelism));
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected),
            "parallelism {parallelism}"
        );
        assert_eq!(
            got.out, expected,
            "byte for byte, parallelism {parallelism}"
        );
        let mut notes = skip_notes(&tree);
        notes.extend(
            tree.unreadable
                .iter()
                .map(|p| format!("checksum: {}: Permission denied", p.display())),
        );
        let mut err_lines: Vec<String> = got.err.lines().map(str::to_string).collect();
        err_lines.sort();
        notes.sort();
        assert_eq!(err_lines, notes);
        assert_eq!(got.status, u8::from(!tree.unreadable.is_empty()));
        let hashed: Vec<PathBuf> = got
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Hashed { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(hashed, tree.files);
        let bytes: u64 = got
            .entries
            .iter()
            .map(|e| match e {
                Entry::Hashed { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum();
        let total: u64 = tree
            .files
            .iter()
            .map(|f| fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(bytes, total);
    }
}

fn blake3_listing_matches_b3sum(rt: Rt) {
    if !b3sum_available("blake3_listing_matches_b3sum") {
        return;
    }
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (expected, _, code) = tool("b3sum", &os(&tree.files));
    assert_eq!(code, 0);
    for parallelism in [1, 4] {
        let got = run_cli(rt, options(vec![dir.0.clone()], Algo::Blake3, parallelism));
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected),
            "parallelism {parallelism}"
        );
        assert_eq!(
            got.out, expected,
            "byte for byte, parallelism {parallelism}"
        );
    }
}

/// `sha256sum -c` and `checksum --check` on the same list, after the tree
/// changed: same stdout, same stderr (program name aside), same status.
fn check_matches_sha256sum_c(rt: Rt) {
    let dir = TempTree::new();
    let tree = build_tree(&dir, true);
    let (listing, _, _) = tool("sha256sum", &os(&tree.files));
    let mut list = listing.clone();
    list.extend_from_slice(b"this line is not a checksum line\n# a comment\n\n");
    let list_path = dir.path("SUMS");
    fs::write(&list_path, &list).unwrap();
    // One file changed, two gone (one with a newline in its name).
    fs::write(dir.path("with space.txt"), b"changed").unwrap();
    fs::remove_file(dir.path("a-b")).unwrap();
    fs::remove_file(dir.path("new\nline")).unwrap();

    let (expected_out, expected_err, code) =
        tool("sha256sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!(code, 1);
    let mut opts = options(vec![list_path.clone()], Algo::Sha256, 3);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected_out)
    );
    assert_eq!(got.out, expected_out);
    assert_eq!(got.err, expected_err.replace("sha256sum: ", "checksum: "));
    assert_eq!(got.status, 1);
    // The counts, spelled out, so the comparison cannot pass vacuously.
    assert!(got.err.contains("WARNING: 1 line is improperly formatted"));
    assert!(got
        .err
        .contains("WARNING: 2 listed files could not be read"));
    assert!(got
        .err
        .contains("WARNING: 1 computed checksum did NOT match"));

    // Restored, everything checks: status 0, nothing on stderr.
    fs::write(&list_path, &listing).unwrap();
    fs::write(dir.path("with space.txt"), bytes(0, 0)).unwrap();
    fs::write(dir.path("a-b"), b"dash\n").unwrap();
    fs::write(dir.path("new\nline"), bytes(200, 2)).unwrap();
    let (expected_out, _, code) = tool("sha256sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!(code, 0);
    let mut opts = options(vec![list_path], Algo::Sha256, 3);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!((got.status, got.err.as_str()), (0, ""));
    assert_eq!(got.out, expected_out);
}

/// `--quiet`, `--status`, `--ignore-missing`, `--strict`, `--warn` as
/// `sha256sum -c` has them: same stdout, stderr and status for each.
fn check_options_match_sha256sum_c(rt: Rt) {
    let dir = TempTree::new();
    for (name, data) in [("ok", "1"), ("changed", "2"), ("gone", "3")] {
        fs::write(dir.path(name), data).unwrap();
    }
    let files = [dir.path("ok"), dir.path("changed"), dir.path("gone")];
    let (mut list, _, _) = tool("sha256sum", &os(&files));
    list.extend_from_slice(b"junk\n");
    fs::write(dir.path("changed"), "two").unwrap();
    fs::remove_file(dir.path("gone")).unwrap();
    let list_path = dir.path("SUMS");
    fs::write(&list_path, &list).unwrap();
    let (only_missing, _, _) = tool("sha256sum", &os(&files[..1]));
    let only_missing = String::from_utf8(only_missing)
        .unwrap()
        .replace("/ok", "/gone");
    let missing_path = dir.path("MISSING");
    fs::write(&missing_path, only_missing).unwrap();

    let cases: [(&[&str], &PathBuf); 7] = [
        (&["--quiet"], &list_path),
        (&["--status"], &list_path),
        (&["--ignore-missing"], &list_path),
        (&["--strict"], &list_path),
        (&["--warn"], &list_path),
        (&["--warn", "--quiet"], &list_path),
        (&["--ignore-missing"], &missing_path),
    ];
    for (flags, list) in cases {
        let mut args: Vec<&OsStr> = vec![OsStr::new("-c")];
        args.extend(flags.iter().map(OsStr::new));
        args.push(list.as_os_str());
        let (expected_out, expected_err, code) = tool("sha256sum", &args);
        let opts = cli::parse_args(args.iter().map(|a| a.to_os_string())).unwrap();
        let got = run_cli(rt, opts);
        assert_eq!(
            String::from_utf8_lossy(&got.out),
            String::from_utf8_lossy(&expected_out),
            "{flags:?}"
        );
        assert_eq!(
            got.err,
            expected_err.replace("sha256sum: ", "checksum: "),
            "{flags:?}"
        );
        assert_eq!(i32::from(got.status), code, "{flags:?}");
    }
}

/// A list `b3sum` wrote checks with `--algo blake3`, and `b3sum -c` checks
/// the listing `checksum --algo blake3` wrote.
fn blake3_lists_check_both_ways(rt: Rt) {
    if !b3sum_available("blake3_lists_check_both_ways") {
        return;
    }
    let dir = TempTree::new();
    // b3sum writes non-UTF-8 names lossily: such lines cannot be checked.
    let tree = build_tree(&dir, false);
    let (listing, _, _) = tool("b3sum", &os(&tree.files));
    let list_path = dir.path("B3SUMS");
    fs::write(&list_path, &listing).unwrap();
    let mut opts = options(vec![list_path.clone()], Algo::Blake3, 2);
    opts.check = true;
    let got = run_cli(rt, opts);
    assert_eq!((got.status, got.err.as_str()), (0, ""));
    let oks = got
        .out
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b": OK"))
        .count();
    assert_eq!(oks, tree.files.len());

    let ours = run_cli(rt, options(tree.files.clone(), Algo::Blake3, 2));
    fs::write(&list_path, &ours.out).unwrap();
    let (_, err, code) = tool("b3sum", &[OsStr::new("-c"), list_path.as_os_str()]);
    assert_eq!((code, err.as_str()), (0, ""));
}

/// `checksum FILE /missing DIR`: every path, in order; the missing one named
/// on stderr as `sha256sum` names it; status 1.
fn every_path_is_used_in_order(rt: Rt) {
    let dir = TempTree::new();
    fs::write(dir.path("one"), b"1").unwrap();
    fs::create_dir(dir.path("d")).unwrap();
    fs::write(dir.path("d/two"), b"2").unwrap();
    fs::write(dir.path("d/three"), b"3").unwrap();
    let missing = dir.path("missing file");
    let args = [dir.path("one"), missing.clone(), dir.path("d")];
    let (expected, expected_err, code) = tool(
        "sha256sum",
        &os(&[
            dir.path("one"),
            missing,
            dir.path("d/three"),
            dir.path("d/two"),
        ]),
    );
    assert_eq!(code, 1);
    let got = run_cli(rt, options(args.to_vec(), Algo::Sha256, 2));
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(got.err, expected_err.replace("sha256sum: ", "checksum: "));
    assert_eq!(got.status, 1);
}

/// A symlink named as an argument is followed, to a file or a directory, as
/// `sha256sum` follows it; inside a walk it is skipped and named.
fn symlink_arguments_are_followed(rt: Rt) {
    let dir = TempTree::new();
    fs::create_dir(dir.path("real")).unwrap();
    fs::write(dir.path("real/f"), b"content").unwrap();
    std::os::unix::fs::symlink(dir.path("real/f"), dir.path("link")).unwrap();
    std::os::unix::fs::symlink(dir.path("real"), dir.path("dirlink")).unwrap();
    let got = run_cli(
        rt,
        options(vec![dir.path("link"), dir.path("dirlink")], Algo::Sha256, 2),
    );
    let (expected, _, _) = tool("sha256sum", &os(&[dir.path("link"), dir.path("dirlink/f")]));
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!((got.status, got.err.as_str()), (0, ""));
}

/// `/proc/self` used to read `/proc/self/pagemap` for hours: directories on
/// proc and sysfs are skipped with a note, files named on them are read to
/// their end though `stat` says they are empty.
fn proc_and_sys_are_skipped_unless_named(rt: Rt) {
    let version = PathBuf::from("/proc/version");
    assert_eq!(
        fs::metadata(&version).unwrap().len(),
        0,
        "a size-0 procfs file"
    );
    let mut args = vec![PathBuf::from("/proc/self"), version.clone()];
    let mut notes =
        vec!["checksum: /proc/self: skipped (proc filesystem; name its files to read them)"];
    if Path::new("/sys/kernel").is_dir() {
        args.push(PathBuf::from("/sys/kernel"));
        notes.push("checksum: /sys/kernel: skipped (sysfs; name its files to read them)");
    }
    let got = run_cli(rt, options(args.to_vec(), Algo::Sha256, 2));
    let (expected, _, _) = tool("sha256sum", &[version.as_os_str()]);
    assert_eq!(
        String::from_utf8_lossy(&got.out),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(got.err.lines().collect::<Vec<_>>(), notes);
    assert_eq!(got.status, 0);
}

/// A writer that takes `lines` lines, then fails as a closed pipe (or
/// another error) does.
struct FailingOut {
    taken: Vec<u8>,
    lines: usize,
    /// The OS error a write then fails with.
    errno: i32,
}

impl Write for FailingOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.taken.iter().filter(|&&b| b == b'\n').count() >= self.lines {
            return Err(io::Error::from_raw_os_error(self.errno));
        }
        self.taken.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stderr that is closed.
struct ClosedErr;

impl Write for ClosedErr {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn many_files(dir: &TempTree, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.path(format!("f{i:04}"));
            fs::write(&path, bytes(100 + i, i as u64)).unwrap();
            path
        })
        .collect()
}

/// `checksum DIR | head -2`: the two lines, then a quiet exit with the
/// status a shell reports for `sha256sum` (141), hashing stopped early.
fn closed_stdout_ends_quietly(rt: Rt) {
    let dir = TempTree::new();
    let files = many_files(&dir, 500);
    let opts = options(vec![dir.0.clone()], Algo::Sha256, 2);
    let (status, out, err, seen) = rt.block_on(|env| async move {
        let mut out = FailingOut {
            taken: Vec::new(),
            lines: 2,
            errno: 32, // EPIPE
        };
        let mut err = Vec::new();
        let mut seen = 0;
        let status = cli::run(&opts, env.runtime, &mut out, &mut err, &mut |_| seen += 1).await;
        (status, out.taken, err, seen)
    });
    assert_eq!(status, cli::EXIT_STDOUT_CLOSED);
    assert_eq!(String::from_utf8_lossy(&err), "");
    let (expected, _, _) = tool("sha256sum", &os(&files[..2]));
    assert_eq!(out, expected);
    // The run stopped at the failed write, not after the 500 files.
    assert_eq!(seen, 3);
}

/// Any other write error (a full disk) is reported, status 1, as coreutils.
fn failed_stdout_is_reported(rt: Rt) {
    let dir = TempTree::new();
    many_files(&dir, 20);
    let opts = options(vec![dir.0.clone()], Algo::Sha256, 2);
    let (status, err) = rt.block_on(|env| async move {
        let mut out = FailingOut {
            taken: Vec::new(),
            lines: 5,
            errno: 28, // ENOSPC
        };
        let mut err = Vec::new();
        let status = cli::run(&opts, env.runtime, &mut out, &mut err, &mut |_| {}).await;
        (status, String::from_utf8(err).unwrap())
    });
    assert_eq!(status, 1);
    assert_eq!(err, "checksum: write error: No space left on device\n");
}

/// With stderr closed, messages are dropped: no panic, same stdout, same
/// status.
fn closed_stderr_never_panics(rt: Rt) {
    let dir = TempTree::new();
    let tree = build_tree(&dir, false);
    let args = [dir.0.clone(), dir.path("missing")];
    let opts = options(args.to_vec(), Algo::Sha256, 2);
    let (status, out) = rt.block_on(|env| async move {
        let mut out = Vec::new();
        let status = cli::run(&opts, env.runtime, &mut out, &mut ClosedErr, &mut |_| {}).await;
        (status, out)
    });
    assert_eq!(status, 1, "the missing file");
    let (expected, _, _) = tool("sha256sum", &os(&tree.files));
    assert_eq!(out, expected);
}

on_all_runtimes!(
    sha256_listing_matches_sha256sum,
    blake3_listing_matches_b3sum,
    check_matches_sha256sum_c,
    check_options_match_sha256sum_c,
    blake3_lists_check_both_ways,
    every_path_is_used_in_order,
    symlink_arguments_are_followed,
    proc_and_sys_are_skipped_unless_named,
    closed_stdout_ends_quietly,
    failed_stdout_is_reported,
    closed_stderr_never_panics,
);

/// Root can read a chmod 000 file, so the tree cannot make one unreadable
/// when run as root; `/proc/self/mem` fails to read at offset 0 for
/// everyone (EIO).
#[test]
fn a_file_that_fails_to_read_is_reported_unreadable() {
    let path = PathBuf::from("/proc/self/mem");
    match job::hash_entry(Algo::Sha256, path.clone(), job::Open::Named) {
        Entry::Unreadable { path: p, error } => {
            assert_eq!(p, path);
            assert_eq!(error, "Input/output error");
        }
        other => panic!("expected unreadable, got {other:?}"),
    }
}

/// Names in messages are quoted exactly as `sha256sum` quotes them.
#[test]
fn names_on_stderr_are_quoted_as_coreutils_quotes_them() {
    let dir = TempTree::new();
    let mut names = odd_names(true);
    names.extend(
        [
            "plain", "a:b", "#x", "x#", "~x", "a=b", "{", "a{", "'", "a'$b", "\u{1}",
        ]
        .map(OsString::from),
    );
    for name in names {
        let path = dir.path(&name);
        let (_, err, _) = tool("sha256sum", &[path.as_os_str()]);
        let ours = format!(
            "sha256sum: {}: No such file or directory\n",
            job::format::quote(&path)
        );
        assert_eq!(ours, err, "{name:?}");
    }
}

#[test]
fn arguments_keep_non_utf8_paths_and_reject_bad_options() {
    let bad = OsString::from_vec(b"x\xff".to_vec());
    let opts = cli::parse_args([
        OsString::from("--algo=blake3"),
        OsString::from("-j"),
        OsString::from("3"),
        bad.clone(),
        OsString::from("--"),
        OsString::from("--check"),
        OsString::from("-"),
    ])
    .unwrap();
    assert_eq!(opts.algo, Algo::Blake3);
    assert_eq!(opts.parallelism, 3);
    assert!(!opts.check);
    assert_eq!(
        opts.paths,
        [
            PathBuf::from(bad),
            PathBuf::from("--check"),
            PathBuf::from("-")
        ]
    );
    let err = |args: &[&str]| cli::parse_args(args.iter().map(OsString::from)).unwrap_err();
    assert_eq!(
        err(&["--algo", "md5"]),
        "unknown algorithm `md5`: use sha256 or blake3"
    );
    assert_eq!(err(&["-j", "0"]), "--parallelism must be at least 1");
    assert_eq!(err(&["--algo"]), "option `--algo` needs a value");
    assert_eq!(err(&["--frobnicate"]), "unknown option `--frobnicate`");
    assert_eq!(
        err(&["--quiet", "x"]),
        "the --quiet option is meaningful only when verifying checksums"
    );
}

#[test]
fn list_lines_parse_as_sha256sum_parses_them() {
    let hex = "ab".repeat(32);
    let text = format!(
        "{hex}  plain\n\
         \\{hex}  new\\nline\\\\\n\
         {hex} *binary\r\n\
         # comment\n\
         \n\
         {hex}  \n\
         \\{hex}  bad\\escape\n\
         {short}  short\n\
         {hex}x  long\n\
         {hex} reversed\n",
        short = &hex[..62],
    );
    let lines = job::list::parse(text.as_bytes(), 64);
    let mut names = Vec::new();
    let mut misformatted = Vec::new();
    for line in lines {
        match line {
            Line::Check(expected) => {
                assert_eq!(expected.hex, hex);
                names.push(expected.path);
            }
            Line::Misformatted(number) => misformatted.push(number),
        }
    }
    assert_eq!(
        names,
        [
            PathBuf::from("plain"),
            PathBuf::from("new\nline\\"),
            PathBuf::from("binary")
        ]
    );
    // No name; a bad escape; a short digest; a long one; a reversed line
    // after usual ones.
    assert_eq!(misformatted, [6, 7, 8, 9, 10]);

    // A list in the reversed format (`<hex> <name>`) throughout.
    let lines = job::list::parse(format!("{hex} one\n{hex} two\n").as_bytes(), 64);
    let two = Line::Check(job::list::Expected {
        path: PathBuf::from("two"),
        hex,
    });
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], two);
}
