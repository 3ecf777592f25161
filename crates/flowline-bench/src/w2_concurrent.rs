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
use std::time::Duration;

use flowline::producer;
use flowline::runtime::Runtime;
use futures::StreamExt;

use crate::harness::{tokio_runtime, Config, Report};

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
            .fold(0u64, u64::wrapping_add)
            .await
    } else {
        input
            .map_concurrent_unordered(LIMIT, work)
            .on_runtime(Some(rt))
            .fold(0u64, u64::wrapping_add)
            .await
    };
    result.expect("pipeline failed").0
}

async fn flowline_free(n: u64, ordered: bool) -> u64 {
    let work = move |x: u64| async move {
        smol_tick().await;
        x
    };
    let input = producer::iter(0..n);
    let result = if ordered {
        input.map_concurrent(LIMIT, work).fold(0u64, u64::wrapping_add).await
    } else {
        input.map_concurrent_unordered(LIMIT, work).fold(0u64, u64::wrapping_add).await
    };
    result.expect("pipeline failed").0
}

fn sum_to(n: u64) -> u64 {
    (0..n).fold(0u64, u64::wrapping_add)
}

/// Runs W2.
pub fn run(cfg: &Config, report: &mut Report) {
    let n = cfg.scale(20_000);
    let expected = sum_to(n);
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    let tokio = tokio_runtime();

    for ordered in [true, false] {
        let (peer, ours) = if ordered {
            ("StreamExt::buffered(100)", "flowline map_concurrent(100)")
        } else {
            (
                "StreamExt::buffer_unordered(100)",
                "flowline map_concurrent_unordered(100)",
            )
        };
        let h = report.measure(
            cfg,
            W,
            format!("{peer}, 1 ms timer"),
            "smol",
            n,
            expected,
            || smol::block_on(hand(n, ordered, smol_tick)),
        );
        let f = report.measure(
            cfg,
            W,
            format!("{ours}, 1 ms timer"),
            "smol",
            n,
            expected,
            || smol::block_on(flowline(n, ordered, smol_tick, smol_rt.clone())),
        );
        if std::env::var_os("W2_EXPERIMENT").is_some() {
            report.measure(cfg, W, format!("{peer} spawned"), "smol", n, expected, || {
                smol::block_on(smol::spawn(hand(n, ordered, smol_tick)))
            });
            let rt = smol_rt.clone();
            report.measure(cfg, W, format!("{ours} spawned"), "smol", n, expected, || {
                smol::block_on(smol::spawn(flowline(n, ordered, smol_tick, rt.clone())))
            });
            report.measure(cfg, W, format!("{ours} runtime-free"), "smol", n, expected, || {
                smol::block_on(flowline_free(n, ordered))
            });
        }
        let ratio = h.ns_per_item() / f.ns_per_item();
        report.compare(
            W,
            format!("{ours} / {peer} throughput (smol)"),
            ratio,
            ">= 0.97",
            ratio >= 0.97,
        );

        let h = report.measure(
            cfg,
            W,
            format!("{peer}, 1 ms timer"),
            "tokio",
            n,
            expected,
            || tokio.block_on(hand(n, ordered, tokio_tick)),
        );
        let f = report.measure(
            cfg,
            W,
            format!("{ours}, 1 ms timer"),
            "tokio",
            n,
            expected,
            || {
                tokio.block_on(async {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                    flowline(n, ordered, tokio_tick, rt).await
                })
            },
        );
        let ratio = h.ns_per_item() / f.ns_per_item();
        report.compare(
            W,
            format!("{ours} / {peer} throughput (tokio)"),
            ratio,
            ">= 0.97",
            ratio >= 0.97,
        );
    }

    // Batching.
    let m = cfg.scale(10_000_000);
    let expected = sum_to(m);
    let h = report.measure(
        cfg,
        W,
        "tokio-stream chunks_timeout(1024, 10 ms)",
        "tokio",
        m,
        expected,
        || {
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
        },
    );
    let f = report.measure(
        cfg,
        W,
        "flowline batch(1024, 10 ms)",
        "tokio",
        m,
        expected,
        || {
            tokio.block_on(async {
                let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                producer::iter(0..m)
                    .batch(BATCH, BATCH_WAIT)
                    .on_runtime(Some(rt))
                    .fold(0u64, |sum, batch| {
                        batch.iter().fold(sum, |a, &x| a.wrapping_add(x))
                    })
                    .await
                    .expect("pipeline failed")
                    .0
            })
        },
    );
    let ratio = h.ns_per_item() / f.ns_per_item();
    report.compare(
        W,
        "flowline batch / chunks_timeout throughput (tokio)",
        ratio,
        ">= 0.97",
        ratio >= 0.97,
    );
}
