//! W1 — a linear 3-stage pipeline over N u64 (map ×3, keep even, sum).
//!
//! Hand-written peers and flowline, side by side in one run:
//! sync loop (the floor), `futures::StreamExt` in one task, flowline fused,
//! per-stage spawned tasks joined by per-item queues (async-channel on smol and
//! tokio, tokio mpsc on tokio), the same tasks passing hand-chunked batches of
//! 256 over async-channel, and flowline with a boundary between each stage —
//! the queued variants on smol and on tokio (2 workers).

use std::sync::Arc;

use flowline::producer;
use flowline::runtime::Runtime;
use futures::StreamExt;

use crate::harness::{tokio_runtime, Case, Config, Report};

const W: &str = "W1";
/// Queue capacity between stages, in items, for the queued variants that
/// have no capacity of their own (tokio mpsc, hand-chunked batches).
const CAPACITY: usize = 1024;

/// Capacities at which (c) and (d) are compared, both with the same capacity:
/// a small queue, where every hand-off is felt, and one large enough for
/// flowline's batches to amortise the executor's wake-ups.
const COMPARED_CAPACITIES: [usize; 2] = [1024, 8192];

#[inline(always)]
fn f1(x: u64) -> u64 {
    x.wrapping_mul(3)
}
#[inline(always)]
fn f2(x: u64) -> u64 {
    x.wrapping_add(7)
}
#[inline(always)]
fn f3(x: u64) -> u64 {
    x ^ 0x55
}
#[inline(always)]
fn keep(x: &u64) -> bool {
    x % 2 == 0
}

fn sync_loop(n: u64) -> u64 {
    (0..n)
        .map(f1)
        .map(f2)
        .map(f3)
        .filter(keep)
        .fold(0u64, u64::wrapping_add)
}

async fn stream_ext(n: u64) -> u64 {
    let mut s = futures::stream::iter(0..n)
        .map(f1)
        .map(f2)
        .map(f3)
        .filter(|x| futures::future::ready(keep(x)));
    let mut sum = 0u64;
    while let Some(x) = s.next().await {
        sum = sum.wrapping_add(x);
    }
    sum
}

async fn flowline_fused(n: u64) -> u64 {
    producer::iter(0..n)
        .map(f1)
        .map(f2)
        .map(f3)
        .filter(keep)
        .run_fold(0u64, u64::wrapping_add)
        .await
        .expect("pipeline failed")
        .0
}

async fn flowline_boundaries(n: u64, rt: Arc<dyn Runtime>, capacity: usize) -> u64 {
    producer::iter(0..n)
        .map(f1)
        .boundary(capacity)
        .map(f2)
        .boundary(capacity)
        .map(f3)
        .boundary(capacity)
        .filter(keep)
        .on_runtime(Some(rt))
        .run_fold(0u64, u64::wrapping_add)
        .await
        .expect("pipeline failed")
        .0
}

/// The hand-written version: one spawned task per stage, per-item
/// `async_channel::bounded(capacity)` queues between them.
async fn hand_tasks(
    n: u64,
    capacity: usize,
    spawn: impl Fn(futures::future::BoxFuture<'static, ()>),
) -> u64 {
    let (tx1, rx1) = async_channel::bounded::<u64>(capacity);
    let (tx2, rx2) = async_channel::bounded::<u64>(capacity);
    let (tx3, rx3) = async_channel::bounded::<u64>(capacity);
    spawn(Box::pin(async move {
        for x in 0..n {
            if tx1.send(f1(x)).await.is_err() {
                return;
            }
        }
    }));
    spawn(Box::pin(async move {
        while let Ok(x) = rx1.recv().await {
            if tx2.send(f2(x)).await.is_err() {
                return;
            }
        }
    }));
    spawn(Box::pin(async move {
        while let Ok(x) = rx2.recv().await {
            if tx3.send(f3(x)).await.is_err() {
                return;
            }
        }
    }));
    let mut sum = 0u64;
    while let Ok(x) = rx3.recv().await {
        if keep(&x) {
            sum = sum.wrapping_add(x);
        }
    }
    sum
}

/// Per-stage tasks joined by per-item `tokio::sync::mpsc::channel(CAPACITY)` queues.
async fn hand_tasks_tokio_mpsc(n: u64) -> u64 {
    use tokio::sync::mpsc::channel;
    let (tx1, mut rx1) = channel::<u64>(CAPACITY);
    let (tx2, mut rx2) = channel::<u64>(CAPACITY);
    let (tx3, mut rx3) = channel::<u64>(CAPACITY);
    tokio::spawn(async move {
        for x in 0..n {
            if tx1.send(f1(x)).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(x) = rx1.recv().await {
            if tx2.send(f2(x)).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(x) = rx2.recv().await {
            if tx3.send(f3(x)).await.is_err() {
                return;
            }
        }
    });
    let mut sum = 0u64;
    while let Some(x) = rx3.recv().await {
        if keep(&x) {
            sum = sum.wrapping_add(x);
        }
    }
    sum
}

/// Items per hand-made batch.
const BATCH: usize = 256;

/// The careful hand-written version: per-stage tasks passing `Vec` batches of
/// `BATCH` items over `async_channel::bounded(CAPACITY / BATCH)` (the same
/// number of items in flight as the per-item queues).
async fn hand_chunked(n: u64, spawn: impl Fn(futures::future::BoxFuture<'static, ()>)) -> u64 {
    let cap = CAPACITY / BATCH;
    let (tx1, rx1) = async_channel::bounded::<Vec<u64>>(cap);
    let (tx2, rx2) = async_channel::bounded::<Vec<u64>>(cap);
    let (tx3, rx3) = async_channel::bounded::<Vec<u64>>(cap);
    spawn(Box::pin(async move {
        let mut x = 0;
        while x < n {
            let end = (x + BATCH as u64).min(n);
            if tx1.send((x..end).map(f1).collect()).await.is_err() {
                return;
            }
            x = end;
        }
    }));
    spawn(Box::pin(async move {
        while let Ok(mut batch) = rx1.recv().await {
            batch.iter_mut().for_each(|x| *x = f2(*x));
            if tx2.send(batch).await.is_err() {
                return;
            }
        }
    }));
    spawn(Box::pin(async move {
        while let Ok(mut batch) = rx2.recv().await {
            batch.iter_mut().for_each(|x| *x = f3(*x));
            if tx3.send(batch).await.is_err() {
                return;
            }
        }
    }));
    let mut sum = 0u64;
    while let Ok(batch) = rx3.recv().await {
        for x in batch {
            if keep(&x) {
                sum = sum.wrapping_add(x);
            }
        }
    }
    sum
}

/// Measures (c) hand-written per-item tasks and (d) flowline boundaries at
/// each of [`COMPARED_CAPACITIES`] on one runtime, and sets their ratio
/// against issue 3's target. Returns (d) at the first capacity.
fn compare_capacities(
    cfg: &Config,
    report: &mut Report,
    runtime: &'static str,
    n: u64,
    expected: u64,
    hand: impl Fn(usize) -> u64,
    ours: impl Fn(usize) -> u64,
) -> Case {
    let mut first = None;
    for capacity in COMPARED_CAPACITIES {
        let c = report.measure(
            cfg,
            W,
            format!("(c) hand-written tasks, per-item async-channel, capacity {capacity}"),
            runtime,
            n,
            expected,
            || hand(capacity),
        );
        let d = report.measure(
            cfg,
            W,
            format!("(d) flowline, boundary between stages, capacity {capacity}"),
            runtime,
            n,
            expected,
            || ours(capacity),
        );
        let speedup = c.ns_per_item() / d.ns_per_item();
        report.compare(
            W,
            format!("(c) hand tasks / (d) flowline boundaries ({runtime}, capacity {capacity})"),
            speedup,
            ">= 20",
            speedup >= 20.0,
        );
        first.get_or_insert(d);
    }
    first.expect("at least one capacity")
}

/// Runs W1.
pub fn run(cfg: &Config, report: &mut Report) {
    let n = cfg.scale(10_000_000);
    let expected = sync_loop(n);

    let floor = report.measure(
        cfg,
        W,
        "sync iterator loop (floor)",
        "none",
        n,
        expected,
        || sync_loop(std::hint::black_box(n)),
    );
    // Alternated, so both see the same machine load: their ratio is a target.
    let (a, b) = report.measure_pair(
        cfg,
        W,
        n,
        expected,
        ("(a) StreamExt chain, one task", "none", &mut || {
            futures::executor::block_on(stream_ext(n))
        }),
        ("(b) flowline fused", "none", &mut || {
            futures::executor::block_on(flowline_fused(n))
        }),
    );
    let ratio = b.ns_per_item() / a.ns_per_item();
    report.compare(
        W,
        "(b) fused / (a) StreamExt",
        ratio,
        "<= 1.2",
        ratio <= 1.2,
    );
    let _ = floor;
    report.set_baseline(W, "(a) StreamExt chain, one task");

    // smol: the global executor with 2 threads (set in main), block_on on this one.
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    let d = compare_capacities(
        cfg,
        report,
        "smol",
        n,
        expected,
        |capacity| smol::block_on(hand_tasks(n, capacity, |t| smol::spawn(t).detach())),
        |capacity| smol::block_on(flowline_boundaries(n, smol_rt.clone(), capacity)),
    );
    let e = report.measure(
        cfg,
        W,
        "(e) hand-written tasks, chunks of 256, async-channel",
        "smol",
        n,
        expected,
        || smol::block_on(hand_chunked(n, |t| smol::spawn(t).detach())),
    );
    report.note(
        W,
        format!(
            "smol: flowline boundaries take {:.2}x the time of hand-chunked batches of {BATCH} (no target; below 1 means flowline is faster)",
            d.ns_per_item() / e.ns_per_item()
        ),
    );

    let tokio = tokio_runtime();
    let handle = tokio.handle().clone();
    let d = compare_capacities(
        cfg,
        report,
        "tokio",
        n,
        expected,
        |capacity| {
            let h = handle.clone();
            tokio.block_on(hand_tasks(n, capacity, move |t| drop(h.spawn(t))))
        },
        |capacity| {
            tokio.block_on(async {
                let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                flowline_boundaries(n, rt, capacity).await
            })
        },
    );
    let d2 = report.measure(
        cfg,
        W,
        "(d) flowline, boundaries, inside tokio::spawn",
        "tokio",
        n,
        expected,
        || {
            tokio.block_on(async {
                tokio::spawn(async move {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                    flowline_boundaries(n, rt, CAPACITY).await
                })
                .await
                .expect("task")
            })
        },
    );
    report.note(
        W,
        format!(
            "tokio: the same flowline pipeline run inside `tokio::spawn` (its last stage on a worker thread) takes {:.1} ns/item, against {:.1} ns/item when driven by `Runtime::block_on` from a non-worker thread as in (d) and every hand-written case",
            d2.ns_per_item(),
            d.ns_per_item()
        ),
    );
    let c2 = report.measure(
        cfg,
        W,
        "(c') hand-written tasks, per-item tokio mpsc",
        "tokio",
        n,
        expected,
        || tokio.block_on(hand_tasks_tokio_mpsc(n)),
    );
    report.note(
        W,
        format!(
            "tokio: per-item tokio mpsc tasks take {:.1}x the time of flowline boundaries (no target set; issue 3's target is on async-channel)",
            c2.ns_per_item() / d.ns_per_item()
        ),
    );
    let e = report.measure(
        cfg,
        W,
        "(e) hand-written tasks, chunks of 256, async-channel",
        "tokio",
        n,
        expected,
        || {
            let h = handle.clone();
            tokio.block_on(hand_chunked(n, move |t| drop(h.spawn(t))))
        },
    );
    report.note(
        W,
        format!(
            "tokio: flowline boundaries take {:.2}x the time of hand-chunked batches of {BATCH} (no target; below 1 means flowline is faster)",
            d.ns_per_item() / e.ns_per_item()
        ),
    );
}
