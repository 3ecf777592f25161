//! W1 scale-out — the same work spread over two workers with `balance`.
//!
//! Flowline: `iter(0..N).map(f1).balance(2, 1024)`, each worker
//! `.map(f2).map(f3).filter(keep)` and `run_fold` summing, both workers
//! joined in the `block_on` task. Hand-written: a spawned producer task
//! sending `Vec` batches of `f1` results over one
//! `async_channel::bounded(slots)`, read by two worker futures joined in
//! the `block_on` task — the same 1,024 items in flight, in the best of
//! three batch × slots geometries. No issue sets a target: the ratio is
//! reported as a note.

use std::sync::Arc;

use flowline::producer;
use flowline::runtime::Runtime;

use crate::harness::{tokio_runtime, Config, Report};
use crate::w1_linear::{f1, f2, f3, keep, sync_loop, HAND_SLOTS};

const W: &str = "W1";
const CAPACITY: usize = 1024;
const WORKERS: usize = 2;

async fn flowline_balance(n: u64, rt: Arc<dyn Runtime>) -> u64 {
    let workers = producer::iter(0..n).map(f1).balance(WORKERS, CAPACITY);
    let runs = workers.into_iter().map(|w| {
        w.map(f2)
            .map(f3)
            .filter(keep)
            .on_runtime(Some(rt.clone()))
            .run_fold(0u64, u64::wrapping_add)
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("pipeline failed").0)
        .fold(0, u64::wrapping_add)
}

async fn hand_balance(
    n: u64,
    (batch, slots): (usize, usize),
    spawn: impl Fn(futures::future::BoxFuture<'static, ()>),
) -> u64 {
    let (tx, rx) = async_channel::bounded::<Vec<u64>>(slots);
    spawn(Box::pin(async move {
        let mut x = 0;
        while x < n {
            let end = (x + batch as u64).min(n);
            if tx.send((x..end).map(f1).collect()).await.is_err() {
                return;
            }
            x = end;
        }
    }));
    let worker = |rx: async_channel::Receiver<Vec<u64>>| async move {
        let mut sum = 0u64;
        while let Ok(batch) = rx.recv().await {
            for x in batch {
                let x = f3(f2(x));
                if keep(&x) {
                    sum = sum.wrapping_add(x);
                }
            }
        }
        sum
    };
    let (a, b) = futures::join!(worker(rx.clone()), worker(rx));
    a.wrapping_add(b)
}

/// Every geometry of the hand-written version, then its best and flowline
/// alternately; notes their ratio.
fn compare(
    cfg: &Config,
    report: &mut Report,
    runtime: &'static str,
    hand: &dyn Fn((usize, usize)) -> u64,
    ours: &dyn Fn() -> u64,
) {
    let n = cfg.scale(10_000_000);
    let expected = sync_loop(n);
    let mut best = None;
    for slots in HAND_SLOTS {
        let geometry = (CAPACITY / slots, slots);
        let case = report.measure(
            cfg,
            W,
            format!(
                "(g) hand-written 2 workers sharing Vec batches {}x{slots}",
                geometry.0
            ),
            runtime,
            n,
            expected,
            || hand(geometry),
        );
        if best
            .as_ref()
            .is_none_or(|(b, _): &(crate::harness::Case, _)| case.median < b.median)
        {
            best = Some((case, geometry));
        }
    }
    let (_, geometry) = best.expect("at least one geometry");
    let (g, f) = report.measure_pair(
        cfg,
        W,
        n,
        expected,
        (
            &format!(
                "(g) best hand-written 2 workers ({}x{}), paired",
                geometry.0, geometry.1
            ),
            runtime,
            &mut || hand(geometry),
        ),
        (
            "(f) flowline balance(2, 1024), 2 workers",
            runtime,
            &mut || ours(),
        ),
    );
    report.note(
        W,
        format!(
            "{runtime}: (f) flowline balance / (g) best hand-written 2 workers: {:.2} (no target)",
            f.ns_per_item() / g.ns_per_item()
        ),
    );
}

/// Runs W1's scale-out part.
pub fn run(cfg: &Config, report: &mut Report) {
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    compare(
        cfg,
        report,
        "smol",
        &|geometry| {
            let n = cfg.scale(10_000_000);
            smol::block_on(hand_balance(n, geometry, |t| smol::spawn(t).detach()))
        },
        &|| smol::block_on(flowline_balance(cfg.scale(10_000_000), smol_rt.clone())),
    );
    let tokio = tokio_runtime();
    let handle = tokio.handle().clone();
    compare(
        cfg,
        report,
        "tokio",
        &|geometry| {
            let h = handle.clone();
            let n = cfg.scale(10_000_000);
            tokio.block_on(hand_balance(n, geometry, move |t| drop(h.spawn(t))))
        },
        &|| {
            tokio.block_on(async {
                let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                flowline_balance(cfg.scale(10_000_000), rt).await
            })
        },
    );
}
