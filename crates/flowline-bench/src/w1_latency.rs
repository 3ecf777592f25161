//! W1 latency — one item at a time through three hops: does batching add
//! latency?
//!
//! The bench loop sends one item into a source channel and waits for it to
//! come out of the last stage before sending the next. Flowline: a producer
//! reading the source channel, three `boundary(1024)` stages, a consumer
//! sending each item back. Hand-written: three forwarding tasks joined by
//! per-item `async_channel::bounded(1024)` queues, and the same consumer.
//! Both are measured alternately in rounds, so they see the same machine;
//! the p50 and p99 of every round trip are compared (target ≤ 1.2×).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::producer;
use flowline::runtime::Runtime;

use crate::harness::{tokio_runtime, Config, Report};

const W: &str = "W1";
const CAPACITY: usize = 1024;

/// One round: `items` round trips through a pipeline started for it.
type Round<'a> = &'a dyn Fn(u64) -> Vec<Duration>;

/// Sends `0..items` one at a time into `input`, waiting for each on `output`.
async fn ping(
    items: u64,
    input: async_channel::Sender<u64>,
    output: async_channel::Receiver<u64>,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(items as usize);
    for i in 0..items {
        let start = Instant::now();
        input.send(i).await.expect("pipeline gone");
        let got = output.recv().await.expect("pipeline gone");
        times.push(start.elapsed());
        assert_eq!(got, i, "W1 latency: wrong item");
    }
    times
}

async fn flowline_round(items: u64, rt: Arc<dyn Runtime>) -> Vec<Duration> {
    let (input, source) = async_channel::bounded::<u64>(1);
    let (back, output) = async_channel::bounded::<u64>(1);
    let run = producer::from_stream(source)
        .boundary(CAPACITY)
        .boundary(CAPACITY)
        .boundary(CAPACITY)
        .on_runtime(Some(rt))
        .run_for_each(move |x| {
            let back = back.clone();
            async move {
                let _ = back.send(x).await;
            }
        });
    let (times, result) = futures::join!(
        async move {
            let times = ping(items, input, output).await;
            times
        },
        run
    );
    result.expect("pipeline failed");
    times
}

async fn hand_round(
    items: u64,
    spawn: impl Fn(futures::future::BoxFuture<'static, ()>),
) -> Vec<Duration> {
    let (input, source) = async_channel::bounded::<u64>(1);
    let (back, output) = async_channel::bounded::<u64>(1);
    let mut rx = source;
    for _ in 0..3 {
        let (tx, next) = async_channel::bounded::<u64>(CAPACITY);
        spawn(Box::pin(async move {
            while let Ok(x) = rx.recv().await {
                if tx.send(x).await.is_err() {
                    return;
                }
            }
        }));
        rx = next;
    }
    let consume = async move {
        while let Ok(x) = rx.recv().await {
            let _ = back.send(x).await;
        }
    };
    let (times, ()) = futures::join!(ping(items, input, output), consume);
    times
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Alternates rounds of `ours` and `hand`, then records p50 and p99 of each
/// and their ratios.
fn compare(
    cfg: &Config,
    report: &mut Report,
    runtime: &'static str,
    hand: Round<'_>,
    ours: Round<'_>,
) {
    let rounds = cfg.runs.max(3);
    let per_round = if cfg.quick { 500 } else { 4000 };
    // Warm-up.
    hand(per_round / 10);
    ours(per_round / 10);
    let (mut h, mut o) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        h.extend(hand(per_round));
        o.extend(ours(per_round));
    }
    h.sort();
    o.sort();
    for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
        let (hq, oq) = (quantile(&h, q), quantile(&o, q));
        report.metric(
            W,
            format!("latency {label}, per-item async-channel tasks, 3 hops"),
            runtime,
            hq.as_secs_f64() * 1e6,
            "us",
        );
        report.metric(
            W,
            format!("latency {label}, flowline, 3 boundaries"),
            runtime,
            oq.as_secs_f64() * 1e6,
            "us",
        );
        let ratio = oq.as_secs_f64() / hq.as_secs_f64();
        report.compare(
            W,
            format!("latency {label}: flowline / per-item channels ({runtime})"),
            ratio,
            "<= 1.2",
            ratio <= 1.2,
        );
    }
}

/// Runs W1's latency part.
pub fn run(cfg: &Config, report: &mut Report) {
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    compare(
        cfg,
        report,
        "smol",
        &|items| smol::block_on(hand_round(items, |t| smol::spawn(t).detach())),
        &|items| smol::block_on(flowline_round(items, smol_rt.clone())),
    );
    let tokio = tokio_runtime();
    let handle = tokio.handle().clone();
    compare(
        cfg,
        report,
        "tokio",
        &|items| {
            let h = handle.clone();
            tokio.block_on(hand_round(items, move |t| drop(h.spawn(t))))
        },
        &|items| {
            tokio.block_on(async {
                let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                flowline_round(items, rt).await
            })
        },
    );
}
