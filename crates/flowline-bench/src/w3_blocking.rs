//! W3 — blocking work: flowline's `map_blocking` against a `spawn_blocking`
//! (tokio) or `blocking::unblock` (smol's pool) per item, and the checksum
//! job against `b3sum` and `sha256sum`.
//!
//! (i) n items that each sleep 5 ms, 32 at a time: efficiency = ideal
//!     (n × 5 ms / 32) / measured; target ≥ 0.96 and no worse than either peer.
//! (ii) no-op items: per-item overhead; target ≤ 1/10 of `spawn_blocking`.
//! (v) a slow async consumer: calls of 1 ms (every 8th 8 ms), 4 at a time,
//!     into a consumer that awaits a 1 ms timer per item, against hand-written worker threads
//!     between two bounded `async-channel`s with the same items in flight.
//!     Pipelined, both sides work at once; a stage that hands out work only
//!     when the consumer asks for an item (and not while it drains results
//!     that are ready) leaves the workers idle, most visibly ordered, where
//!     results pile up behind a slow item.
//!     Target: flowline ≤ 1.05 × the hand-written time, on smol and tokio.
//! (iii), (iv) the checksum job (`examples/checksum`) against `b3sum` and
//!     `sha256sum`: see [`checksum`].

use std::sync::Arc;
use std::time::Duration;

use flowline::blocking::BlockingOptions;
use flowline::producer;
use flowline::runtime::{Runtime, RuntimeExt as _};
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
        .map_blocking_with(BlockingOptions::new().parallelism(IN_FLIGHT).unordered(), f)
        .on_runtime(rt)
        .run_fold(0u64, |a, x| a.wrapping_add(x))
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
        .map_blocking_with(BlockingOptions::new().parallelism(IN_FLIGHT), f)
        .on_runtime(rt)
        .run_fold(0u64, |a, x| a.wrapping_add(x))
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

/// (v): calls that take 1 ms, every 8th 8 ms (1.875 ms on average) ...
const SLOW_CALL: Duration = Duration::from_millis(1);
const SLOWER_CALL: Duration = Duration::from_millis(8);
/// ... this many at once ...
const SLOW_PARALLELISM: usize = 4;
/// ... into a consumer that awaits this long per item.
const CONSUMER_WAIT: Duration = Duration::from_millis(1);

fn slow_call(x: u64) -> u64 {
    std::thread::sleep(if x % 8 == 0 { SLOWER_CALL } else { SLOW_CALL });
    x
}

/// (v) flowline: `map_blocking` into an async consumer that awaits a timer.
async fn flowline_slow_consumer(n: u64, rt: Arc<dyn Runtime>, ordered: bool) -> u64 {
    let opts = BlockingOptions::new().parallelism(SLOW_PARALLELISM);
    let opts = if ordered { opts } else { opts.unordered() };
    let sum = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (s, timers) = (sum.clone(), rt.clone());
    producer::iter(0..n)
        .map_blocking_with(opts, slow_call)
        .on_runtime(Some(rt))
        .run_for_each(move |x| {
            s.fetch_add(x, std::sync::atomic::Ordering::Relaxed);
            timers.sleep(CONSUMER_WAIT)
        })
        .await
        .unwrap();
    sum.load(std::sync::atomic::Ordering::Relaxed)
}

/// (v) hand-written: a feeding task, `SLOW_PARALLELISM` worker threads
/// between two bounded channels, and the same consumer. Items in flight:
/// `p / 2` queued in, `p` at the workers, `p / 2` queued out — `2 × p`, as in
/// flowline.
async fn hand_slow_consumer(n: u64, rt: Arc<dyn Runtime>) -> u64 {
    let (in_tx, in_rx) = async_channel::bounded::<u64>(SLOW_PARALLELISM / 2);
    let (out_tx, out_rx) = async_channel::bounded::<u64>(SLOW_PARALLELISM / 2);
    let workers: Vec<_> = (0..SLOW_PARALLELISM)
        .map(|_| {
            let (rx, tx) = (in_rx.clone(), out_tx.clone());
            std::thread::spawn(move || {
                while let Ok(x) = rx.recv_blocking() {
                    if tx.send_blocking(slow_call(x)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop((in_rx, out_tx));
    let feeder = rt.spawn(async move {
        for x in 0..n {
            if in_tx.send(x).await.is_err() {
                return;
            }
        }
    });
    let mut sum = 0u64;
    while let Ok(x) = out_rx.recv().await {
        sum = sum.wrapping_add(x);
        rt.sleep(CONSUMER_WAIT).await;
    }
    feeder.await.unwrap();
    for w in workers {
        w.join().unwrap();
    }
    sum
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

    // (v) a slow async consumer.
    let n = cfg.scale(400);
    let expected = n * (n - 1) / 2;
    let tokio_fl_rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::from_handle(
        tokio_rt.handle().clone(),
    ));
    let cases: [(&'static str, Arc<dyn Runtime>); 2] =
        [("tokio", tokio_fl_rt), ("smol", smol_rt.clone())];
    for (name, rt) in cases {
        let on = |fut: std::pin::Pin<Box<dyn std::future::Future<Output = u64> + '_>>| {
            if name == "tokio" {
                tokio_rt.block_on(fut)
            } else {
                smol::block_on(fut)
            }
        };
        let fl = report.measure(
            cfg,
            W,
            "(v) slow async consumer: flowline map_blocking unordered x4",
            name,
            n,
            expected,
            || on(Box::pin(flowline_slow_consumer(n, rt.clone(), false))),
        );
        let ordered = report.measure(
            cfg,
            W,
            "(v) slow async consumer: flowline map_blocking ordered x4",
            name,
            n,
            expected,
            || on(Box::pin(flowline_slow_consumer(n, rt.clone(), true))),
        );
        let hand = report.measure(
            cfg,
            W,
            "(v) slow async consumer: hand-written threads + channels x4",
            name,
            n,
            expected,
            || on(Box::pin(hand_slow_consumer(n, rt.clone()))),
        );
        let r = fl.median.as_secs_f64() / hand.median.as_secs_f64();
        report.compare(
            W,
            format!("(v) slow async consumer: flowline / hand-written ({name})"),
            r,
            "<= 1.05",
            r <= 1.05,
        );
        report.note(
            W,
            format!(
                "(v) {name}: flowline unordered {:.0} ms, ordered {:.0} ms, hand-written (unordered) \
                 {:.0} ms; the consumer's {n} timers alone take at least {:.0} ms (a 1 ms timer \
                 takes about 1 ms on smol, 2 ms on tokio)",
                fl.median.as_secs_f64() * 1e3,
                ordered.median.as_secs_f64() * 1e3,
                hand.median.as_secs_f64() * 1e3,
                (CONSUMER_WAIT * n as u32).as_secs_f64() * 1e3,
            ),
        );
    }

    // (iii), (v): the checksum job against `b3sum` and `sha256sum`.
    checksum::run(cfg, report, &smol_rt);
}
