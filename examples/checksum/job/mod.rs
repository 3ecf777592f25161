//! The checksum job as reusable functions: the pipelines, and the command
//! line around them ([`cli`], [`check`]). Used by `main.rs`, by
//! `tests/checksum/` and by the W3 benchmark (each `#[path]`-includes this
//! `mod.rs`).
//!
//! Both pipelines are pattern 2 of flowline, heavy IO: a blocking producer
//! (the directory walk, or the parsed list), then `map_blocking` — reading and
//! hashing on `parallelism` threads, results in input order — then an async
//! consumer that writes each line as soon as it and all before it are done.
//! Output streams: `checksum / | head` prints at once, and a consumer that
//! fails (stdout closed) ends the run, cancelling the walk and the workers.

// Each includer uses part of it.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use flowline::runtime::Runtime;
use flowline::{consumer, producer, BlockingOptions, PipelineError, RunReport};

pub mod check;
pub mod cli;
pub mod entry;
pub mod format;
pub mod hash;
pub mod list;
pub mod split;
pub mod walk;

pub use entry::Entry;
pub use hash::{Algo, Open};

use hash::{describe_error, hash_file};
use list::Line;
use walk::{tasks, Task};

/// Why a job stopped early.
#[derive(Debug)]
pub enum JobError {
    /// The consumer's own output failed (e.g. stdout closed): the run was
    /// cancelled.
    Output(io::Error),
    /// The pipeline failed (a panic in a stage).
    Pipeline(PipelineError),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Output(e) => write!(f, "write error: {}", describe_error(e)),
            JobError::Pipeline(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for JobError {}

/// Totals of a [`checksum_paths`] run.
#[derive(Debug)]
pub struct Totals {
    /// Files hashed.
    pub files: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Paths skipped (special files, pseudo filesystems).
    pub skipped: u64,
    /// Paths that could not be read.
    pub unreadable: u64,
    /// The run's per-stage report.
    pub report: RunReport,
}

/// Marks the consumer's failure; the `io::Error` itself is kept aside.
#[derive(Debug)]
struct OutputFailed;

impl std::fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output failed")
    }
}

impl std::error::Error for OutputFailed {}

/// Hashes every path in `paths` (directories walked, sorted) with `algo` on
/// `parallelism` blocking threads, calling `on_entry` with each result in
/// output order, on the async side. An `Err` from `on_entry` ends the run.
///
/// # Errors
///
/// [`JobError::Output`] with `on_entry`'s error; [`JobError::Pipeline`] if a
/// stage panicked.
pub async fn checksum_paths(
    paths: Vec<PathBuf>,
    algo: Algo,
    parallelism: usize,
    runtime: Option<Arc<dyn Runtime>>,
    mut on_entry: impl FnMut(Entry) -> io::Result<()>,
) -> Result<Totals, JobError> {
    let (mut files, mut bytes, mut skipped, mut unreadable) = (0, 0, 0, 0);
    let mut output_error = None;
    let result = producer::from_blocking_iter(tasks(paths))
        .named("walk")
        .map_blocking_with(
            BlockingOptions::new().parallelism(parallelism),
            move |task| match task {
                Task::Named(path) => hash_entry(algo, path, Open::Named),
                Task::Found(path) => hash_entry(algo, path, Open::Found),
                Task::Done(entry) => entry,
            },
        )
        .named("hash")
        .on_runtime(runtime)
        .run(consumer::from_fn(|entry: Entry| {
            match &entry {
                Entry::Hashed { bytes: n, .. } => {
                    files += 1;
                    bytes += n;
                }
                Entry::Skipped { .. } => skipped += 1,
                Entry::Unreadable { .. } => unreadable += 1,
            }
            let result = on_entry(entry).map_err(|e| {
                output_error = Some(e);
                OutputFailed
            });
            async move { result }
        }))
        .await;
    match (result, output_error) {
        (Ok(report), _) => Ok(Totals {
            files,
            bytes,
            skipped,
            unreadable,
            report,
        }),
        (Err(_), Some(e)) => Err(JobError::Output(e)),
        (Err(e), None) => Err(JobError::Pipeline(e)),
    }
}

/// Hashes `path`. Blocking.
pub fn hash_entry(algo: Algo, path: PathBuf, open: Open) -> Entry {
    let result = if path.as_os_str() == "-" {
        hash::hash_reader(algo, &mut io::stdin().lock())
    } else {
        hash_file(algo, &path, open)
    };
    match result {
        Ok((hex, bytes)) => Entry::Hashed { path, hex, bytes },
        Err(e) => Entry::Unreadable {
            path,
            error: describe_error(&e),
        },
    }
}

/// The verdict on one line of a checksum list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file has the listed digest.
    Ok,
    /// The file has another digest.
    Failed,
    /// The file could not be opened or read.
    Unreadable {
        /// The error, worded as coreutils words it.
        error: String,
        /// Whether the file does not exist (for `--ignore-missing`).
        missing: bool,
    },
}

/// One line of a list, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A file and its verdict.
    File(PathBuf, Verdict),
    /// A line that is not a checksum line: its number, from 1.
    Misformatted(u64),
}

/// Checks each line of a list with `algo` on `parallelism` blocking
/// threads, calling `on_checked` with each in list order (misformatted
/// lines included, so that their warnings come in order too).
///
/// # Errors
///
/// As [`checksum_paths`].
pub async fn check_list(
    lines: Vec<Line>,
    algo: Algo,
    parallelism: usize,
    runtime: Option<Arc<dyn Runtime>>,
    mut on_checked: impl FnMut(Checked) -> io::Result<()>,
) -> Result<RunReport, JobError> {
    let mut output_error = None;
    let result = producer::iter(lines)
        .named("list")
        .map_blocking_with(
            BlockingOptions::new().parallelism(parallelism),
            move |line: Line| match line {
                Line::Misformatted(number) => Checked::Misformatted(number),
                Line::Check(line) => {
                    let verdict = match hash_file(algo, &line.path, Open::Named) {
                        Ok((hex, _)) if hex == line.hex => Verdict::Ok,
                        Ok(_) => Verdict::Failed,
                        Err(e) => Verdict::Unreadable {
                            error: describe_error(&e),
                            missing: e.kind() == io::ErrorKind::NotFound,
                        },
                    };
                    Checked::File(line.path, verdict)
                }
            },
        )
        .named("hash")
        .on_runtime(runtime)
        .run(consumer::from_fn(|checked: Checked| {
            let result = on_checked(checked).map_err(|e| {
                output_error = Some(e);
                OutputFailed
            });
            async move { result }
        }))
        .await;
    match (result, output_error) {
        (Ok(report), _) => Ok(report),
        (Err(_), Some(e)) => Err(JobError::Output(e)),
        (Err(e), None) => Err(JobError::Pipeline(e)),
    }
}
