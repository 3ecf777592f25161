//! W2 — concurrent map and batching.
//!
//! Concurrent map: N items, each awaiting a 1 ms timer, at most 100 in
//! flight; ordered (`map_concurrent` vs `futures::StreamExt::buffered`) and
//! unordered (`map_concurrent_unordered` vs `buffer_unordered`), on smol
//! (`smol::Timer`) and on tokio (`tokio::time::sleep`), the same timer on
//! both sides. Target: flowline's throughput ≥ 0.97× the hand-written one.
//!
//! Batching: M u64 through `batch(1024, 10 ms)` vs tokio-stream's
//! `chunks_timeout(1024, 10 ms)`, on tokio, summing every batch.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::producer;
use flowline::runtime::Runtime;
use futures::StreamExt;

use crate::harness::{tokio_runtime, Case, Config, Report};

const W: &str = "W2";
const LIMIT: usize = 100;
const TICK: Duration = Duration::from_millis(1);
const BATCH: usize = 1024;
const BATCH_WAIT: Duration = Duration::from_millis(10);

async fn smol_tick() {
    smol::Timer::after(TICK).await;
}

async fn tokio_tick() {
    tokio::time::sleep(TICK).await;
}

/// Hand-written: `futures::StreamExt::buffered` / `buffer_unordered`.
async fn hand<T, Fut>(n: u64, ordered: bool, tick: T) -> u64
where
    T: Fn() -> Fut + Copy,
    Fut: Future<Output = ()>,
{
    let work = move |x: u64| async move {
        tick().await;
        x
    };
    let input = futures::stream::iter(0..n).map(work);
    let mut sum = 0u64;
    if ordered {
        let mut s = input.buffered(LIMIT);
        while let Some(x) = s.next().await {
            sum = sum.wrapping_add(x);
        }
    } else {
        let mut s = input.buffer_unordered(LIMIT);
        while let Some(x) = s.next().await {
            sum = sum.wrapping_add(x);
        }
    }
    sum
}

/// flowline: `map_concurrent` / `map_concurrent_unordered`.
async fn flowline<T, Fut>(n: u64, ordered: bool, tick: T, rt: Arc<dyn Runtime>) -> u64
where
    T: Fn() -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let work = move |x: u64| async move {
        tick().await;
        x
    };
    let input = producer::iter(0..n);
    let result = if ordered {
        input
            .map_concurrent(LIMIT, work)
            .on_runtime(Some(rt))
            .run_fold(0u64, u64::wrapping_add)
            .await
    } else {
        input
            .map_concurrent_unordered(LIMIT, work)
            .on_runtime(Some(rt))
            .run_fold(0u64, u64::wrapping_add)
            .await
    };
    result.expect("pipeline failed").0
}

fn sum_to(n: u64) -> u64 {
    (0..n).fold(0u64, u64::wrapping_add)
}

/// Times `peer` and `ours` alternately (one warm-up pair, then `cfg.runs`
/// pairs), records both medians as cases, and compares the median of the
/// per-pair throughput ratios `peer time / our time` with `target`.
///
/// Alternating matters on a shared machine: load comes in bursts, and two
/// back-to-back blocks of runs can see very different machines, while the
/// two halves of one pair see nearly the same.
fn measure_pair(
    cfg: &Config,
    report: &mut Report,
    runtime: &'static str,
    (items, expected): (u64, u64),
    (peer_name, mut peer): (String, impl FnMut() -> u64),
    (our_name, mut ours): (String, impl FnMut() -> u64),
    target: f64,
) {
    let mut peer_times = Vec::new();
    let mut our_times = Vec::new();
    let mut ratios = Vec::new();
    for run in 0..=cfg.runs {
        let start = Instant::now();
        assert_eq!(
            peer(),
            expected,
            "W2 `{peer_name}` on {runtime}: wrong result"
        );
        let p = start.elapsed();
        let start = Instant::now();
        assert_eq!(
            ours(),
            expected,
            "W2 `{our_name}` on {runtime}: wrong result"
        );
        let o = start.elapsed();
        if run > 0 {
            peer_times.push(p);
            our_times.push(o);
            ratios.push(p.as_secs_f64() / o.as_secs_f64());
        }
    }
    for (name, mut times) in [
        (peer_name.clone(), peer_times),
        (our_name.clone(), our_times),
    ] {
        times.sort();
        let case = Case {
            workload: W,
            name,
            runtime,
            items,
            median: times[times.len() / 2],
        };
        // Recorded with its own fastest and slowest run (the docs' spread
        // column is indexed like the cases).
        report.push_case(case, &times);
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    report.compare(
        W,
        format!("{our_name} / {peer_name} throughput ({runtime}, median of pairs)"),
        ratio,
        format!(">= {target}"),
        ratio >= target,
    );
}

/// Runs W2.
pub fn run(cfg: &Config, report: &mut Report) {
    let n = cfg.scale(20_000);
    let expected = sum_to(n);
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    let tokio = tokio_runtime();

    for ordered in [true, false] {
        let (peer, ours) = if ordered {
            ("StreamExt::buffered(100)", "map_concurrent(100)")
        } else {
            (
                "StreamExt::buffer_unordered(100)",
                "map_concurrent_unordered(100)",
            )
        };
        measure_pair(
            cfg,
            report,
            "smol",
            (n, expected),
            (peer.to_string(), || {
                smol::block_on(hand(n, ordered, smol_tick))
            }),
            (ours.to_string(), || {
                smol::block_on(flowline(n, ordered, smol_tick, smol_rt.clone()))
            }),
            0.97,
        );
        measure_pair(
            cfg,
            report,
            "tokio",
            (n, expected),
            (peer.to_string(), || {
                tokio.block_on(hand(n, ordered, tokio_tick))
            }),
            (ours.to_string(), || {
                tokio.block_on(async {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                    flowline(n, ordered, tokio_tick, rt).await
                })
            }),
            0.97,
        );
    }

    report.note(
        W,
        "map_concurrent* keep an eager task that moves in-flight futures while the \
         consumer is busy; a waiting consumer drives the same engine itself, so a round \
         of timer wake-ups needs no thread hop. Pairs are interleaved to share the load.",
    );

    // Batching.
    let m = cfg.scale(10_000_000);
    let expected = sum_to(m);
    let peer = || {
        tokio.block_on(async {
            let chunks = tokio_stream::StreamExt::chunks_timeout(
                futures::stream::iter(0..m),
                BATCH,
                BATCH_WAIT,
            );
            let mut chunks = std::pin::pin!(chunks);
            let mut sum = 0u64;
            while let Some(batch) = chunks.next().await {
                sum = batch.iter().fold(sum, |a, &x| a.wrapping_add(x));
            }
            sum
        })
    };
    let ours = || {
        tokio.block_on(async {
            let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
            producer::iter(0..m)
                .batch(BATCH, BATCH_WAIT)
                .on_runtime(Some(rt))
                .run_fold(0u64, |sum, batch| {
                    batch.iter().fold(sum, |a, &x| a.wrapping_add(x))
                })
                .await
                .expect("pipeline failed")
                .0
        })
    };
    measure_pair(
        cfg,
        report,
        "tokio",
        (m, expected),
        ("tokio-stream chunks_timeout(1024, 10 ms)".to_string(), peer),
        ("flowline batch(1024, 10 ms)".to_string(), ours),
        0.97,
    );
}
