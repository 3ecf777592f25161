//! The command line as a coreutils tool: closed stdout and stderr, write
//! errors, arguments, names quoted in messages.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::job::cli;
use crate::job::{Algo, Entry};
use crate::support::Rt;
use crate::*;

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
