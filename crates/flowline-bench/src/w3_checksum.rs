//! W3 (iii), (iv) — the checksum job (`examples/checksum`) against the tools
//! it stands in for, on the same files, page cache warm:
//!
//! (iii) 20,000 files of 4–64 KiB (2,000 with `--quick`): `--algo blake3`
//!       against `b3sum` (target ≥ 1.0× its throughput) and `--algo sha256`
//!       against `sha256sum` (target ≥ 3×).
//! (iv)  one 1 GiB file, both pairs, reported without a target (full runs
//!       only): one file is one blocking call; the job hashes a large
//!       BLAKE3 file on every core in subtrees, as `b3sum` does, while
//!       SHA-256 cannot be split.
//!
//! The job runs in-process through its command-line entry (`cli::run`, the
//! defaults a user gets, on smol) on the tree's directory, walking it, its
//! output into memory; each tool runs as a process with the files' relative
//! paths as arguments (neither walks a directory), its output into a pipe. Each pair is measured alternately (`measure_pair`) and both
//! sides must print one line per file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use flowline::runtime::Runtime;

use crate::harness::{Case, Config, Report};

#[path = "../../../examples/checksum/job/mod.rs"]
mod job;

const W: &str = "W3";

/// Runs (iii), and (iv) unless `--quick`.
pub(super) fn run(cfg: &Config, report: &mut Report, smol_rt: &Arc<dyn Runtime>) {
    let files = if cfg.quick { 2_000 } else { 20_000 };
    let dir = std::env::temp_dir().join(format!("flowline-bench-w3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (paths, bytes) = small_tree(&dir, files);
    let label = format!("(iii) {files} files of 4-64 KiB");
    for algo in [job::Algo::Blake3, job::Algo::Sha256] {
        pair(
            cfg, report, smol_rt, &label, &dir, &paths, bytes, algo, true,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    if cfg.quick {
        return;
    }
    let _ = std::fs::create_dir_all(&dir);
    let big = PathBuf::from("big.bin");
    let bytes = write_big(&dir.join(&big), 1 << 30);
    for algo in [job::Algo::Blake3, job::Algo::Sha256] {
        let label = "(iv) one 1 GiB file";
        pair(
            cfg,
            report,
            smol_rt,
            label,
            &dir,
            std::slice::from_ref(&big),
            bytes,
            algo,
            false,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Measures `checksum --algo <algo>` against its reference tool on `paths`
/// (relative to `dir`) and records the throughput ratio; `walk`: the job is
/// given `dir` itself rather than the paths.
fn pair(
    cfg: &Config,
    report: &mut Report,
    smol_rt: &Arc<dyn Runtime>,
    label: &str,
    dir: &Path,
    paths: &[PathBuf],
    bytes: u64,
    algo: job::Algo,
    walk: bool,
) {
    let (tool, target) = match algo {
        job::Algo::Blake3 => ("b3sum", 1.0),
        job::Algo::Sha256 => ("sha256sum", 3.0),
    };
    if Command::new(tool).arg("--version").output().is_err() {
        report.note(
            W,
            format!("{label}: `{tool}` is not installed, pair skipped"),
        );
        return;
    }
    let n = paths.len() as u64;
    let name = algo.name();
    let args: Vec<PathBuf> = match walk {
        true => vec![dir.to_path_buf()],
        false => paths.iter().map(|p| dir.join(p)).collect(),
    };
    let (ours, theirs) = report.measure_pair(
        cfg,
        W,
        n,
        n,
        (
            &format!("{label} checksum --algo {name}"),
            "smol",
            &mut || checksum(&args, algo, smol_rt),
        ),
        (&format!("{label} {tool}"), "process", &mut || {
            reference(tool, dir, paths)
        }),
    );
    let mbps = |c: &Case| bytes as f64 / 1e6 / c.median.as_secs_f64();
    let ratio = theirs.median.as_secs_f64() / ours.median.as_secs_f64();
    report.note(
        W,
        format!(
            "{label}, {:.0} MB: checksum --algo {name} {:.0} MB/s, {tool} {:.0} MB/s ({ratio:.2}x)",
            bytes as f64 / 1e6,
            mbps(&ours),
            mbps(&theirs),
        ),
    );
    if walk {
        report.compare(
            W,
            format!("(iii) checksum --algo {name} / {tool} throughput"),
            ratio,
            format!(">= {target:.1}"),
            ratio >= target,
        );
    }
}

/// The job as a user runs it (default parallelism), stdout into memory:
/// the number of lines it printed.
fn checksum(args: &[PathBuf], algo: job::Algo, rt: &Arc<dyn Runtime>) -> u64 {
    let mut opts = job::cli::Options::new(args.to_vec());
    opts.algo = algo;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = smol::block_on(job::cli::run(
        &opts,
        Some(rt.clone()),
        &mut out,
        &mut err,
        &mut |_| {},
    ));
    assert_eq!(status, 0, "{}", String::from_utf8_lossy(&err));
    out.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `tool paths…` in `dir`: the number of lines it printed.
fn reference(tool: &str, dir: &Path, paths: &[PathBuf]) -> u64 {
    let out = Command::new(tool)
        .args(paths)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(out.status.success(), "{tool} failed");
    out.stdout.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `files` files of 4–64 KiB under `dir`, 100 per directory: their paths
/// relative to `dir` (sorted) and total bytes.
fn small_tree(dir: &Path, files: usize) -> (Vec<PathBuf>, u64) {
    let pool = noise(1 << 20);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut paths = Vec::with_capacity(files);
    let mut total = 0;
    for i in 0..files {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 4096 + (x % (60 * 1024 + 1)) as usize;
        let start = (x >> 32) as usize % (pool.len() - size);
        let rel = PathBuf::from(format!("d{:03}/f{i:05}", i / 100));
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pool[start..start + size]).unwrap();
        paths.push(rel);
        total += size as u64;
    }
    paths.sort();
    settle();
    (paths, total)
}

/// Writes the new files back to disk before measuring, so that the kernel's
/// write-back does not compete with the cases (the pages stay cached).
fn settle() {
    let _ = Command::new("sync").status();
}

/// A file of `size` bytes at `path`; returns `size`.
fn write_big(path: &Path, size: usize) -> u64 {
    use std::io::Write;
    let pool = noise(1 << 20);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..size / pool.len() {
        file.write_all(&pool).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    settle();
    size as u64
}

/// `n` deterministic pseudo-random bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
