//! `--check`: verifying lists as `sha256sum -c` does, same output, same
//! warnings, same exit status.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowline::runtime::Runtime;

use super::cli::{Options, Verbosity};
use super::format::{check_line, quote};
use super::hash::describe_error;
use super::{check_list, list, Checked, JobError, Verdict};

/// `--check` mode, as `sha256sum -c`; `Ok(false)` on any mismatch, any
/// unreadable file or list, or a list with no checksum line.
pub async fn check(
    opts: &Options,
    runtime: Option<Arc<dyn Runtime>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, JobError> {
    let lists = match opts.paths.is_empty() {
        true => vec![PathBuf::from("-")],
        false => opts.paths.clone(),
    };
    let mut all_ok = true;
    for list_path in &lists {
        let shown = match list_path.as_os_str() == "-" {
            true => "standard input".to_string(),
            false => quote(list_path),
        };
        // A list is small: read it here, before the pipeline starts.
        let text = match read_list(list_path) {
            Ok(text) => text,
            Err(e) => {
                let _ = writeln!(err, "checksum: {shown}: {}", describe_error(&e));
                all_ok = false;
                continue;
            }
        };
        let lines = list::parse(&text, opts.algo.hex_len());
        let verbosity = opts.verbosity;
        let warn_line = |err: &mut dyn Write, number: u64| {
            if verbosity == Verbosity::Warn {
                let algo = opts.algo.name().to_uppercase();
                let _ = writeln!(
                    err,
                    "checksum: {shown}: {number}: improperly formatted {algo} checksum line"
                );
            }
        };
        if !lines.iter().any(|l| matches!(l, list::Line::Check(_))) {
            for line in &lines {
                if let list::Line::Misformatted(number) = line {
                    warn_line(err, *number);
                }
            }
            let _ = writeln!(
                err,
                "checksum: {shown}: no properly formatted checksum lines found"
            );
            all_ok = false;
            continue;
        }
        let mut counts = CheckCounts::default();
        check_list(
            lines,
            opts.algo,
            opts.parallelism,
            runtime.clone(),
            |checked| {
                let (path, verdict) = match checked {
                    Checked::Misformatted(number) => {
                        counts.misformatted += 1;
                        warn_line(err, number);
                        return Ok(());
                    }
                    Checked::File(path, verdict) => (path, verdict),
                };
                let word = match verdict {
                    Verdict::Unreadable { missing: true, .. } if opts.ignore_missing => {
                        return Ok(())
                    }
                    Verdict::Ok => {
                        counts.matched += 1;
                        "OK"
                    }
                    Verdict::Failed => {
                        counts.failed += 1;
                        "FAILED"
                    }
                    Verdict::Unreadable { error, .. } => {
                        counts.unreadable += 1;
                        let _ = writeln!(err, "checksum: {}: {error}", quote(&path));
                        "FAILED open or read"
                    }
                };
                match verbosity {
                    Verbosity::Status => Ok(()),
                    Verbosity::Quiet if word == "OK" => Ok(()),
                    _ => out.write_all(&check_line(&path, word)),
                }
            },
        )
        .await?;
        // Warnings go after the results, which must be out first.
        out.flush().map_err(JobError::Output)?;
        if verbosity != Verbosity::Status {
            for line in counts.warnings(opts.ignore_missing, &shown) {
                let _ = writeln!(err, "checksum: {line}");
            }
        }
        all_ok &= counts.matched > 0
            && counts.failed == 0
            && counts.unreadable == 0
            && (!opts.strict || counts.misformatted == 0);
    }
    Ok(all_ok)
}

fn read_list(path: &Path) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut text = Vec::new();
        io::stdin().lock().read_to_end(&mut text)?;
        Ok(text)
    } else {
        std::fs::read(path)
    }
}

/// What one list's check found.
#[derive(Debug, Default)]
struct CheckCounts {
    matched: u64,
    failed: u64,
    unreadable: u64,
    misformatted: u64,
}

impl CheckCounts {
    /// The summary warnings `sha256sum -c` prints, in its order.
    fn warnings(&self, ignore_missing: bool, list: &str) -> Vec<String> {
        let plural = |n: u64, one: &str, many: &str| match n {
            1 => format!("WARNING: {n} {one}"),
            _ => format!("WARNING: {n} {many}"),
        };
        let mut lines = Vec::new();
        if self.misformatted > 0 {
            lines.push(plural(
                self.misformatted,
                "line is improperly formatted",
                "lines are improperly formatted",
            ));
        }
        if self.unreadable > 0 {
            lines.push(plural(
                self.unreadable,
                "listed file could not be read",
                "listed files could not be read",
            ));
        }
        if self.failed > 0 {
            lines.push(plural(
                self.failed,
                "computed checksum did NOT match",
                "computed checksums did NOT match",
            ));
        }
        if ignore_missing && self.matched == 0 {
            lines.push(format!("{list}: no file was verified"));
        }
        lines
    }
}
