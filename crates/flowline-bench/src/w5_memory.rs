//! W5 — memory: peak RSS of a pipeline with a fast producer and a slower
//! consumer, bounded (a flowline boundary) against an unbounded queue
//! (hand-written `async_channel::unbounded`), at N and 10N items.
//!
//! Every case runs in a fresh child process (this binary re-executed with the
//! hidden `--child w5 <case> <n>` arguments), which reads its own peak RSS
//! (`VmHWM` in `/proc/self/status`) at the end and prints it, so one case's
//! peak cannot hide in another's. The figure that matters is
//! peak(10N) / peak(N): a bounded pipeline's memory must not grow with N.
//!
//! The trickle cases check that the bound is on memory, not only on items:
//! a producer that returns `Pending` after every item (so every item crosses
//! as a batch of its own) fills a boundary of 64-byte items while the
//! consumer stalls. `boundary(8192)` holds 512 KiB of items against
//! `boundary(1024)`'s 64 KiB, so its peak RSS must stay within 2 MiB of
//! `boundary(1024)`'s.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::producer;
use flowline::runtime::Runtime;

use crate::harness::{tokio_runtime, Config, Report};

const W: &str = "W5";
/// Boundary capacity, in items.
const CAPACITY: usize = 1024;

/// The cases, as `(id, label, runtime)`.
const CASES: [(&str, &str, &str); 4] = [
    ("flowline-smol", "flowline boundary(1024)", "smol"),
    (
        "unbounded-smol",
        "hand-written async_channel::unbounded",
        "smol",
    ),
    ("flowline-tokio", "flowline boundary(1024)", "tokio"),
    (
        "unbounded-tokio",
        "hand-written async_channel::unbounded",
        "tokio",
    ),
];

/// The consumer's per-item work: a few dozen dependent multiply-xor rounds
/// (tens of ns), so the producer outruns it.
#[inline(never)]
fn slow(x: u64) -> u64 {
    let mut h = x ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..160 {
        h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    h
}

fn expected(n: u64) -> u64 {
    (0..n).map(slow).fold(0, u64::wrapping_add)
}

async fn flowline_bounded(n: u64, rt: Arc<dyn Runtime>) -> u64 {
    producer::iter(0..n)
        .boundary(CAPACITY)
        .map(slow)
        .on_runtime(Some(rt))
        .run_fold(0u64, u64::wrapping_add)
        .await
        .expect("pipeline failed")
        .0
}

async fn hand_unbounded(n: u64, spawn: impl Fn(futures::future::BoxFuture<'static, ()>)) -> u64 {
    let (tx, rx) = async_channel::unbounded::<u64>();
    spawn(Box::pin(async move {
        for x in 0..n {
            if tx.send(x).await.is_err() {
                return;
            }
        }
    }));
    let mut sum = 0u64;
    while let Ok(x) = rx.recv().await {
        sum = sum.wrapping_add(slow(x));
    }
    sum
}

/// Items of the trickle cases: 64 bytes, as in issue 12.
type Item = [u64; 8];

/// Items the trickle cases send: enough to fill the larger boundary.
const TRICKLE_ITEMS: u64 = 10_000;

/// How long the trickle consumer stalls on its first item: far longer than
/// the producer needs to fill the queue (about a microsecond per item).
const STALL: Duration = Duration::from_millis(500);

/// A producer that returns `Pending` (waking itself at once) before every
/// item: each item leaves in a batch of its own.
fn trickle(n: u64) -> impl futures::Stream<Item = Item> {
    let mut i = 0;
    let mut ready = false;
    futures::stream::poll_fn(move |cx| {
        if i == n {
            return std::task::Poll::Ready(None);
        }
        if !ready {
            ready = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        ready = false;
        i += 1;
        std::task::Poll::Ready(Some([i; 8]))
    })
}

/// Trickles [`TRICKLE_ITEMS`] into `boundary(capacity)`; the consumer stalls
/// on the first item (`stall`), then sums the rest.
async fn flowline_trickle<F: std::future::Future<Output = ()>>(
    capacity: usize,
    rt: Arc<dyn Runtime>,
    stall: impl Fn() -> F,
) -> u64 {
    let mut stalled = false;
    let mut sum = 0u64;
    producer::from_stream(trickle(TRICKLE_ITEMS))
        .boundary(capacity)
        .on_runtime(Some(rt))
        .run_for_each(|item: Item| {
            let first = !stalled;
            stalled = true;
            sum = sum.wrapping_add(item[7]);
            let wait = first.then(&stall);
            async move {
                if let Some(wait) = wait {
                    wait.await;
                }
            }
        })
        .await
        .expect("pipeline failed");
    sum
}

fn trickle_expected() -> u64 {
    (1..=TRICKLE_ITEMS).fold(0, u64::wrapping_add)
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child side: runs `case` over `n` items and prints
/// `<peak RSS kB> <checksum> <elapsed ns>`.
///
/// # Panics
///
/// On an unknown case or a bad `n`.
pub fn child(args: &[String]) {
    let case = args.first().map(String::as_str).unwrap_or("");
    let n: u64 = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .expect("flowline-bench --child w5 <case> <n>");
    let start = Instant::now();
    let sum = match case {
        "idle" => {
            // The process floor: both runtimes started, no pipeline.
            let tokio = tokio_runtime();
            tokio.block_on(async {});
            smol::block_on(smol::spawn(async move { n }))
        }
        "flowline-smol" => {
            let rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
            smol::block_on(flowline_bounded(n, rt))
        }
        "unbounded-smol" => smol::block_on(hand_unbounded(n, |t| smol::spawn(t).detach())),
        "flowline-tokio" => tokio_runtime().block_on(async {
            let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
            flowline_bounded(n, rt).await
        }),
        "unbounded-tokio" => {
            let tokio = tokio_runtime();
            let h = tokio.handle().clone();
            tokio.block_on(hand_unbounded(n, move |t| drop(h.spawn(t))))
        }
        trickle if trickle.starts_with("trickle-") => {
            // trickle-<runtime>-<capacity>
            let mut parts = trickle.split('-').skip(1);
            let runtime = parts.next().unwrap_or("");
            let capacity: usize = parts
                .next()
                .and_then(|c| c.parse().ok())
                .expect("trickle-<runtime>-<capacity>");
            match runtime {
                "smol" => {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::smol::SmolRuntime::new());
                    smol::block_on(flowline_trickle(capacity, rt, || async {
                        smol::Timer::after(STALL).await;
                    }))
                }
                "tokio" => tokio_runtime().block_on(async {
                    let rt: Arc<dyn Runtime> = Arc::new(flowline::tokio::TokioRuntime::current());
                    flowline_trickle(capacity, rt, || tokio::time::sleep(STALL)).await
                }),
                other => panic!("flowline-bench: unknown W5 runtime `{other}`"),
            }
        }
        other => panic!("flowline-bench: unknown W5 case `{other}`"),
    };
    let elapsed = start.elapsed();
    println!("{} {} {}", peak_rss_kb(), sum, elapsed.as_nanos());
}

/// Runs one child; returns `(peak kB, checksum, elapsed)`.
fn run_child(case: &str, n: u64) -> (u64, u64, Duration) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--child", "w5", case, &n.to_string()])
        .output()
        .expect("spawn W5 child");
    assert!(
        out.status.success(),
        "W5 child `{case}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|t| t.parse::<u128>().unwrap_or(0));
    let kb = it.next().unwrap_or(0) as u64;
    let sum = it.next().unwrap_or(0) as u64;
    let ns = it.next().unwrap_or(0) as u64;
    (kb, sum, Duration::from_nanos(ns))
}

/// Median peak (kB) of `runs` fresh children, checking every checksum.
fn median_peak(case: &str, n: u64, want: u64, runs: usize) -> (f64, Duration) {
    let mut peaks = Vec::new();
    let mut times = Vec::new();
    for _ in 0..runs {
        let (kb, sum, t) = run_child(case, n);
        assert_eq!(sum, want, "W5 `{case}` n={n}: wrong result");
        peaks.push(kb);
        times.push(t);
    }
    peaks.sort_unstable();
    times.sort_unstable();
    (
        peaks[peaks.len() / 2] as f64 / 1024.0,
        times[times.len() / 2],
    )
}

fn millions(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The trickle cases: peak RSS of `boundary(8192)` against `boundary(1024)`
/// with one-item batches and a stalled consumer, on both runtimes.
fn run_trickle(cfg: &Config, report: &mut Report) {
    let runs = cfg.runs.clamp(1, 3);
    let want = trickle_expected();
    for runtime in ["smol", "tokio"] {
        let mut peaks = [0.0; 2];
        for (peak, capacity) in peaks.iter_mut().zip([1024, 8192]) {
            let case = format!("trickle-{runtime}-{capacity}");
            (*peak, _) = median_peak(&case, 0, want, runs);
            report.metric(
                W,
                format!("trickle into boundary({capacity}), 64-byte items, stalled consumer"),
                if runtime == "smol" { "smol" } else { "tokio" },
                *peak,
                "MB",
            );
        }
        let extra = peaks[1] - peaks[0];
        report.compare(
            W,
            format!("trickle: peak RSS boundary(8192) - boundary(1024), MiB ({runtime})"),
            extra,
            "<= 2",
            extra <= 2.0,
        );
    }
}

/// Runs W5.
pub fn run(cfg: &Config, report: &mut Report) {
    run_trickle(cfg, report);
    let n = cfg.scale(1_000_000);
    let n10 = n * 10;
    let runs = cfg.runs.clamp(1, 3);
    let (want, want10) = (expected(n), expected(n10));

    let (idle, _) = median_peak("idle", 1, 1, runs);
    report.metric(
        W,
        "process floor (runtimes started, no pipeline)",
        "both",
        idle,
        "MB",
    );
    for (case, label, runtime) in CASES {
        let (small, t_small) = median_peak(case, n, want, runs);
        let (big, t_big) = median_peak(case, n10, want10, runs);
        report.metric(
            W,
            format!("{label}, N = {}", millions(n)),
            runtime,
            small,
            "MB",
        );
        report.metric(
            W,
            format!("{label}, 10N = {}", millions(n10)),
            runtime,
            big,
            "MB",
        );
        let growth = big / small;
        if case.starts_with("flowline") {
            report.compare(
                W,
                format!("flowline peak RSS 10N / N ({runtime})"),
                growth,
                "<= 1.2",
                growth <= 1.2,
            );
        } else {
            report.note(
                W,
                format!("{runtime}: unbounded queue peak RSS grows {growth:.2}x from N to 10N ({small:.1} MB -> {big:.1} MB)"),
            );
        }
        report.note(
            W,
            format!(
                "{runtime}: {label}: {:.1} ns/item at N, {:.1} ns/item at 10N (child's own wall time)",
                t_small.as_nanos() as f64 / n as f64,
                t_big.as_nanos() as f64 / n10 as f64
            ),
        );
    }
}
