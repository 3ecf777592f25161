//! W3 — blocking work: flowline's `map_blocking` against a `spawn_blocking`
//! (tokio) or `blocking::unblock` (smol's pool) per item, and the checksum
//! job against `b3sum` and `sha256sum`.
//!
//! (i) n items that each sleep 5 ms, 32 at a time: efficiency = ideal
//!     (n × 5 ms / 32) / measured; target ≥ 0.96 and no worse than either peer.
//! (ii) no-op items: per-item overhead; target ≤ 1/10 of `spawn_blocking`.
//! (iii), (iv) the checksum job (`examples/checksum`) against `b3sum` and
//!     `sha256sum`: see [`checksum`].

use std::sync::Arc;
use std::time::Duration;

use flowline::producer;
use flowline::runtime::Runtime;
use futures::StreamExt;

use crate::harness::{tokio_runtime, Config, Report};

#[path = "w3_checksum.rs"]
mod checksum;

const W: &str = "W3";
const IN_FLIGHT: usize = 32;
const SLEEP: Duration = Duration::from_millis(5);

fn sleepy(x: u64) -> u64 {
    std::thread::sleep(SLEEP);
    x
}

/// `map_blocking_unordered`, like the peers' `buffer_unordered`.
async fn flowline_map_blocking(n: u64, f: fn(u64) -> u64, rt: Option<Arc<dyn Runtime>>) -> u64 {
    let (sum, _) = producer::iter(0..n)
        .map_blocking_unordered(IN_FLIGHT, f)
        .on_runtime(rt)
        .fold(0u64, |a, x| a.wrapping_add(x))
        .await
        .unwrap();
    sum
}

/// The ordered variant: results wait for earlier ones inside the in-flight
/// limit, so a slow item can hold the others back.
async fn flowline_map_blocking_ordered(
    n: u64,
    f: fn(u64) -> u64,
    rt: Option<Arc<dyn Runtime>>,
) -> u64 {
    let (sum, _) = producer::iter(0..n)
        .map_blocking(IN_FLIGHT, f)
        .on_runtime(rt)
        .fold(0u64, |a, x| a.wrapping_add(x))
        .await
        .unwrap();
    sum
}

async fn tokio_spawn_blocking(n: u64, f: fn(u64) -> u64) -> u64 {
    futures::stream::iter(0..n)
        .map(|x| tokio::task::spawn_blocking(move || f(x)))
        .buffer_unordered(IN_FLIGHT)
        .fold(0u64, |a, x| async move { a.wrapping_add(x.unwrap()) })
        .await
}

async fn blocking_unblock(n: u64, f: fn(u64) -> u64) -> u64 {
    futures::stream::iter(0..n)
        .map(|x| blocking::unblock(move || f(x)))
        .buffer_unordered(IN_FLIGHT)
        .fold(0u64, |a, x| async move { a.wrapping_add(x) })
        .await
}

pub fn run(cfg: &Config, report: &mut Report) {
    let tokio_rt = tokio_runtime();
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());

    // (i) sleeping items.
    let n = cfg.scale(2_000);
    let expected = n * (n - 1) / 2;
    let ideal = SLEEP.as_secs_f64() * n as f64 / IN_FLIGHT as f64;
    let eff = |name: &str, rt: &'static str, f: &mut dyn FnMut() -> u64, report: &mut Report| {
        let case = report.measure(
            cfg,
            W,
            format!("(i) {name} sleep 5ms x32"),
            rt,
            n,
            expected,
            f,
        );
        ideal / case.median.as_secs_f64()
    };
    let fl_tokio = eff(
        "flowline map_blocking_unordered",
        "tokio",
        &mut || {
            tokio_rt.block_on(async {
                let rt = Arc::new(flowline::tokio::TokioRuntime::current());
                flowline_map_blocking(n, sleepy, Some(rt)).await
            })
        },
        report,
    );
    let fl_smol = eff(
        "flowline map_blocking_unordered",
        "smol",
        &mut || smol::block_on(flowline_map_blocking(n, sleepy, Some(smol_rt.clone()))),
        report,
    );
    let fl_none = eff(
        "flowline map_blocking_unordered",
        "none",
        &mut || futures::executor::block_on(flowline_map_blocking(n, sleepy, None)),
        report,
    );
    let fl_ordered = eff(
        "flowline map_blocking (ordered)",
        "smol",
        &mut || {
            smol::block_on(flowline_map_blocking_ordered(
                n,
                sleepy,
                Some(smol_rt.clone()),
            ))
        },
        report,
    );
    let sb = eff(
        "spawn_blocking per item",
        "tokio",
        &mut || tokio_rt.block_on(tokio_spawn_blocking(n, sleepy)),
        report,
    );
    let ub = eff(
        "blocking::unblock per item",
        "smol",
        &mut || smol::block_on(blocking_unblock(n, sleepy)),
        report,
    );
    for (rt, e) in [("tokio", fl_tokio), ("smol", fl_smol), ("none", fl_none)] {
        report.compare(
            W,
            format!("(i) efficiency flowline ({rt})"),
            e,
            ">= 0.96",
            e >= 0.96,
        );
    }
    report.note(
        W,
        format!(
            "(i) efficiency spawn_blocking {sb:.3}, blocking::unblock {ub:.3}, \
             flowline ordered (smol) {fl_ordered:.3}"
        ),
    );
    let best_flowline = fl_tokio.max(fl_smol).max(fl_none);
    report.compare(
        W,
        "(i) flowline / best peer efficiency",
        best_flowline / sb.max(ub),
        ">= 1.0",
        best_flowline >= sb.max(ub) * 0.995,
    );

    // (ii) no-op items: per-item overhead.
    let n = cfg.scale(200_000);
    let expected = n * (n - 1) / 2;
    let noop: fn(u64) -> u64 = std::convert::identity;
    let fl = report.measure(
        cfg,
        W,
        "(ii) flowline map_blocking_unordered no-op x32",
        "tokio",
        n,
        expected,
        || {
            tokio_rt.block_on(async {
                let rt = Arc::new(flowline::tokio::TokioRuntime::current());
                flowline_map_blocking(n, noop, Some(rt)).await
            })
        },
    );
    let fl_smol = report.measure(
        cfg,
        W,
        "(ii) flowline map_blocking_unordered no-op x32",
        "smol",
        n,
        expected,
        || smol::block_on(flowline_map_blocking(n, noop, Some(smol_rt.clone()))),
    );
    let sb = report.measure(
        cfg,
        W,
        "(ii) spawn_blocking per item no-op x32",
        "tokio",
        n,
        expected,
        || tokio_rt.block_on(tokio_spawn_blocking(n, noop)),
    );
    let ub = report.measure(
        cfg,
        W,
        "(ii) blocking::unblock per item no-op x32",
        "smol",
        n,
        expected,
        || smol::block_on(blocking_unblock(n, noop)),
    );
    let r = fl.ns_per_item() / sb.ns_per_item();
    report.compare(
        W,
        "(ii) flowline / spawn_blocking per item (tokio)",
        r,
        "<= 0.1",
        r <= 0.1,
    );
    let r = fl_smol.ns_per_item() / ub.ns_per_item();
    report.compare(
        W,
        "(ii) flowline / blocking::unblock per item (smol)",
        r,
        "<= 0.1",
        r <= 0.1,
    );

    // (iii), (iv): the checksum job against `b3sum` and `sha256sum`.
    checksum::run(cfg, report, &smol_rt);
}
