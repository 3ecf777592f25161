//! W6 — the same three patterns in Python asyncio, run with the system
//! `python3`, against the equivalent flowline case measured in the same run:
//!
//! 1. async generator → consumer (sum);
//! 2. `asyncio.Queue` producer/consumer with the blocking call in
//!    `asyncio.to_thread`, one call at a time (1 ms sleeps, and no-ops);
//! 3. a plain thread handing items over with `call_soon_threadsafe`.
//!
//! The scripts live in `crates/flowline-bench/python/`; each times its own work
//! (leaving out interpreter start-up) and prints `<elapsed ns> <checksum>`,
//! which the harness checks. Without `python3` the workload is skipped with a
//! note.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use flowline::producer;
use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};

use crate::harness::{tokio_runtime, Config, Report};

const W: &str = "W6";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// `python3 --version`, or `None` when there is no usable `python3`.
fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if v.is_empty() {
        v = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Some(v)
}

/// Runs a script once; returns `(checksum, elapsed)` as it printed them.
fn try_script(name: &str, args: &[String]) -> Result<(u64, Duration), String> {
    let out = Command::new("python3")
        .arg(script(name))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let ns: u64 = it.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let sum: u64 = it.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    Ok((sum, Duration::from_nanos(ns)))
}

/// Like [`try_script`], for a script that already ran once.
///
/// # Panics
///
/// If the script fails.
fn run_script(name: &str, args: &[String]) -> (u64, Duration) {
    try_script(name, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs each script on a tiny input; `Err` names the first that fails (e.g. a
/// Python too old for `asyncio.to_thread`, which needs 3.9).
fn preflight() -> Result<(), String> {
    try_script("async_generator.py", &["10".into()])?;
    try_script("queue_to_thread.py", &["10".into(), "0".into()])?;
    try_script("thread_bridge.py", &["10".into()])?;
    Ok(())
}

fn ratio_note(report: &mut Report, what: &str, py: f64, fl: f64) {
    report.note(
        W,
        format!(
            "{what}: Python asyncio takes {:.1}x flowline's time per item",
            py / fl
        ),
    );
}

/// Pattern 1 in flowline: an async generator into a summing consumer.
async fn generator_sum(n: u64) -> u64 {
    producer::generator(move |out| async move {
        for i in 0..n {
            out.emit(i).await;
        }
    })
    .run_fold(0u64, u64::wrapping_add)
    .await
    .expect("pipeline failed")
    .0
}

/// Pattern 2 in flowline: a bounded queue (boundary of 64) then one blocking
/// call at a time on the runtime's blocking pool (`then` + `spawn_blocking`;
/// the dedicated `map_blocking` stage lands with issue 4).
async fn blocking_sum(n: u64, sleep: Duration, rt: Arc<dyn Runtime>) -> u64 {
    let pool = rt.clone();
    producer::iter(0..n)
        .boundary(64)
        .then(move |x| {
            let call = pool.spawn_blocking(move || {
                if !sleep.is_zero() {
                    std::thread::sleep(sleep);
                }
                2 * x
            });
            async move { call.await.expect("blocking call failed") }
        })
        .on_runtime(Some(rt))
        .run_fold(0u64, u64::wrapping_add)
        .await
        .expect("pipeline failed")
        .0
}

/// Pattern 3 in flowline: a plain thread pushes into a `Feeder`, whose
/// pipeline sums the items.
fn bridge_sum(n: u64) -> u64 {
    let (feeder, pipeline) = flowline::bridge::feeder::<u64>(1024);
    let pusher = std::thread::spawn(move || {
        for i in 0..n {
            if feeder.push(i).is_err() {
                return;
            }
        }
    });
    let sum = futures::executor::block_on(pipeline.run_fold(0u64, u64::wrapping_add))
        .expect("pipeline failed")
        .0;
    pusher.join().expect("pusher thread");
    sum
}

/// Runs W6.
pub fn run(cfg: &Config, report: &mut Report) {
    let Some(version) = python_version() else {
        report.note(W, "skipped: no `python3` on PATH");
        return;
    };
    report.note(
        W,
        format!("Python: {version} (asyncio, default event loop)"),
    );
    report.baseline_per_group(W);

    // 1. async generator → consumer.
    let n = cfg.scale(1_000_000);
    let want = (0..n).fold(0u64, u64::wrapping_add);
    let fl = report.measure(
        cfg,
        W,
        "async generator -> consumer (flowline generator)",
        "none",
        n,
        want,
        || futures::executor::block_on(generator_sum(n)),
    );
    let py = report.measure_timed(
        cfg,
        W,
        "async generator -> consumer (asyncio async for)",
        "python",
        n,
        want,
        || run_script("async_generator.py", &[n.to_string()]),
    );
    ratio_note(
        report,
        "async generator",
        py.ns_per_item(),
        fl.ns_per_item(),
    );

    // 2. queue + blocking work, one call at a time: 1 ms sleeps, then no-ops.
    let tokio = tokio_runtime();
    for (n, sleep_ms) in [(cfg.scale(2_000), 1u64), (cfg.scale(10_000), 0)] {
        let sleep = Duration::from_millis(sleep_ms);
        let want = (0..n).fold(0u64, |a, x| a.wrapping_add(2 * x));
        let what = if sleep_ms > 0 {
            format!("queue -> blocking {sleep_ms} ms call")
        } else {
            "queue -> blocking no-op call".to_string()
        };
        let free = report.measure(
            cfg,
            W,
            format!("{what} (flowline then+spawn_blocking)"),
            "none",
            n,
            want,
            || futures::executor::block_on(blocking_sum(n, sleep, Arc::new(RuntimeFree))),
        );
        let tok = report.measure(
            cfg,
            W,
            format!("{what} (flowline then+spawn_blocking)"),
            "tokio",
            n,
            want,
            || {
                tokio.block_on(async {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                    blocking_sum(n, sleep, rt).await
                })
            },
        );
        let py = report.measure_timed(
            cfg,
            W,
            format!("{what} (asyncio.Queue + to_thread)"),
            "python",
            n,
            want,
            || run_script("queue_to_thread.py", &[n.to_string(), sleep_ms.to_string()]),
        );
        ratio_note(
            report,
            &format!("{what}, runtime-free"),
            py.ns_per_item(),
            free.ns_per_item(),
        );
        ratio_note(
            report,
            &format!("{what}, tokio"),
            py.ns_per_item(),
            tok.ns_per_item(),
        );
        if sleep_ms > 0 {
            let ideal = sleep_ms as f64 * 1e6;
            report.note(
                W,
                format!(
                    "{what}: efficiency vs ideal ({sleep_ms} ms per item, one at a time): flowline runtime-free {:.3}, tokio {:.3}, Python {:.3}",
                    ideal / free.ns_per_item(),
                    ideal / tok.ns_per_item(),
                    ideal / py.ns_per_item()
                ),
            );
        }
    }

    // 3. thread → async bridge.
    let n = cfg.scale(1_000_000);
    let n_py = cfg.scale(200_000);
    let want = (0..n).fold(0u64, u64::wrapping_add);
    let want_py = (0..n_py).fold(0u64, u64::wrapping_add);
    let fl = report.measure(
        cfg,
        W,
        "thread -> async bridge (flowline Feeder::push)",
        "none",
        n,
        want,
        || bridge_sum(n),
    );
    let py = report.measure_timed(
        cfg,
        W,
        "thread -> async bridge (call_soon_threadsafe)",
        "python",
        n_py,
        want_py,
        || run_script("thread_bridge.py", &[n_py.to_string()]),
    );
    ratio_note(report, "thread bridge", py.ns_per_item(), fl.ns_per_item());
}
