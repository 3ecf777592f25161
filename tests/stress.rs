//! Randomized stress: random pipelines (random operators, random failures,
//! random cancellation points) on smol, tokio and runtime-free. Every run's
//! report must account for every item, and nothing the run started may
//! outlive it: no closure, generator or future (each holds a drop counter),
//! no `flowline-blk*` thread.
//!
//! Bounded in time: `FLOWLINE_STRESS_SECS` seconds per runtime (default 2),
//! one test per runtime (`smol_rt::`, `tokio_rt::`, `runtime_free::`), so
//! they run in parallel. A failing case prints its seed and the command
//! that runs it alone (`FLOWLINE_STRESS_SEED=<seed>` and the test's name).
//! Each run starts from a random seed (printed); `FLOWLINE_STRESS_BASE=<n>`
//! fixes it.

mod support;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use flowline::consumer;
use flowline::stage::Overflow;
use flowline::{producer, Backoff, BlockingOptions, ErrorPolicy, Pipeline, RunReport};
use flowline_test::{assert_accounted, assert_balanced};
use futures::future::{self, Either};
use futures::stream::BoxStream;
use support::{DropCounter, Env, Rt};

type Boxed = Pipeline<BoxStream<'static, u64>>;

/// Whether to check, for pipelines with blocking stages too, that nothing a
/// run started is alive the moment its future resolves (the outcome
/// contract; other pipelines always are checked). On since the threads of
/// `from_blocking_iter` and `map_blocking` drop the user's iterator or
/// closure inside a counted call (they used to drop it just after the run
/// resolved: `blocking::blocking_closures_are_dropped_before_the_run_returns`
/// is the regression test); off, only an eventual drop is checked.
const STRICT_BLOCKING: bool = true;

/// How a case's run ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Awaited to the end.
    Complete,
    /// The run's future dropped after a random delay.
    Drop(Duration),
    /// Spawned, then aborted after a random delay.
    Abort(Duration),
    /// Spawned, then shut down gracefully after a random delay.
    Shutdown(Duration),
}

/// One random case: the pipeline, how it ends, and what it is made of.
struct Case {
    pipeline: Boxed,
    ending: Ending,
    ops: Vec<String>,
    /// Items the source yields if it runs to the end.
    items: u64,
    /// Whether everything must be gone the moment the run resolves.
    strict_end: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

/// The stage threads flowline starts itself (blocking stages, pools).
fn flowline_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("flowline-blk"))
        .count()
}

fn source(rng: &mut fastrand::Rng, live: &Arc<AtomicUsize>, ops: &mut Vec<String>) -> (Boxed, u64) {
    let n = rng.u64(0..1500);
    let guard = DropCounter::new(live);
    let pipeline = match rng.u8(0..3) {
        0 => {
            ops.push(format!("iter(0..{n})"));
            producer::iter(0..n)
                .inspect(move |_| {
                    let _ = &guard;
                })
                .boxed()
        }
        1 => {
            ops.push(format!("generator(0..{n})"));
            let every = rng.u64(1..50);
            producer::generator(move |out| async move {
                let _guard = guard;
                for i in 0..n {
                    if i % every == 0 {
                        futures_lite_yield().await;
                    }
                    out.emit(i).await;
                }
            })
            .boxed()
        }
        _ => {
            ops.push(format!("from_blocking_iter(0..{n})"));
            producer::from_blocking_iter((0..n).inspect(move |_| {
                let _ = &guard;
            }))
            .boxed()
        }
    };
    (pipeline, n)
}

/// Yields once to the executor.
async fn futures_lite_yield() {
    let mut yielded = false;
    future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// A random `Retry`/`Skip`/`Stop`/`DeadLetter` policy.
fn policy(rng: &mut fastrand::Rng) -> (ErrorPolicy<u64>, &'static str) {
    match rng.u8(0..4) {
        0 => (ErrorPolicy::Stop, "stop"),
        1 => (ErrorPolicy::Skip, "skip"),
        2 => (
            ErrorPolicy::Retry {
                attempts: rng.u32(1..4),
                backoff: Backoff::fixed(Duration::from_micros(rng.u64(0..300))),
            },
            "retry",
        ),
        _ => (
            ErrorPolicy::dead_letter(futures::sink::drain()),
            "dead_letter",
        ),
    }
}

fn add_op(
    rng: &mut fastrand::Rng,
    p: Boxed,
    live: &Arc<AtomicUsize>,
    ops: &mut Vec<String>,
) -> Boxed {
    let guard = DropCounter::new(live);
    match rng.u8(0..19) {
        0 => {
            ops.push("map".into());
            p.map(move |x| {
                let _ = &guard;
                x + 1
            })
            .boxed()
        }
        1 => {
            let m = rng.u64(2..6);
            ops.push(format!("filter(%{m})"));
            p.filter(move |x| {
                let _ = &guard;
                x % m != 0
            })
            .boxed()
        }
        2 => {
            ops.push("filter_map".into());
            p.filter_map(move |x| {
                let _ = &guard;
                (x % 7 != 3).then_some(x * 2)
            })
            .boxed()
        }
        3 => {
            ops.push("then".into());
            p.then(move |x| {
                let _ = &guard;
                async move {
                    if x % 16 == 0 {
                        futures_lite_yield().await;
                    }
                    x
                }
            })
            .boxed()
        }
        4 => {
            let cap = rng.usize(1..32);
            ops.push(format!("boundary({cap})"));
            drop(guard);
            p.boundary(cap).boxed()
        }
        5 => {
            let cap = rng.usize(1..32);
            let overflow = [
                Overflow::Backpressure,
                Overflow::DropOldest,
                Overflow::DropNewest,
                Overflow::Fail,
            ][rng.usize(0..4)];
            ops.push(format!("buffer({cap}, {overflow:?})"));
            drop(guard);
            p.buffer(cap, overflow).boxed()
        }
        6 | 7 => {
            let limit = rng.usize(1..8);
            let ordered = rng.bool();
            ops.push(format!("map_concurrent(ordered: {ordered}, {limit})"));
            let f = move |x: u64| {
                let _ = &guard;
                async move {
                    if x % 5 == 0 {
                        futures_lite_yield().await;
                    }
                    x
                }
            };
            if ordered {
                p.map_concurrent(limit, f).boxed()
            } else {
                p.map_concurrent_unordered(limit, f).boxed()
            }
        }
        8 => {
            let n = rng.usize(1..4);
            let ordered = rng.bool();
            ops.push(format!("map_blocking(parallelism {n}, ordered: {ordered})"));
            let options = BlockingOptions::new().parallelism(n);
            let options = if ordered {
                options
            } else {
                options.unordered()
            };
            p.map_blocking_with(options, move |x| {
                let _ = &guard;
                x ^ 1
            })
            .boxed()
        }
        9 => {
            let size = rng.usize(1..64);
            ops.push(format!("batch({size}, 1ms).map(sum)"));
            p.batch(size, Duration::from_millis(1))
                .map(move |b| {
                    let _ = &guard;
                    b.iter().sum::<u64>()
                })
                .boxed()
        }
        10 | 11 => {
            let fail_one_in = rng.u64(2..200);
            let (policy, name) = policy(rng);
            ops.push(format!("try_map(fails 1 in {fail_one_in}, {name})"));
            p.try_map(move |x| {
                let _ = &guard;
                if x % fail_one_in == 1 {
                    Err("random failure")
                } else {
                    Ok(x)
                }
            })
            .on_error(policy)
            .boxed()
        }
        12 => {
            let at = rng.u64(0..3000);
            ops.push(format!("map(panics at {at})"));
            p.map(move |x| {
                let _ = &guard;
                assert!(x != at, "random panic at {x}");
                x
            })
            .boxed()
        }
        13 => {
            ops.push("throttle(200_000/s, 256)".into());
            drop(guard);
            p.throttle(200_000, 256).boxed()
        }
        14 => {
            let n = rng.u64(0..300);
            ops.push(format!("merge(iter(0..{n}))"));
            let other = producer::iter(0..n)
                .map(move |x| {
                    let _ = &guard;
                    x
                })
                .boxed();
            p.merge(other).boxed()
        }
        15 => {
            let n = rng.u64(0..300);
            ops.push(format!("chain(iter(0..{n}))"));
            let other = producer::iter(0..n)
                .map(move |x| {
                    let _ = &guard;
                    x
                })
                .boxed();
            p.chain(other).boxed()
        }
        16 => {
            let quiet = Duration::from_micros(rng.u64(1..200));
            ops.push(format!("debounce({quiet:?})"));
            drop(guard);
            p.debounce(quiet).boxed()
        }
        17 => {
            let period = Duration::from_micros(rng.u64(50..500));
            ops.push(format!("sample({period:?})"));
            drop(guard);
            p.sample(period).boxed()
        }
        _ => {
            ops.push("idle_timeout(5s).then_timeout(5s)".into());
            p.idle_timeout(Duration::from_secs(5))
                .then_timeout(Duration::from_secs(5), move |x| {
                    let _ = &guard;
                    async move { x }
                })
                .boxed()
        }
    }
}

fn case(seed: u64, rt: Rt, live: &Arc<AtomicUsize>) -> Case {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ops = Vec::new();
    let (mut pipeline, items) = source(&mut rng, live, &mut ops);
    for _ in 0..rng.usize(0..6) {
        pipeline = add_op(&mut rng, pipeline, live, &mut ops);
    }
    let delay = Duration::from_micros(rng.u64(0..3000));
    let ending = match (rng.u8(0..5), rt) {
        (0, _) => Ending::Drop(delay),
        (1, Rt::Smol | Rt::Tokio) => Ending::Abort(delay),
        (2, Rt::Smol | Rt::Tokio) => Ending::Shutdown(delay),
        _ => Ending::Complete,
    };
    let blocking = ops
        .iter()
        .any(|op| op.starts_with("from_blocking_iter") || op.starts_with("map_blocking"));
    let strict_end = STRICT_BLOCKING || !blocking;
    ops.push(format!("{ending:?}"));
    Case {
        pipeline,
        ending,
        ops,
        items,
        strict_end,
    }
}

/// Checks a finished run's accounting; a completed run must also have
/// taken every item from its source unless it was stopped early.
fn check(result: Result<RunReport, flowline::PipelineError>, items: Option<u64>) {
    match result {
        Ok(report) => {
            assert_balanced(&report);
            if let Some(items) = items {
                assert_eq!(report.stages[0].items_out, items, "source items\n{report}");
            }
        }
        Err(e) => assert_accounted(e.report()),
    }
}

async fn run_case(env: &Env, case: Case, live: &Arc<AtomicUsize>) {
    let Case {
        pipeline,
        ending,
        items,
        strict_end,
        ..
    } = case;
    let pipeline = pipeline.on_runtime(env.runtime.clone());
    match ending {
        Ending::Complete => {
            let result = pipeline.run_for_each(|_| async {}).await;
            check(result, Some(items));
        }
        Ending::Drop(after) => {
            let run = Box::pin(pipeline.run_for_each(|_| async {}));
            match future::select(run, Box::pin(env.sleep(after))).await {
                Either::Left((result, _)) => check(result, Some(items)),
                Either::Right(((), run)) => drop(run),
            }
            let gone = env
                .eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await;
            assert!(
                gone,
                "{} guards alive 10 s after the run was dropped",
                live.load(SeqCst)
            );
        }
        Ending::Abort(after) => {
            let handle = pipeline.spawn(consumer::discard());
            env.sleep(after).await;
            let report = handle.abort().await;
            assert_accounted(&report);
        }
        Ending::Shutdown(after) => {
            let handle = pipeline.spawn(consumer::discard());
            env.sleep(after).await;
            check(handle.shutdown().await, None);
        }
    }
    // The run has resolved: everything it started has stopped (but see
    // STRICT_BLOCKING), and its threads exit soon after.
    if strict_end && !matches!(ending, Ending::Drop(_)) {
        assert_eq!(live.load(SeqCst), 0, "closures or futures outlived the run");
    }
    let gone = env
        .eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
        .await;
    assert!(
        gone,
        "{} guards alive 10 s after the run ended",
        live.load(SeqCst)
    );
    let threads_gone = env
        .eventually(Duration::from_secs(10), || flowline_threads() == 0)
        .await;
    assert!(threads_gone, "{} flowline threads left", flowline_threads());
}

fn stress(rt: Rt, seeds: impl Iterator<Item = u64>, budget: Duration) -> u64 {
    let start = Instant::now();
    let mut cases = 0;
    for seed in seeds {
        if start.elapsed() >= budget {
            break;
        }
        let live = Arc::new(AtomicUsize::new(0));
        let case = case(seed, rt, &live);
        let ops = case.ops.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(|env| async move {
                let watchdog = env.sleep(Duration::from_secs(30));
                let run = Box::pin(run_case(&env, case, &live));
                if let Either::Right(_) = future::select(run, Box::pin(watchdog)).await {
                    panic!("the case did not finish in 30 s");
                }
            })
        }));
        if let Err(panic) = outcome {
            let module = match rt {
                Rt::Smol => "smol_rt",
                Rt::Tokio => "tokio_rt",
                _ => "runtime_free",
            };
            eprintln!(
                "stress: case failed on {rt:?}: {}\n  reproduce: FLOWLINE_STRESS_SEED={seed} \
                 cargo test --all-features --test stress {module}::",
                ops.join(" -> ")
            );
            resume_unwind(panic);
        }
        cases += 1;
    }
    cases
}

/// Keeps the random panics (caught by flowline and expected) out of the
/// output, so a real failure stands out.
fn quiet_planted_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planted = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("random panic"));
            if !planted {
                default_hook(info);
            }
        }));
    });
}

/// One test per runtime, so the three run in parallel.
fn random_pipelines_balance_and_leak_nothing(rt: Rt) {
    quiet_planted_panics();
    if let Some(seed) = env_u64("FLOWLINE_STRESS_SEED") {
        stress(rt, std::iter::once(seed), Duration::MAX);
        return;
    }
    let budget = Duration::from_secs(env_u64("FLOWLINE_STRESS_SECS").unwrap_or(2));
    // A new sequence each run (and each runtime), so runs together cover
    // more; printed, and each failing case prints its own seed.
    let base = env_u64("FLOWLINE_STRESS_BASE").unwrap_or_else(|| fastrand::u64(..u64::MAX / 2));
    eprintln!(
        "stress: first seed on {rt:?} {base} (FLOWLINE_STRESS_BASE={base} repeats this sequence)"
    );
    let cases = stress(rt, base.., budget);
    eprintln!("stress: {cases} random pipelines on {rt:?}");
    assert!(cases > 0);
}

on_all_runtimes!(random_pipelines_balance_and_leak_nothing);
