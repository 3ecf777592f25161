//! The command line: options, what goes to stdout and stderr, exit status.
//!
//! Written against `&mut dyn Write` for both streams so that tests can hand
//! it a closed pipe or a failing stderr.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use flowline::runtime::Runtime;

use super::check;
use super::format::{quote, sum_line};
use super::{checksum_paths, Algo, Entry, JobError};

/// The usage text.
pub const USAGE: &str = "\
usage: checksum [OPTION]... [PATH]...
Print the SHA-256 (or BLAKE3) digest of each file, as sha256sum (b3sum) does;
directories are walked, entries sorted. With no PATH, the current directory;
`-` is standard input.

  -a, --algo sha256|blake3  hash function (default sha256)
  -c, --check               read digests from the PATHs (lists written by
                            sha256sum, b3sum or checksum) and check them
  -j, --parallelism N       reading and hashing threads
      --runtime smol|tokio|none
      --stats               print files, bytes and speed on stderr at the end
  -h, --help

With --check, as sha256sum -c:
      --ignore-missing      don't fail or report for missing files
      --quiet               don't print OK for each verified file
      --status              print nothing, the exit status tells
      --strict              fail on improperly formatted lines
  -w, --warn                warn about each improperly formatted line

Special files found in a directory (symlinks, FIFOs, sockets, devices) are
skipped and named on stderr; so are directories on proc and sysfs: name
their files to read them. Exit status: 0 if all is well, 1 if a file could
not be read or did not match, 2 on a usage error, 141 if stdout was closed.";

/// Exit status when stdout was closed: what a shell reports for
/// `sha256sum`, which dies of SIGPIPE (128 + 13).
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Files and directories, or lists with `check`.
    pub paths: Vec<PathBuf>,
    /// `--check`.
    pub check: bool,
    /// `--algo`.
    pub algo: Algo,
    /// `--parallelism`.
    pub parallelism: usize,
    /// `--runtime`.
    pub runtime: String,
    /// `--stats`.
    pub stats: bool,
    /// `--help`.
    pub help: bool,
    /// `--quiet`, `--status`, `--warn`: the last one given.
    pub verbosity: Verbosity,
    /// `--ignore-missing`.
    pub ignore_missing: bool,
    /// `--strict`.
    pub strict: bool,
}

/// What `--check` prints, as `sha256sum -c`'s options of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `--status`: nothing but open errors on stderr.
    Status,
    /// `--quiet`: no `OK` lines.
    Quiet,
    /// The default.
    Normal,
    /// `--warn`: also a warning for each improperly formatted line.
    Warn,
}

impl Options {
    /// The defaults: sha256, `2 × cores` threads (at least 4), smol.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Options {
            paths,
            check: false,
            algo: Algo::Sha256,
            // Reads wait on the disk as much as they hash: more threads than cores.
            parallelism: (2 * cores).max(4),
            runtime: "smol".to_string(),
            stats: false,
            help: false,
            verbosity: Verbosity::Normal,
            ignore_missing: false,
            strict: false,
        }
    }
}

/// Parses the arguments (without the program name). Paths stay `OsString`s:
/// a name that is not UTF-8 is still a name.
///
/// # Errors
///
/// A message for an unknown option, a missing or bad value.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut opts = Options::new(Vec::new());
    let mut args = args.into_iter();
    let mut options_ended = false;
    while let Some(arg) = args.next() {
        let text = match arg.to_str() {
            Some(text) if !options_ended && text.starts_with('-') && text != "-" => text,
            _ => {
                opts.paths.push(PathBuf::from(arg));
                continue;
            }
        };
        let (key, inline) = match text.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (text, None),
        };
        let mut value = || match &inline {
            Some(v) => Ok(v.clone()),
            None => args
                .next()
                .and_then(|v| v.into_string().ok())
                .ok_or(format!("option `{key}` needs a value")),
        };
        match key {
            "--" => options_ended = true,
            "-c" | "--check" => opts.check = true,
            "--stats" => opts.stats = true,
            "-h" | "--help" => opts.help = true,
            "--quiet" => opts.verbosity = Verbosity::Quiet,
            "--status" => opts.verbosity = Verbosity::Status,
            "-w" | "--warn" => opts.verbosity = Verbosity::Warn,
            "--ignore-missing" => opts.ignore_missing = true,
            "--strict" => opts.strict = true,
            "-a" | "--algo" => {
                let name = value()?;
                opts.algo = Algo::parse(&name)
                    .ok_or(format!("unknown algorithm `{name}`: use sha256 or blake3"))?;
            }
            "-j" | "--parallelism" => {
                let n: usize = value()?
                    .parse()
                    .map_err(|e| format!("--parallelism: {e}"))?;
                if n == 0 {
                    return Err("--parallelism must be at least 1".into());
                }
                opts.parallelism = n;
            }
            "--runtime" => opts.runtime = value()?,
            _ => return Err(format!("unknown option `{key}`")),
        }
    }
    if !opts.check {
        let check_only = [
            (opts.verbosity == Verbosity::Quiet, "--quiet"),
            (opts.verbosity == Verbosity::Status, "--status"),
            (opts.verbosity == Verbosity::Warn, "--warn"),
            (opts.ignore_missing, "--ignore-missing"),
            (opts.strict, "--strict"),
        ];
        if let Some((_, name)) = check_only.iter().find(|(given, _)| *given) {
            return Err(format!(
                "the {name} option is meaningful only when verifying checksums"
            ));
        }
    }
    Ok(opts)
}

/// Runs the command `opts` describes on `runtime`, writing results to `out`
/// and messages to `err`; returns the exit status. `on_entry` sees each
/// path's result (for a progress bar).
///
/// A failing `err` is ignored. A failing `out` ends the run at once: quietly
/// with [`EXIT_STDOUT_CLOSED`] if it was closed (`checksum DIR | head`),
/// else with `write error` on `err` and status 1, as coreutils does.
pub async fn run(
    opts: &Options,
    runtime: Option<Arc<dyn Runtime>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    on_entry: &mut dyn FnMut(&Entry),
) -> u8 {
    let result = if opts.check {
        check::check(opts, runtime, out, err).await
    } else {
        hash(opts, runtime, out, err, on_entry).await
    };
    let result = result.and_then(|ok| match out.flush() {
        Ok(()) => Ok(ok),
        Err(e) => Err(JobError::Output(e)),
    });
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(JobError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_STDOUT_CLOSED,
        Err(e @ JobError::Output(_)) => {
            let _ = writeln!(err, "checksum: {e}");
            1
        }
        Err(e) => {
            let _ = writeln!(err, "checksum: {e}");
            2
        }
    }
}

/// Hashing mode; `Ok(false)` if some path could not be read.
async fn hash(
    opts: &Options,
    runtime: Option<Arc<dyn Runtime>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    on_entry: &mut dyn FnMut(&Entry),
) -> Result<bool, JobError> {
    let paths = match opts.paths.is_empty() {
        true => vec![PathBuf::from(".")],
        false => opts.paths.clone(),
    };
    let start = Instant::now();
    let algo = opts.algo;
    let totals = checksum_paths(paths, algo, opts.parallelism, runtime, |entry| {
        on_entry(&entry);
        match &entry {
            Entry::Hashed { path, hex, .. } => out.write_all(&sum_line(algo, hex, path))?,
            Entry::Skipped { path, why } => {
                let _ = writeln!(err, "checksum: {}: skipped ({why})", quote(path));
            }
            Entry::Unreadable { path, error } => {
                let _ = writeln!(err, "checksum: {}: {error}", quote(path));
            }
        }
        Ok(())
    })
    .await?;
    if opts.stats {
        let elapsed = start.elapsed();
        let mb = totals.bytes as f64 / 1e6;
        // One write: a progress bar redraws between writes.
        let stats = format!(
            "{} files, {:.1} MB in {:.3?} ({:.1} MB/s), {} with {} threads on {}; \
             {} skipped, {} unreadable\n{}\n",
            totals.files,
            mb,
            elapsed,
            mb / elapsed.as_secs_f64().max(1e-9),
            algo.name(),
            opts.parallelism,
            opts.runtime,
            totals.skipped,
            totals.unreadable,
            totals.report,
        );
        let _ = err.write_all(stats.as_bytes());
    }
    Ok(totals.unreadable == 0)
}
