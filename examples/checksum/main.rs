//! The main job: `sha256sum` / `b3sum` for whole trees, on flowline.
//!
//! Hashes every path given (directories walked, entries sorted) with
//! SHA-256 or BLAKE3, reading and hashing on a blocking stage with
//! `--parallelism N` threads, and prints one `<hex>  <name>` line per file
//! as soon as it and every line before it are done — byte for byte what
//! `sha256sum` (or `b3sum`) prints for the same files, escapes included, so
//! `sha256sum -c` / `b3sum -c` can check the output and `checksum --check`
//! can check theirs.
//!
//! ```text
//! cargo run --release --example checksum -- [--algo sha256|blake3] [PATH]...
//! cargo run --release --example checksum -- --check SUMS
//! ```
//!
//! Behaves as a coreutils tool: quiet when stdout is closed
//! (`checksum DIR | head`), never panics on a closed stderr, exit status 1
//! when a file cannot be read or does not match. A progress bar is drawn on
//! stderr when it is a terminal and stdout is not. `--help` for the rest.

mod job;
#[path = "../common/runtime.rs"]
mod runtime;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use job::cli::{self, Options};
use job::Entry;

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "",
    tokio_hint: "cargo run --release --example checksum --features tokio -- --runtime tokio",
};

fn main() -> ExitCode {
    let opts = match cli::parse_args(std::env::args_os().skip(1)) {
        Ok(opts) if opts.help => {
            let _ = writeln!(io::stdout(), "{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(opts) => opts,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "checksum: {e}\nTry 'checksum --help' for more information."
            );
            return ExitCode::from(2);
        }
    };
    let bar = progress_bar(&opts);
    let mut err = Stderr {
        bar: bar.clone(),
        line: Vec::new(),
    };
    let mut seen_bytes = 0u64;
    let mut on_entry = |entry: &Entry| {
        if let (Some(bar), Entry::Hashed { bytes, .. }) = (&bar, entry) {
            seen_bytes += bytes;
            bar.inc(1);
            bar.set_message(format!("{:.1} MB", seen_bytes as f64 / 1e6));
        }
    };
    // std's stdout is line-buffered, as coreutils sets it up: each line is
    // out as soon as it is known.
    let mut out = io::stdout().lock();
    let status = runtime::block_on(EXAMPLE, &opts.runtime, |rt| async {
        Ok::<_, runtime::Error>(cli::run(&opts, rt, &mut out, &mut err, &mut on_entry).await)
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match status {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            let _ = writeln!(io::stderr(), "checksum: {e}");
            ExitCode::from(2)
        }
    }
}

/// A spinner on stderr when someone watches it and stdout goes elsewhere
/// (stdout lines on the same terminal would tear the bar).
fn progress_bar(opts: &Options) -> Option<ProgressBar> {
    if opts.check || !io::stderr().is_terminal() || io::stdout().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template("{spinner} {elapsed} {pos} files, {msg}").ok()?;
    let bar = ProgressBar::new_spinner().with_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

/// stderr, printing above the progress bar while there is one: whole lines
/// at a time, so that the bar is not redrawn in the middle of one.
struct Stderr {
    bar: Option<ProgressBar>,
    line: Vec<u8>,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(bar) = &self.bar else {
            return io::stderr().write(buf);
        };
        self.line.extend_from_slice(buf);
        if let Some(end) = self.line.iter().rposition(|&b| b == b'\n') {
            let lines: Vec<u8> = self.line.drain(..=end).collect();
            bar.suspend(|| io::stderr().write_all(&lines))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let lines = std::mem::take(&mut self.line);
        match &self.bar {
            Some(bar) => bar.suspend(|| io::stderr().write_all(&lines)),
            None => io::stderr().write_all(&lines),
        }
    }
}
