//! Scale out: many workers share one Redis stream of work through a
//! consumer group, each entry acked once its result is out.
//!
//! `--role producer` adds `--count` entries (`n` = 1..=count) to
//! `--stream`. `--role worker` (start several, on one machine or many)
//! reads the stream in group `workers` as consumer `--name`, squares each
//! `n` (taking `--work-us` microseconds per item), appends
//! `n`, `square` and the worker's name to `<stream>:results`, and acks the
//! entry once that append is confirmed. A worker stops when no new entry
//! came for `--idle-exit-ms` and prints its counts. Kill one mid-run: the
//! others take over its pending entries after `--min-idle-ms`.
//!
//! ```text
//! redis-server --port 6379 --save '' &
//! cargo run --release --features redis --example redis_workers -- --role producer --count 100000
//! cargo run --release --features redis --example redis_workers -- --role worker --name w1 &
//! cargo run --release --features redis --example redis_workers -- --role worker --name w2 --runtime tokio
//! ```
//!
//! Flags: `--url` (default `redis://127.0.0.1:6379/`), `--stream` (default
//! `jobs`), `--runtime smol|tokio|none`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[path = "common/runtime.rs"]
mod runtime;

use flowline::producer;
use flowline::redis::{self, CommitPolicy};
use flowline::runtime::Runtime;

fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, runtime::Error> {
    match runtime::arg(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: cannot parse {v:?}").into()),
    }
}

/// Adds `count` entries, `n` = 1..=count, through a pipelined XADD sink.
async fn produce(
    rt: Option<Arc<dyn Runtime>>,
    url: &str,
    stream: &str,
) -> Result<(), runtime::Error> {
    let count: u64 = arg_or("--count", 10_000)?;
    let report = producer::iter(1..=count)
        .map(|n| vec![("n".to_string(), n.to_string().into_bytes())])
        .on_runtime(rt)
        .run(redis::sink(url, stream))
        .await?;
    println!("producer: added {} entries to {stream}", report.delivered());
    Ok(())
}

/// Reads the group until idle, writes one result per entry, prints counts.
async fn work(rt: Option<Arc<dyn Runtime>>, url: &str, stream: &str) -> Result<(), runtime::Error> {
    let name: String = arg_or("--name", format!("worker-{}", std::process::id()))?;
    let work = Duration::from_micros(arg_or("--work-us", 0)?);
    let min_idle = Duration::from_millis(arg_or("--min-idle-ms", 5_000)?);
    let idle_exit = Duration::from_millis(arg_or("--idle-exit-ms", 2_000)?);
    let jobs = redis::source(url, stream, "workers", &name)
        .max_count(arg_or("--batch", 500)?)
        .min_idle(min_idle)
        .reclaim_every(min_idle / 2)
        .block(idle_exit)
        .stop_when_empty()
        .connect()
        .await?;
    let worker = name.clone();
    let rt2 = rt.clone();
    let results = format!("{stream}:results");
    let report = jobs
        .commit_policy(CommitPolicy::default().max_batch(500))
        .map(|entry| entry.get_str("n").and_then(|n| n.parse::<u64>().ok()))
        // An entry without a number is acked and dropped.
        .filter_map(|n| n)
        .then(move |n| {
            let rt = rt2.clone();
            async move {
                if !work.is_zero() {
                    match rt {
                        Some(rt) => flowline::runtime::RuntimeExt::sleep(&*rt, work).await,
                        None => std::thread::sleep(work),
                    }
                }
                n
            }
        })
        .map(move |n| {
            vec![
                ("n".to_string(), n.to_string().into_bytes()),
                ("square".to_string(), (n * n).to_string().into_bytes()),
                ("worker".to_string(), worker.clone().into_bytes()),
            ]
        })
        .on_runtime(rt)
        .run(redis::sink(url, &results))
        .await?;
    // The source's counts are in the run's report (and its table).
    let r = &redis::source_reports(&report)[0];
    println!(
        "worker {name}: read {} (redelivered {}, reclaimed {}), processed {}, skipped {}, acked {}, pending {}, dead-lettered {}",
        r.read, r.redelivered, r.reclaimed, r.taken, r.settled, r.acked, r.pending(), r.dead_lettered
    );
    println!("{report}");
    Ok(())
}

fn main() -> ExitCode {
    let example = runtime::Example {
        smol_hint: "cargo run --features redis --example redis_workers",
        tokio_hint: "cargo run --features redis,tokio --example redis_workers -- --runtime tokio",
    };
    let url = runtime::arg("--url").unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let stream = runtime::arg("--stream").unwrap_or_else(|| "jobs".into());
    let role = runtime::arg("--role").unwrap_or_default();
    let rt = runtime::runtime_arg();
    runtime::exit_code(match role.as_str() {
        "producer" => runtime::block_on(example, &rt, |rt| produce(rt, &url, &stream)),
        "worker" => runtime::block_on(example, &rt, |rt| work(rt, &url, &stream)),
        other => Err(format!("--role must be producer or worker, got {other:?}").into()),
    })
}
