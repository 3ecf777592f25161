//! W4 — the sync → async bridge (pattern 3, event driven).
//!
//! Throughput: N u64 pushed from a plain thread into an async consumer that
//! sums them: flowline's `Feeder` against async-channel `send_blocking`, tokio
//! mpsc `blocking_send` and flume `send`, every queue holding `CAPACITY`
//! items, the consumer on `smol::block_on` and on `tokio`'s `block_on`.
//! An extra row (no target) pushes the same items with `Feeder::push_all`,
//! `BATCH` at a time.
//!
//! Latency: a ping-pong round trip, sync thread → async task → sync thread:
//! `Feeder` → pipeline → `Drain` against a pair of async-channels with a
//! forwarding task, both on smol (2 threads) and tokio (2 workers).

use std::future::Future;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use flowline::bridge;
use flowline::runtime::Runtime;

use crate::harness::{tokio_runtime, Config, Report};

const W: &str = "W4";
/// Queue capacity, in items, for every variant.
const CAPACITY: usize = 1024;
/// Items per `Feeder::push_all` call in the batch row.
const BATCH: u64 = 256;

fn expected_sum(n: u64) -> u64 {
    (0..n).fold(0u64, u64::wrapping_add)
}

/// Runs `consume` on the chosen executor's `block_on`.
fn block_on<F: Future>(tokio: Option<&tokio::runtime::Runtime>, consume: F) -> F::Output {
    match tokio {
        Some(rt) => rt.block_on(consume),
        None => smol::block_on(consume),
    }
}

fn feeder(n: u64, tokio: Option<&tokio::runtime::Runtime>) -> u64 {
    let (feeder, pipeline) = bridge::feeder::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        for x in 0..n {
            feeder.push(x).expect("consumer gone");
        }
    });
    let (sum, _) =
        block_on(tokio, pipeline.run_fold(0u64, u64::wrapping_add)).expect("pipeline failed");
    producer.join().unwrap();
    sum
}

fn feeder_batches(n: u64, tokio: Option<&tokio::runtime::Runtime>) -> u64 {
    let (feeder, pipeline) = bridge::feeder::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        let mut x = 0;
        while x < n {
            let end = (x + BATCH).min(n);
            feeder.push_all(x..end).expect("consumer gone");
            x = end;
        }
    });
    let (sum, _) =
        block_on(tokio, pipeline.run_fold(0u64, u64::wrapping_add)).expect("pipeline failed");
    producer.join().unwrap();
    sum
}

fn async_channel(n: u64, tokio: Option<&tokio::runtime::Runtime>) -> u64 {
    let (tx, rx) = async_channel::bounded::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        for x in 0..n {
            tx.send_blocking(x).expect("consumer gone");
        }
    });
    let sum = block_on(tokio, async move {
        let mut sum = 0u64;
        while let Ok(x) = rx.recv().await {
            sum = sum.wrapping_add(x);
        }
        sum
    });
    producer.join().unwrap();
    sum
}

fn tokio_mpsc(n: u64, tokio: Option<&tokio::runtime::Runtime>) -> u64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        for x in 0..n {
            tx.blocking_send(x).expect("consumer gone");
        }
    });
    let sum = block_on(tokio, async move {
        let mut sum = 0u64;
        while let Some(x) = rx.recv().await {
            sum = sum.wrapping_add(x);
        }
        sum
    });
    producer.join().unwrap();
    sum
}

fn flume(n: u64, tokio: Option<&tokio::runtime::Runtime>) -> u64 {
    let (tx, rx) = flume::bounded::<u64>(CAPACITY);
    let producer = thread::spawn(move || {
        for x in 0..n {
            tx.send(x).expect("consumer gone");
        }
    });
    let sum = block_on(tokio, async move {
        let mut sum = 0u64;
        while let Ok(x) = rx.recv_async().await {
            sum = sum.wrapping_add(x);
        }
        sum
    });
    producer.join().unwrap();
    sum
}

/// p50 and p99 of `rounds` round trips timed by `round_trip(i)`, after a warm-up.
fn percentiles(rounds: u64, mut round_trip: impl FnMut(u64)) -> (Duration, Duration) {
    for i in 0..rounds / 10 {
        round_trip(i);
    }
    let mut times: Vec<Duration> = (0..rounds)
        .map(|i| {
            let start = Instant::now();
            round_trip(i);
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.50), at(0.99))
}

fn ping_pong_flowline(rounds: u64, rt: Arc<dyn Runtime>) -> (Duration, Duration) {
    let (feeder, pipeline) = bridge::feeder::<u64>(16);
    let mut drain = pipeline.map(|x| x + 1).on_runtime(Some(rt)).into_drain(16);
    let result = percentiles(rounds, |i| {
        feeder.push(i).unwrap();
        assert_eq!(drain.next(), Some(i + 1));
    });
    drop(feeder);
    drain.finish().expect("pipeline failed");
    result
}

fn ping_pong_async_channel(
    rounds: u64,
    spawn: impl FnOnce(futures::future::BoxFuture<'static, ()>),
) -> (Duration, Duration) {
    let (to_task, task_rx) = async_channel::bounded::<u64>(16);
    let (task_tx, from_task) = async_channel::bounded::<u64>(16);
    spawn(Box::pin(async move {
        while let Ok(x) = task_rx.recv().await {
            if task_tx.send(x + 1).await.is_err() {
                return;
            }
        }
    }));
    percentiles(rounds, |i| {
        to_task.send_blocking(i).unwrap();
        assert_eq!(from_task.recv_blocking(), Ok(i + 1));
    })
}

/// Spawns a task on the baseline's executor.
type Spawn = Box<dyn Fn(futures::future::BoxFuture<'static, ()>)>;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs W4.
pub fn run(cfg: &Config, report: &mut Report) {
    let n = cfg.scale(10_000_000);
    let expected = expected_sum(n);
    let tokio = tokio_runtime();

    for (label, rt) in [("smol", None), ("tokio", Some(&tokio))] {
        let f = report.measure(
            cfg,
            W,
            "Feeder::push → pipeline fold",
            label,
            n,
            expected,
            || feeder(n, rt),
        );
        let ac = report.measure(
            cfg,
            W,
            "async-channel send_blocking → recv",
            label,
            n,
            expected,
            || async_channel(n, rt),
        );
        let tm = report.measure(
            cfg,
            W,
            "tokio mpsc blocking_send → recv",
            label,
            n,
            expected,
            || tokio_mpsc(n, rt),
        );
        let fl = report.measure(
            cfg,
            W,
            "flume send → recv_async",
            label,
            n,
            expected,
            || flume(n, rt),
        );
        let batches = report.measure(
            cfg,
            W,
            "Feeder::push_all (256 a call) → pipeline fold",
            label,
            n,
            expected,
            || feeder_batches(n, rt),
        );
        let vs_ac = ac.ns_per_item() / f.ns_per_item();
        report.compare(
            W,
            format!("Feeder speedup vs async-channel ({label})"),
            vs_ac,
            ">= 2.5",
            vs_ac >= 2.5,
        );
        report.note(
            W,
            format!(
                "Feeder speedup ({label}): {:.2}x vs tokio mpsc, {:.2}x vs flume; \
                 push_all {:.2}x async-channel (no target)",
                tm.ns_per_item() / f.ns_per_item(),
                fl.ns_per_item() / f.ns_per_item(),
                ac.ns_per_item() / batches.ns_per_item()
            ),
        );
    }

    let rounds = cfg.scale(20_000);
    let smol_rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
    let tokio_rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::from_handle(
        tokio.handle().clone(),
    ));
    let handle = tokio.handle().clone();
    let cases: [(&str, Arc<dyn Runtime>, Spawn); 2] = [
        ("smol", smol_rt, Box::new(|t| smol::spawn(t).detach())),
        ("tokio", tokio_rt, Box::new(move |t| drop(handle.spawn(t)))),
    ];
    for (label, rt, spawn) in cases {
        let (f50, f99) = ping_pong_flowline(rounds, rt);
        let (a50, a99) = ping_pong_async_channel(rounds, spawn);
        report.note(
            W,
            format!(
                "ping-pong ({label}, {rounds} round trips): Feeder→pipeline→Drain p50 {:.1} µs p99 {:.1} µs; \
                 async-channel pair p50 {:.1} µs p99 {:.1} µs",
                micros(f50),
                micros(f99),
                micros(a50),
                micros(a99)
            ),
        );
        let ratio = f50.as_secs_f64() / a50.as_secs_f64();
        report.compare(
            W,
            format!("ping-pong p50 Feeder/Drain / async-channel ({label})"),
            ratio,
            "<= 1.0",
            ratio <= 1.0,
        );
    }
}
