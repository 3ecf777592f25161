//! The main job: checksum every file under a directory.
//!
//! Walks the tree (default: the current directory) on a thread of its own,
//! reads and hashes each regular file (SHA-256) on a blocking stage with
//! `--parallelism N` threads, aggregates on the async side, and prints one
//! `<hex>  <path>` line per file, sorted — the format of `sha256sum`, so
//! `sha256sum -c` can check the output. A live progress bar is drawn on
//! stderr when it is a terminal; a summary (files, bytes, MB/s, the per-stage
//! report) follows on stderr.
//!
//! Unreadable files are reported on stderr and skipped (exit status 1, as
//! `sha256sum` does); symlinks, FIFOs, sockets and devices are skipped
//! without being opened, so none can hang the run.
//!
//! ```text
//! cargo run --release --example checksum -- [DIR] [--parallelism N] [--runtime smol|tokio|none]
//! ```

mod job;
#[path = "../common/runtime.rs"]
mod runtime;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::runtime::Runtime;
use indicatif::{ProgressBar, ProgressStyle};
use job::{checksum_tree, Entry};

use runtime::Error;

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "",
    tokio_hint: "cargo run --release --example checksum --features tokio -- --runtime tokio",
};

struct Args {
    root: PathBuf,
    parallelism: usize,
    runtime: String,
}

async fn run(args: &Args, runtime: Option<Arc<dyn Runtime>>) -> Result<bool, Error> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template(
            "{spinner} {elapsed} {pos} files, {msg}",
        )?);
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    } else {
        None
    };
    let start = Instant::now();
    let mut seen_bytes = 0u64;
    let sums = checksum_tree(&args.root, args.parallelism, runtime, |entry| match entry {
        Entry::Hashed { bytes, .. } => {
            seen_bytes += bytes;
            if let Some(bar) = &progress {
                bar.inc(1);
                bar.set_message(format!("{:.1} MB", seen_bytes as f64 / 1e6));
            }
        }
        Entry::Unreadable { path, error } => {
            let line = format!("checksum: {}: {error}", path.display());
            match &progress {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
        Entry::Skipped { .. } => {}
    })
    .await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let elapsed = start.elapsed();

    let mut stdout = std::io::stdout().lock();
    stdout.write_all(sums.listing().as_bytes())?;
    stdout.flush()?;

    let mb = sums.bytes as f64 / 1e6;
    eprintln!(
        "\n{} files, {:.1} MB in {:.3?} ({:.1} MB/s) with {} threads on {}; {} skipped, {} unreadable",
        sums.files.len(),
        mb,
        elapsed,
        mb / elapsed.as_secs_f64().max(1e-9),
        args.parallelism,
        args.runtime,
        sums.skipped.len(),
        sums.unreadable.len(),
    );
    eprintln!("{}", sums.report);
    Ok(sums.unreadable.is_empty())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("checksum: {e}\nusage: checksum [DIR] [--parallelism N] [--runtime smol|tokio|none]");
            return ExitCode::from(2);
        }
    };
    let result = runtime::block_on(EXAMPLE, &args.runtime, |rt| run(&args, rt));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("checksum: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse_args() -> Result<Args, Error> {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let mut args = Args {
        root: PathBuf::from("."),
        // Reads wait on the disk as much as they hash: more threads than cores.
        parallelism: (2 * cores).max(4),
        runtime: "smol".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{key} needs a value"))
        };
        match key.as_str() {
            "--parallelism" | "-j" => {
                let n: usize = value()?
                    .parse()
                    .map_err(|e| format!("--parallelism: {e}"))?;
                if n == 0 {
                    return Err("--parallelism must be at least 1".into());
                }
                args.parallelism = n;
            }
            "--runtime" => args.runtime = value()?,
            _ if key.starts_with('-') => return Err(format!("unknown option `{key}`").into()),
            _ => args.root = PathBuf::from(arg),
        }
    }
    Ok(args)
}
