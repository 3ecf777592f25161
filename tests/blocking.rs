//! Blocking stages: map_blocking (ordered/unordered), shared pools, blocking
//! producers and consumers, unblock. Each on smol, tokio and runtime-free.

mod support;

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline::blocking::{unblock, BlockingOptions, BlockingPool};
use flowline::{consumer, producer, Pipeline, PipelineError};
use futures::future::{self, Either};
use support::{DropCounter, Env, Rt, Stop};

/// A deterministic pseudo-random delay of 0..=3 ms for item `x`.
fn jitter(x: u64) -> Duration {
    Duration::from_millis(x.wrapping_mul(2_654_435_761) >> 7 & 3)
}

/// Counts calls running at once and remembers the most seen.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, SeqCst);
            }
        }
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        let _leave = Leave(&self.now); // also when `f` panics
        f()
    }
}

thread_local! {
    static WORKER: RefCell<Option<DropCounter>> = const { RefCell::new(None) };
}

/// Registers the calling thread in `live` until it exits.
fn count_thread(live: &Arc<AtomicUsize>) {
    WORKER.with(|w| {
        if w.borrow().is_none() {
            *w.borrow_mut() = Some(DropCounter::new(live));
        }
    });
}

/// Options for `n` calls at once.
fn par(n: usize) -> BlockingOptions {
    BlockingOptions::new().parallelism(n)
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}

fn ordered_variant_keeps_order_under_random_delays(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::iter(0..300u64)
            .map_blocking_with(par(8), |x| {
                std::thread::sleep(jitter(x));
                x * 2
            })
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..300).map(|x| x * 2).collect::<Vec<_>>());
        let stage = report.stage("map_blocking#1").unwrap();
        assert_eq!((stage.items_in, stage.items_out), (300, 300));

        let (mut out, _) = producer::iter(0..300u64)
            .map_blocking_with(par(8).unordered(), |x| {
                std::thread::sleep(jitter(x));
                x * 2
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        out.sort_unstable();
        assert_eq!(out, (0..300).map(|x| x * 2).collect::<Vec<_>>());
    });
}

fn cheap_items_cross_in_batches_without_loss(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, _) = producer::iter(0..50_000u64)
            .map_blocking_with(par(3), |x| x + 1)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (1..=50_000).collect::<Vec<_>>());
        let (sum, _) = producer::iter(0..50_000u64)
            .map_blocking_with(par(3).unordered(), |x| x + 1)
            .on_runtime(env.runtime)
            .run_fold(0, |a, x| a + x)
            .await
            .unwrap();
        assert_eq!(sum, (1..=50_000).sum::<u64>());
    });
}

/// Runs `pipeline` into a slow consumer; returns the most items seen between
/// upstream (`pulled`) and the consumer.
async fn drain_slowly<S>(pipeline: Pipeline<S>, pulled: Arc<AtomicUsize>, env: Env) -> usize
where
    S: futures::Stream<Item = u64>,
{
    let consumed = Arc::new(AtomicUsize::new(0));
    let worst = Arc::new(AtomicUsize::new(0));
    let (seen, w, e) = (consumed.clone(), worst.clone(), env.clone());
    pipeline
        .on_runtime(env.runtime.clone())
        .run_for_each(move |_| {
            let done = seen.fetch_add(1, SeqCst) + 1;
            w.fetch_max(pulled.load(SeqCst) - done, SeqCst);
            let e = e.clone();
            async move { e.sleep(Duration::from_millis(1)).await }
        })
        .await
        .unwrap();
    assert_eq!(consumed.load(SeqCst), 60);
    worst.load(SeqCst)
}

/// Calls that switch between cheap and slow make the stage switch between
/// batched and one-by-one jobs; nothing may be lost, duplicated or reordered.
fn mixed_call_costs_keep_every_item(rt: Rt) {
    rt.block_on(|env| async move {
        let work = |x: u64| {
            if x % 700 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
            x * 3
        };
        for parallelism in [1, 2, 7] {
            let pool = BlockingPool::new(parallelism);
            let (out, _) = producer::iter(0..6_000u64)
                .map_blocking_with(par(parallelism), work)
                .map_blocking_with(BlockingOptions::new().pool(&pool), |x| x + 1)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out, (0..6_000).map(|x| x * 3 + 1).collect::<Vec<_>>());
            let (mut out, _) = producer::iter(0..6_000u64)
                .map_blocking_with(BlockingOptions::new().pool(&pool).unordered(), work)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            out.sort_unstable();
            assert_eq!(out, (0..6_000).map(|x| x * 3).collect::<Vec<_>>());
        }
    });
}

fn parallelism_and_in_flight_bounds_hold(rt: Rt) {
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            let calls = Arc::new(Concurrency::default());
            let pulled = Arc::new(AtomicUsize::new(0));
            let (c, p) = (calls.clone(), pulled.clone());
            let pipeline = producer::iter(0..60u64).inspect(move |_| {
                p.fetch_add(1, SeqCst);
            });
            let work = move |x: u64| {
                c.run(|| std::thread::sleep(Duration::from_millis(10)));
                x
            };
            let worst = if ordered {
                drain_slowly(
                    pipeline.map_blocking_with(par(4), work),
                    pulled,
                    env.clone(),
                )
                .await
            } else {
                drain_slowly(
                    pipeline.map_blocking_with(par(4).unordered(), work),
                    pulled,
                    env.clone(),
                )
                .await
            };
            assert_eq!(calls.max.load(SeqCst), 4, "ordered: {ordered}");
            assert!(worst <= 8, "in flight {worst}");
        }
    });
}

/// Runs `pipeline` collecting what it delivers before it fails.
async fn deliveries<S>(pipeline: Pipeline<S>, env: &Env) -> (Vec<u64>, PipelineError)
where
    S: futures::Stream<Item = u64>,
{
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let d = delivered.clone();
    let err = pipeline
        .on_runtime(env.runtime.clone())
        .run_for_each(move |x| {
            d.lock().unwrap().push(x);
            async {}
        })
        .await
        .unwrap_err();
    let out = delivered.lock().unwrap().clone();
    (out, err)
}

fn panic_fails_the_stage_without_losing_or_duplicating(rt: Rt) {
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            let calls: Arc<Vec<AtomicUsize>> =
                Arc::new((0..200).map(|_| AtomicUsize::new(0)).collect());
            let running = Arc::new(Concurrency::default());
            let (c, r) = (calls.clone(), running.clone());
            let work = move |x: u64| {
                c[x as usize].fetch_add(1, SeqCst);
                r.run(|| {
                    // At least 1 ms: calls this slow are taken one at a
                    // time, so the stage admits at most 2 × 4 items ahead
                    // (cheap calls are taken in chunks, with a larger window).
                    std::thread::sleep(jitter(x) + Duration::from_millis(1));
                    assert!(x != 37, "boom {x}");
                    x
                })
            };
            let pipeline = producer::iter(0..200u64);
            let (delivered, err) = if ordered {
                deliveries(pipeline.map_blocking_with(par(4), work), &env).await
            } else {
                deliveries(pipeline.map_blocking_with(par(4).unordered(), work), &env).await
            };
            let name = if ordered {
                "map_blocking#1"
            } else {
                "map_blocking_unordered#1"
            };
            match err {
                PipelineError::Panicked { stage, message, .. } => {
                    assert_eq!(stage, name);
                    assert_eq!(message, "boom 37");
                }
                other => panic!("unexpected {other:?}"),
            }
            // No call of the stage is still running when the run reports.
            assert_eq!(running.now.load(SeqCst), 0);
            assert!(
                calls.iter().all(|n| n.load(SeqCst) <= 1),
                "a call ran twice"
            );
            assert!(!delivered.contains(&37));
            let unique: HashSet<_> = delivered.iter().collect();
            assert_eq!(unique.len(), delivered.len(), "duplicates: {delivered:?}");
            for x in &delivered {
                assert_eq!(calls[*x as usize].load(SeqCst), 1);
            }
            if ordered {
                // Every result before the panicking item, once, in order.
                assert_eq!(delivered, (0..37).collect::<Vec<_>>());
                // At most 2 × 4 items are admitted past the last emitted.
                let late: usize = calls[37 + 8..].iter().map(|n| n.load(SeqCst)).sum();
                assert_eq!(late, 0);
            }
        }
    });
}

fn dropping_or_ending_the_pipeline_leaves_no_worker_thread(rt: Rt) {
    rt.block_on(|env| async move {
        // Dropped mid-run.
        let live = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (l, c) = (live.clone(), calls.clone());
        let run = producer::iter(0..1000u64)
            .map_blocking_with(par(4), move |x| {
                count_thread(&l);
                c.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                x
            })
            .on_runtime(env.runtime.clone())
            .run_count();
        let timer = env.sleep(Duration::from_millis(100));
        match future::select(Box::pin(run), Box::pin(timer)).await {
            Either::Left(_) => panic!("the run should still be going"),
            Either::Right(((), run)) => drop(run),
        }
        assert!(calls.load(SeqCst) >= 1, "workers started");
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await,
            "{} worker threads still alive",
            live.load(SeqCst)
        );
        let after = calls.load(SeqCst);
        env.sleep(Duration::from_millis(30)).await;
        assert_eq!(calls.load(SeqCst), after, "no call starts after the drop");
        assert!(after < 1000);

        // Ended normally: the stage's own threads exit.
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let (n, _) = producer::iter(0..100u64)
            .map_blocking_with(par(4), move |x| {
                count_thread(&l);
                std::thread::sleep(Duration::from_micros(200));
                x
            })
            .on_runtime(env.runtime.clone())
            .run_count()
            .await
            .unwrap();
        assert_eq!(n, 100);
        // The threads may already be gone; they must go.
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await
        );

        // Ended normally, on a shared pool the test then drops.
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let pool = BlockingPool::new(3);
        let (n, _) = producer::iter(0..100u64)
            .map_blocking_with(BlockingOptions::new().pool(&pool).unordered(), move |x| {
                count_thread(&l);
                x
            })
            .on_runtime(env.runtime.clone())
            .run_count()
            .await
            .unwrap();
        assert_eq!(n, 100);
        assert!(live.load(SeqCst) >= 1);
        drop(pool);
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await
        );
    });
}

fn executor_stays_responsive_while_workers_are_busy(rt: Rt) {
    rt.block_on(|env| async move {
        let ticks = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, d, e) = (ticks.clone(), done.clone(), env.clone());
        let ticker = async move {
            while !d.load(SeqCst) {
                e.sleep(Duration::from_millis(10)).await;
                t.fetch_add(1, SeqCst);
            }
        };
        let d = done.clone();
        let run = async move {
            // Both workers busy for 8 x 40 ms / 2 = 160 ms.
            let out = producer::iter(0..8u64)
                .map_blocking_with(par(2), |x| {
                    std::thread::sleep(Duration::from_millis(40));
                    x
                })
                .on_runtime(env.runtime.clone())
                .run_count()
                .await;
            d.store(true, SeqCst);
            out
        };
        let ((n, _), ()) = futures::join!(async { run.await.unwrap() }, ticker);
        assert_eq!(n, 8);
        // ~16 expected; a blocked executor would manage at most one or two.
        assert!(ticks.load(SeqCst) >= 5, "only {} ticks", ticks.load(SeqCst));
    });
}

fn blocking_iter_producer_runs_off_the_executor(rt: Rt) {
    rt.block_on(|env| async move {
        let names = Arc::new(Mutex::new(HashSet::new()));
        let n = names.clone();
        let items = (0..1000u64).inspect(move |x| {
            n.lock().unwrap().insert(thread_name());
            if x % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let (out, report) = producer::from_blocking_iter(items)
            .map(|x| x + 1)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (1..=1000).collect::<Vec<_>>());
        assert_eq!(report.stage("blocking_iter#0").unwrap().items_out, 1000);
        assert_eq!(
            *names.lock().unwrap(),
            HashSet::from(["flowline-blk-it".to_string()])
        );

        let delivered = Arc::new(AtomicUsize::new(0));
        let d = delivered.clone();
        let err = producer::from_blocking_iter((0..100u64).inspect(|x| {
            assert!(*x != 60, "iterator broke at {x}");
        }))
        .on_runtime(env.runtime)
        .run_for_each(move |_| {
            d.fetch_add(1, SeqCst);
            async {}
        })
        .await
        .unwrap_err();
        assert_eq!(err.stage(), "blocking_iter#0");
        assert!(err.to_string().contains("iterator broke at 60"), "{err}");
        assert_eq!(delivered.load(SeqCst), 60);
    });
}

fn blocking_consumer_sees_every_item_in_order(rt: Rt) {
    rt.block_on(|env| async move {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let names = Arc::new(Mutex::new(HashSet::new()));
        let (s, n) = (seen.clone(), names.clone());
        let report = producer::iter(0..5000u64)
            .boundary(16)
            .on_runtime(env.runtime.clone())
            .run(consumer::blocking(move |x| {
                n.lock().unwrap().insert(thread_name());
                s.lock().unwrap().push(x);
            }))
            .await
            .unwrap();
        // The run returns once the consumer has seen everything.
        assert_eq!(*seen.lock().unwrap(), (0..5000).collect::<Vec<_>>());
        assert_eq!(report.delivered(), 5000);
        assert_eq!(
            *names.lock().unwrap(),
            HashSet::from(["flowline-blk-cs".to_string()])
        );

        let err = producer::iter(0..100u64)
            .on_runtime(env.runtime)
            .run(consumer::blocking(|x| assert!(x != 42, "cannot store {x}")))
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "consumer#1");
        assert!(err.to_string().contains("cannot store 42"), "{err}");
    });
}

fn shared_pool_bounds_threads_across_stages(rt: Rt) {
    rt.block_on(|env| async move {
        let pool = BlockingPool::new(3);
        let calls = Arc::new(Concurrency::default());
        let names = Arc::new(Mutex::new(HashSet::new()));
        let (c1, c2) = (calls.clone(), calls.clone());
        let (n1, n2) = (names.clone(), names.clone());
        let (out, _) = producer::iter(0..40u64)
            .map_blocking_with(BlockingOptions::new().pool(&pool), move |x| {
                n1.lock().unwrap().insert(thread_name());
                c1.run(|| std::thread::sleep(Duration::from_millis(2)));
                x * 10
            })
            .map_blocking_with(BlockingOptions::new().pool(&pool).unordered(), move |x| {
                n2.lock().unwrap().insert(thread_name());
                c2.run(|| std::thread::sleep(Duration::from_millis(2)));
                x + 1
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        let mut out = out;
        out.sort_unstable();
        assert_eq!(out, (0..40).map(|x| x * 10 + 1).collect::<Vec<_>>());
        assert!(
            calls.max.load(SeqCst) <= 3,
            "max {}",
            calls.max.load(SeqCst)
        );
        let names = names.lock().unwrap();
        assert!(!names.is_empty() && names.len() <= 3, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("flowline-blk-")));
    });
}

fn unblock_runs_a_call_off_the_executor(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, _) = producer::iter(0..20u64)
            .then(|x| unblock(move || x * 3))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..20).map(|x| x * 3).collect::<Vec<_>>());
        let err = producer::iter(0..3u64)
            .then(|x| unblock(move || assert!(x != 1, "unblocked call failed")))
            .named("lookup")
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "lookup");
        assert!(err.to_string().contains("unblocked call failed"), "{err}");
        let rt = env.runtime;
        assert_eq!(flowline::blocking::unblock_on(rt, || 7).await, 7);
    });
}

/// Aborts a run of `then(unblock(..))` calls (each 100 ms) once one has
/// started, behind a `boundary(4)` if `behind_a_boundary` (then the calls
/// run in a stage task: spawned, or polled inline without a runtime), and
/// checks that the run resolved only after the call returned.
async fn abort_while_an_unblock_call_runs(env: Env, behind_a_boundary: bool) {
    let running = Arc::new(Concurrency::default());
    let started = Arc::new(AtomicUsize::new(0));
    let (r, s) = (running.clone(), started.clone());
    let calls = producer::iter(0..100u64)
        .then(move |x| {
            let (r, s) = (r.clone(), s.clone());
            unblock(move || {
                s.fetch_add(1, SeqCst);
                r.run(|| std::thread::sleep(Duration::from_millis(100)));
                x
            })
        })
        .boxed();
    let calls = if behind_a_boundary {
        calls.boundary(4).boxed()
    } else {
        calls
    };
    let handle = calls
        .on_runtime(env.runtime.clone())
        .spawn(consumer::discard());
    let s = started.clone();
    let result = env
        .stop_when(
            handle,
            Duration::from_secs(10),
            move || s.load(SeqCst) >= 1,
            Stop::Abort,
        )
        .await;
    assert!(
        matches!(result, Err(PipelineError::Aborted { .. })),
        "{result:?}"
    );
    assert_eq!(
        running.now.load(SeqCst),
        0,
        "an unblock call outlived the aborted run (behind a boundary: {behind_a_boundary})"
    );
}

/// An `unblock` call inside a run counts among the run's blocking calls: a
/// run aborted while one is in progress (awaited by a `then` stage)
/// resolves only after it has returned, as for `map_blocking`'s calls.
fn an_aborted_run_waits_for_its_unblock_calls(rt: Rt) {
    rt.block_on(|env| abort_while_an_unblock_call_runs(env, false));
}

/// The same with the calls in a stage task of the run (before a
/// `boundary`), not in the run's own task.
fn an_aborted_run_waits_for_unblock_calls_in_its_stage_tasks(rt: Rt) {
    rt.block_on(|env| abort_while_an_unblock_call_runs(env, true));
}

/// A run that fails (upstream, in another task) while its consumer awaits
/// an `unblock` call resolves only after the call has returned.
fn a_failed_run_waits_for_its_unblock_calls(rt: Rt) {
    rt.block_on(|env| async move {
        let running = Arc::new(Concurrency::default());
        let started = Arc::new(AtomicUsize::new(0));
        let (r, s) = (running.clone(), started.clone());
        let gate = (started.clone(), env.clone());
        let err = producer::iter(0..100u64)
            .then(move |x| {
                let (started, env) = gate.clone();
                async move {
                    if x == 3 {
                        // Fails only once the consumer's call is running.
                        env.eventually(Duration::from_secs(10), || started.load(SeqCst) >= 1)
                            .await;
                        panic!("upstream broke");
                    }
                    x
                }
            })
            .named("check")
            .boundary(16)
            .on_runtime(env.runtime.clone())
            .run_for_each(move |x| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    unblock(move || {
                        s.fetch_add(1, SeqCst);
                        r.run(|| std::thread::sleep(Duration::from_millis(100)));
                        x
                    })
                    .await;
                }
            })
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "check");
        assert!(started.load(SeqCst) >= 1);
        assert_eq!(
            running.now.load(SeqCst),
            0,
            "an unblock call outlived the failed run"
        );
    });
}

fn dropping_blocking_producer_and_consumer_stops_their_threads(rt: Rt) {
    rt.block_on(|env| async move {
        // An endless blocking iterator.
        let live = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let (l, m) = (live.clone(), made.clone());
        let run = producer::from_blocking_iter((0u64..).inspect(move |_| {
            count_thread(&l);
            m.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }))
        .on_runtime(env.runtime.clone())
        .run_count();
        let timer = env.sleep(Duration::from_millis(50));
        match future::select(Box::pin(run), Box::pin(timer)).await {
            Either::Left(_) => panic!("an endless producer cannot finish"),
            Either::Right(((), run)) => drop(run),
        }
        assert!(made.load(SeqCst) >= 1);
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await
        );

        // A slow blocking consumer.
        let live = Arc::new(AtomicUsize::new(0));
        let (l, calls) = (live.clone(), Arc::new(AtomicUsize::new(0)));
        let c = calls.clone();
        let run = producer::iter(0..1000u64)
            .on_runtime(env.runtime.clone())
            .run(consumer::blocking(move |_| {
                count_thread(&l);
                c.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }));
        let timer = env.sleep(Duration::from_millis(50));
        match future::select(Box::pin(run), Box::pin(timer)).await {
            Either::Left(_) => panic!("the run should still be going"),
            Either::Right(((), run)) => drop(run),
        }
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await
        );
        let after = calls.load(SeqCst);
        assert!(after < 1000, "{after} calls");
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(calls.load(SeqCst), after);
    });
}

/// A consumer that is slow and async (its task is pending between items):
/// workers must keep starting calls meanwhile. The consumer holding its
/// `k`-th item waits, pending, until the calls for `k + 8` items (the stage's
/// `2 × parallelism` bound) have started; a stage that only hands out work
/// when the consumer polls it would leave it waiting forever.
fn slow_async_consumer_keeps_workers_busy(rt: Rt) {
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            const N: usize = 40;
            let started = Arc::new(AtomicUsize::new(0));
            let s = started.clone();
            let opts = if ordered { par(4) } else { par(4).unordered() };
            let (delivered, waited_out) = (
                Arc::new(Mutex::new(Vec::new())),
                Arc::new(AtomicUsize::new(0)),
            );
            let (d, w, st, e) = (
                delivered.clone(),
                waited_out.clone(),
                started.clone(),
                env.clone(),
            );
            producer::iter(0..N as u64)
                .map_blocking_with(opts, move |x| {
                    s.fetch_add(1, SeqCst);
                    // Slow enough that workers take items one at a time.
                    std::thread::sleep(Duration::from_millis(1));
                    x
                })
                .on_runtime(env.runtime.clone())
                .run_for_each(move |x| {
                    let k = {
                        let mut d = d.lock().unwrap();
                        d.push(x);
                        d.len()
                    };
                    let (w, st, e) = (w.clone(), st.clone(), e.clone());
                    async move {
                        let want = (k + 7).min(N);
                        if e.eventually(Duration::from_secs(20), || st.load(SeqCst) >= want)
                            .await
                        {
                            w.fetch_add(1, SeqCst);
                        }
                    }
                })
                .await
                .unwrap();
            let mut out = delivered.lock().unwrap().clone();
            if ordered {
                assert_eq!(out, (0..N as u64).collect::<Vec<_>>());
            } else {
                out.sort_unstable();
                assert_eq!(out, (0..N as u64).collect::<Vec<_>>());
            }
            assert_eq!(started.load(SeqCst), N);
            assert_eq!(
                waited_out.load(SeqCst),
                N,
                "ordered {ordered}: workers stalled while the consumer waited"
            );
        }
    });
}

/// A sink that records whether it was closed.
struct CloseProbe {
    items: Arc<Mutex<Vec<u64>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl futures::Sink<u64> for CloseProbe {
    type Error = std::convert::Infallible;
    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn start_send(self: std::pin::Pin<&mut Self>, item: u64) -> Result<(), Self::Error> {
        self.items.lock().unwrap().push(item);
        Ok(())
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.closed.store(true, SeqCst);
        std::task::Poll::Ready(Ok(()))
    }
}

/// A failed blocking stage is not an end of stream: the consumer gets the
/// results before the panicking item, and is never closed (committed).
fn failed_stage_never_closes_the_consumer(rt: Rt) {
    rt.block_on(|env| async move {
        for opts in [par(3), par(3).unordered()] {
            let items = Arc::new(Mutex::new(Vec::new()));
            let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let probe = CloseProbe {
                items: items.clone(),
                closed: closed.clone(),
            };
            let err = producer::iter(0..100u64)
                .map_blocking_with(opts, |x| {
                    assert!(x != 50, "bad item {x}");
                    x
                })
                .named("parse")
                .on_runtime(env.runtime.clone())
                .run(probe)
                .await
                .unwrap_err();
            assert_eq!(err.stage(), "parse");
            assert!(err.to_string().contains("bad item 50"), "{err}");
            assert!(!closed.load(SeqCst), "a failed run closed the consumer");
            let items = items.lock().unwrap();
            assert!(!items.contains(&50));
            let unique: HashSet<_> = items.iter().collect();
            assert_eq!(unique.len(), items.len(), "duplicates");
        }
    });
}

/// After a failure elsewhere in the run, workers start no new call, and the
/// run returns only once no blocking call is in progress.
fn failure_elsewhere_stops_calls_and_the_run_waits_for_them(rt: Rt) {
    rt.block_on(|env| async move {
        let running = Arc::new(Concurrency::default());
        let started = Arc::new(AtomicUsize::new(0));
        let (r, s) = (running.clone(), started.clone());
        let err = producer::iter(0..1000u64)
            .map_blocking_with(par(4), move |x| {
                s.fetch_add(1, SeqCst);
                r.run(|| std::thread::sleep(Duration::from_millis(3)));
                x
            })
            .map(|x| {
                assert!(x != 10, "downstream broke");
                x
            })
            .named("check")
            .on_runtime(env.runtime.clone())
            .run_count()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "check");
        assert_eq!(
            running.now.load(SeqCst),
            0,
            "a blocking call outlived the run"
        );
        let after = started.load(SeqCst);
        assert!(after < 1000);
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(
            started.load(SeqCst),
            after,
            "a call started after the run failed"
        );

        // The same for a blocking iterator's `next()`.
        let nexts = Arc::new(AtomicUsize::new(0));
        let n = nexts.clone();
        let err = producer::from_blocking_iter((0..100_000u64).inspect(move |_| {
            n.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_micros(100));
        }))
        .map(|x| {
            assert!(x != 10, "downstream broke");
            x
        })
        .named("check")
        .on_runtime(env.runtime.clone())
        .run_count()
        .await
        .unwrap_err();
        assert_eq!(err.stage(), "check");
        let after = nexts.load(SeqCst);
        assert!(after < 100_000);
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(
            nexts.load(SeqCst),
            after,
            "next() was called after the run failed"
        );
    });
}

/// Idle workers exit after the pool's idle timeout, while the pool lives on,
/// and come back with new work.
fn idle_workers_exit_and_return(rt: Rt) {
    rt.block_on(|env| async move {
        let pool = BlockingPool::new(3).with_idle_timeout(Duration::from_millis(20));
        for round in 1..=2u64 {
            let (out, _) = producer::iter(0..30u64)
                .map_blocking_with(BlockingOptions::new().pool(&pool), |x| {
                    std::thread::sleep(Duration::from_millis(1));
                    x
                })
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out, (0..30).collect::<Vec<_>>());
            assert!(pool.started_threads() >= round);
            assert!(
                env.eventually(Duration::from_secs(10), || pool.live_threads() == 0)
                    .await,
                "{} threads still alive",
                pool.live_threads()
            );
        }
        assert!(pool.live_threads() == 0 && pool.started_threads() <= 6);
    });
}

/// A blocking consumer's calls belong to the run: after a failure upstream
/// none starts, and the run returns only once none is in progress.
fn blocking_consumer_calls_end_with_a_failed_run(rt: Rt) {
    rt.block_on(|env| async move {
        let running = Arc::new(Concurrency::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (r, c, e) = (running.clone(), calls.clone(), env.clone());
        let err = producer::iter(0..1000u64)
            .then(move |x| {
                let e = e.clone();
                async move {
                    e.sleep(Duration::from_millis(1)).await;
                    assert!(x != 30, "upstream broke");
                    x
                }
            })
            .named("source step")
            .on_runtime(env.runtime.clone())
            .run(consumer::blocking(move |_x: u64| {
                c.fetch_add(1, SeqCst);
                r.run(|| std::thread::sleep(Duration::from_millis(5)));
            }))
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "source step");
        assert_eq!(
            running.now.load(SeqCst),
            0,
            "a consumer call outlived the run"
        );
        // Items 0..30 reached the consumer at most.
        let after = calls.load(SeqCst);
        assert!(after <= 30, "{after} calls");
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(
            calls.load(SeqCst),
            after,
            "a consumer call started after the run failed"
        );
    });
}

/// The outcome contract for blocking stages: a user's iterator or closure
/// (here holding a drop counter) is dropped before the run's future
/// resolves, on completed and failed runs alike. A race before the fix (an
/// idle worker or the iterator's thread held it a moment longer): many
/// rounds, each checked the instant `run` returns.
fn blocking_closures_are_dropped_before_the_run_returns(rt: Rt) {
    rt.block_on(|env| async move {
        for round in 0..150u64 {
            let live = Arc::new(AtomicUsize::new(0));
            let (in_iter, in_map, in_unordered) = (
                DropCounter::new(&live),
                DropCounter::new(&live),
                DropCounter::new(&live),
            );
            let fail = round % 3 == 2;
            let result = producer::from_blocking_iter((0..40u64).inspect(move |_| {
                let _ = &in_iter;
            }))
            .map_blocking(move |x| {
                let _ = &in_map;
                if fail && x == 20 {
                    panic!("planted at {x}");
                }
                x
            })
            .map_blocking_with(
                BlockingOptions::new().parallelism(2).unordered(),
                move |x| {
                    let _ = &in_unordered;
                    x
                },
            )
            // Every other round the stages run in a task of their own.
            .boundary(if round % 2 == 0 { 4 } else { 1 })
            .on_runtime(env.runtime.clone())
            .run_count()
            .await;
            assert_eq!(
                live.load(SeqCst),
                0,
                "round {round}: a closure outlived the run ({result:?})"
            );
            match result {
                Ok((n, _)) => assert!(!fail && n == 40, "round {round}: {n}"),
                Err(e) => assert!(fail, "round {round}: {e}"),
            }
        }
    });
}

/// The same for a blocking consumer's closure.
fn blocking_consumer_closure_is_dropped_before_the_run_returns(rt: Rt) {
    rt.block_on(|env| async move {
        for round in 0..150u64 {
            let live = Arc::new(AtomicUsize::new(0));
            let in_consumer = DropCounter::new(&live);
            let fail = round % 3 == 2;
            let result = producer::iter(0..40u64)
                .map(move |x| {
                    assert!(!(fail && x == 20), "planted at {x}");
                    x
                })
                .on_runtime(env.runtime.clone())
                .run(consumer::blocking(move |_x: u64| {
                    let _ = &in_consumer;
                }))
                .await;
            assert_eq!(
                live.load(SeqCst),
                0,
                "round {round}: the consumer outlived the run ({result:?})"
            );
            assert_eq!(result.is_err(), fail, "round {round}");
        }
    });
}

/// The queue between a blocking iterator's thread and the pipeline: every
/// item once, in order, through fused stages, a boundary and the batch path
/// of `run_fold`, whatever the iterator's rhythm (bursts, pauses, slow
/// calls).
fn blocking_iter_through_map_and_boundary_keeps_order(rt: Rt) {
    rt.block_on(|env| async move {
        const N: u64 = 20_000;
        // Every 1000th call pauses 1 ms, every 97th takes 30 µs: batches
        // go out full, by age, and one item at a time for a waiting
        // pipeline.
        let items = (0..N).inspect(|x| {
            if x % 1000 == 999 {
                std::thread::sleep(Duration::from_millis(1));
            } else if x % 97 == 0 {
                std::thread::sleep(Duration::from_micros(30));
            }
        });
        let (out, report) = producer::from_blocking_iter(items)
            .map(|x| x * 2)
            .filter(|x| x % 3 != 0)
            .boundary(64)
            .map(|x| x + 1)
            .boundary(16)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let expected: Vec<u64> = (0..N)
            .map(|x| x * 2)
            .filter(|x| x % 3 != 0)
            .map(|x| x + 1)
            .collect();
        assert_eq!(out, expected);
        assert_eq!(report.stage("blocking_iter#0").unwrap().items_out, N);
        assert_eq!(report.delivered(), expected.len() as u64);

        let (sum, _) = producer::from_blocking_iter(0..N)
            .map(|x| x + 1)
            .boundary(1024)
            .on_runtime(env.runtime.clone())
            .run_fold(0u64, u64::wrapping_add)
            .await
            .unwrap();
        assert_eq!(sum, N * (N + 1) / 2);

        // An iterator that yields nothing completes at once.
        let (out, _) = producer::from_blocking_iter(std::iter::empty::<u64>())
            .boundary(4)
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert!(out.is_empty());
    });
}

/// Items of the iterator alive while the consumer holds the first one and
/// waits: the queue's capacity (256, its open batch included), the batch
/// the receiver has in hand (at most 64), the consumer's item and the one
/// the thread waits to send.
const BLOCKING_ITER_BOUND: usize = 256 + 64 + 2;

/// Memory stays bounded by the queue's capacity whatever the iterator's
/// rhythm: a trickling iterator (each `next()` slow enough to be sent on
/// its own) into a stalled consumer stops being called once the queue is
/// full; then every item arrives, in order.
fn blocking_iter_memory_is_bounded_by_its_queue(rt: Rt) {
    rt.block_on(|env| async move {
        const N: u64 = 2_000;
        let live = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let (l, m) = (live.clone(), made.clone());
        let items = (0..N).map(move |x| {
            std::thread::sleep(Duration::from_micros(30));
            m.fetch_add(1, SeqCst);
            (x, DropCounter::new(&l))
        });
        let open = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (o, s, e) = (open.clone(), seen.clone(), env.clone());
        let run = producer::from_blocking_iter(items)
            .on_runtime(env.runtime.clone())
            .run_for_each(move |(x, _alive)| {
                let (o, s, e) = (o.clone(), s.clone(), e.clone());
                async move {
                    while !o.load(SeqCst) {
                        e.sleep(Duration::from_millis(1)).await;
                    }
                    s.lock().unwrap().push(x);
                }
            });
        let watch = async {
            assert!(
                env.eventually(Duration::from_secs(20), || made.load(SeqCst) >= 256)
                    .await,
                "the queue never filled: {} made",
                made.load(SeqCst)
            );
            // Stalled: the count stops growing (checked over 50 ms windows).
            let mut last = made.load(SeqCst);
            loop {
                env.sleep(Duration::from_millis(50)).await;
                let now = made.load(SeqCst);
                if now == last {
                    break;
                }
                last = now;
            }
            let (made_now, live_now) = (made.load(SeqCst), live.load(SeqCst));
            assert!(
                made_now <= BLOCKING_ITER_BOUND && live_now <= BLOCKING_ITER_BOUND,
                "{made_now} made, {live_now} alive for a queue of 256"
            );
            assert!(seen.lock().unwrap().is_empty());
            open.store(true, SeqCst);
        };
        let (report, ()) = futures::join!(run, watch);
        let report = report.unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..N).collect::<Vec<_>>());
        assert_eq!(report.delivered(), N);
        assert_eq!(live.load(SeqCst), 0);
    });
}

/// A panic mid-iterator: the items before it are delivered, in order and
/// once each, then the run fails naming the iterator's stage, with the
/// iterator dropped before the run returns.
fn blocking_iter_panic_delivers_earlier_items_then_fails(rt: Rt) {
    rt.block_on(|env| async move {
        for fail_at in [0u64, 1, 63, 64, 65, 300, 1000] {
            let live = Arc::new(AtomicUsize::new(0));
            let alive = DropCounter::new(&live);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let err = producer::from_blocking_iter((0..2000u64).inspect(move |x| {
                let _ = &alive;
                assert!(*x != fail_at, "iterator broke at {x}");
            }))
            .map(|x| x * 10)
            .on_runtime(env.runtime.clone())
            .run_for_each(move |x| {
                s.lock().unwrap().push(x);
                async {}
            })
            .await
            .unwrap_err();
            assert_eq!(err.stage(), "blocking_iter#0", "at {fail_at}");
            assert!(
                err.to_string()
                    .contains(&format!("iterator broke at {fail_at}")),
                "{err}"
            );
            let expected: Vec<u64> = (0..fail_at).map(|x| x * 10).collect();
            assert_eq!(*seen.lock().unwrap(), expected, "at {fail_at}");
            assert_eq!(
                err.report().stage("blocking_iter#0").unwrap().items_out,
                fail_at
            );
            assert_eq!(live.load(SeqCst), 0, "the iterator outlived the run");
        }
    });
}

/// A failure downstream stops the iterator: no `next()` once the run has
/// returned, and the iterator is dropped before it returns.
fn failing_downstream_stops_the_blocking_iter(rt: Rt) {
    rt.block_on(|env| async move {
        for capacity in [1, 16, 1024] {
            let live = Arc::new(AtomicUsize::new(0));
            let alive = DropCounter::new(&live);
            let made = Arc::new(AtomicUsize::new(0));
            let m = made.clone();
            // Endless.
            let items = (0u64..).inspect(move |_| {
                let _ = &alive;
                m.fetch_add(1, SeqCst);
            });
            let err = producer::from_blocking_iter(items)
                .map(|x| {
                    assert!(x != 500, "downstream broke at {x}");
                    x
                })
                .boundary(capacity)
                .named("sink side")
                .on_runtime(env.runtime.clone())
                .run_count()
                .await
                .unwrap_err();
            assert_eq!(err.stage(), "map#1", "{err}");
            assert_eq!(live.load(SeqCst), 0, "the iterator outlived the run");
            let after = made.load(SeqCst);
            assert!(after > 500, "{after} made");
            env.sleep(Duration::from_millis(20)).await;
            assert_eq!(made.load(SeqCst), after, "next() called after the run");
        }
    });
}

/// `consumer::blocking` sees every item once, in order, whether items come
/// in bursts (whole batches) or trickle (each flushed on its own), and a
/// panic stops it after exactly the items before.
fn blocking_consumer_keeps_order_and_stops_at_a_panic(rt: Rt) {
    rt.block_on(|env| async move {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let e = env.clone();
        let report = producer::iter(0..3000u64)
            .then(move |x| {
                let e = e.clone();
                async move {
                    if x % 500 == 0 {
                        e.sleep(Duration::from_millis(2)).await;
                    }
                    x
                }
            })
            .on_runtime(env.runtime.clone())
            .run(consumer::blocking(move |x| s.lock().unwrap().push(x)))
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..3000).collect::<Vec<_>>());
        assert_eq!(report.delivered(), 3000);

        for fail_at in [0u64, 5, 64, 200] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let err = producer::iter(0..1000u64)
                .boundary(32)
                .on_runtime(env.runtime.clone())
                .run(consumer::blocking(move |x| {
                    assert!(x != fail_at, "cannot store {x}");
                    s.lock().unwrap().push(x);
                }))
                .await
                .unwrap_err();
            assert_eq!(err.stage(), "consumer#2");
            assert!(
                err.to_string().contains(&format!("cannot store {fail_at}")),
                "{err}"
            );
            assert_eq!(*seen.lock().unwrap(), (0..fail_at).collect::<Vec<_>>());
        }
    });
}

/// `consumer::blocking` is a plain `Sink` outside any run: items sent and
/// the sink closed, `f` has seen them all; a panic in `f` resumes in the
/// task that polls the sink; dropping it stops the thread and drops the
/// closure.
fn blocking_consumer_works_outside_a_run(rt: Rt) {
    rt.block_on(|env| async move {
        use futures::{FutureExt as _, SinkExt as _};

        let seen = Arc::new(Mutex::new(Vec::new()));
        let names = Arc::new(Mutex::new(HashSet::new()));
        let (s, n) = (seen.clone(), names.clone());
        let mut sink = consumer::blocking(move |x: u64| {
            n.lock().unwrap().insert(thread_name());
            s.lock().unwrap().push(x);
        });
        for x in 0..10 {
            sink.send(x).await.unwrap();
        }
        let mut burst = futures::stream::iter((10..1000).map(Ok));
        sink.send_all(&mut burst).await.unwrap();
        sink.close().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..1000).collect::<Vec<_>>());
        assert_eq!(
            *names.lock().unwrap(),
            HashSet::from(["flowline-blk-cs".to_string()])
        );

        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut sink = consumer::blocking(move |x: u64| {
            assert!(x != 7, "cannot store {x}");
            s.lock().unwrap().push(x);
        });
        let sent = std::panic::AssertUnwindSafe(async {
            let mut items = futures::stream::iter((0..1000).map(Ok));
            sink.send_all(&mut items).await.unwrap();
            sink.close().await.unwrap();
        })
        .catch_unwind()
        .await;
        let payload = sent.expect_err("the panic resumes in the sending task");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains("cannot store 7"), "{message}");
        assert_eq!(*seen.lock().unwrap(), (0..7).collect::<Vec<_>>());

        // Dropped mid-stream: the thread stops after the call in progress
        // (which a drop cannot interrupt) and drops the closure.
        let live = Arc::new(AtomicUsize::new(0));
        let alive = DropCounter::new(&live);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mut sink = consumer::blocking(move |_x: u64| {
            let _ = &alive;
            c.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        });
        for x in 0..100 {
            sink.feed(x).await.unwrap();
        }
        drop(sink);
        assert!(
            env.eventually(Duration::from_secs(10), || live.load(SeqCst) == 0)
                .await
        );
        let after = calls.load(SeqCst);
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(calls.load(SeqCst), after, "a call started after the drop");
    });
}

on_all_runtimes!(
    blocking_iter_through_map_and_boundary_keeps_order,
    blocking_iter_memory_is_bounded_by_its_queue,
    blocking_iter_panic_delivers_earlier_items_then_fails,
    failing_downstream_stops_the_blocking_iter,
    blocking_consumer_keeps_order_and_stops_at_a_panic,
    blocking_consumer_works_outside_a_run,
    blocking_closures_are_dropped_before_the_run_returns,
    blocking_consumer_closure_is_dropped_before_the_run_returns,
    blocking_consumer_calls_end_with_a_failed_run,
    slow_async_consumer_keeps_workers_busy,
    failed_stage_never_closes_the_consumer,
    failure_elsewhere_stops_calls_and_the_run_waits_for_them,
    idle_workers_exit_and_return,
    mixed_call_costs_keep_every_item,
    dropping_blocking_producer_and_consumer_stops_their_threads,
    ordered_variant_keeps_order_under_random_delays,
    cheap_items_cross_in_batches_without_loss,
    parallelism_and_in_flight_bounds_hold,
    panic_fails_the_stage_without_losing_or_duplicating,
    dropping_or_ending_the_pipeline_leaves_no_worker_thread,
    executor_stays_responsive_while_workers_are_busy,
    blocking_iter_producer_runs_off_the_executor,
    blocking_consumer_sees_every_item_in_order,
    shared_pool_bounds_threads_across_stages,
    unblock_runs_a_call_off_the_executor,
    an_aborted_run_waits_for_its_unblock_calls,
    an_aborted_run_waits_for_unblock_calls_in_its_stage_tasks,
    a_failed_run_waits_for_its_unblock_calls,
);

#[test]
#[should_panic(
    expected = "flowline: blocking parallelism must be at least 1, got 0; pass how \
                           many calls may run at once, e.g. \
                           .map_blocking_with(BlockingOptions::new().parallelism(4), f)"
)]
fn zero_parallelism_is_rejected_with_a_valid_hint() {
    let _ = producer::iter(0..1).map_blocking_with(BlockingOptions::new().parallelism(0), |x| x);
}

#[test]
fn the_zero_parallelism_hint_compiles() {
    let f = |x: u32| x;
    let _ = producer::iter(0..1).map_blocking_with(BlockingOptions::new().parallelism(4), f);
}

#[test]
#[should_panic(expected = "flowline: blocking pool threads must be at least 1, got 0")]
fn pool_rejects_zero_threads() {
    let _ = BlockingPool::new(0);
}

#[test]
fn blocking_types_are_send_where_users_need_them() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>(_: &T) {}
    let pool = BlockingPool::new(1);
    send_sync(&pool);
    send_sync(
        &BlockingOptions::new()
            .pool(&pool)
            .parallelism(2)
            .unordered(),
    );
    send(
        &producer::iter(0..3u64)
            .map_blocking_with(par(2), |x| x)
            .map_blocking_with(BlockingOptions::new().pool(&pool).unordered(), |x| x),
    );
    send(&producer::from_blocking_iter(0..3u64));
    send(&consumer::blocking(|_: u64| {}));
    send(&unblock(|| 1));
    // A run of them can be spawned on a multi-threaded executor.
    send(
        &producer::from_blocking_iter(0..3u64)
            .map_blocking_with(par(2), |x| x)
            .run(consumer::blocking(|_| {})),
    );
}

/// Workers run inside the pipeline's runtime context: on tokio,
/// `Handle::current()` and `tokio::spawn` work in the closure.
#[test]
fn tokio_apis_work_inside_blocking_closures() {
    Rt::Tokio.block_on(|env| async move {
        let (out, _) = producer::iter(0..20u64)
            .map_blocking_with(par(3), |x| {
                let _ = tokio::runtime::Handle::current();
                tokio::spawn(async move { x * 2 })
            })
            .then(|task| async move { task.await.unwrap() })
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..20).map(|x| x * 2).collect::<Vec<_>>());
        let (ids, _) = producer::from_blocking_iter(
            (0..3).map(|_| tokio::runtime::Handle::try_current().is_ok()),
        )
        .on_runtime(env.runtime)
        .run_collect()
        .await
        .unwrap();
        assert_eq!(ids, [true, true, true]);

        // With no runtime named, the run picks tokio (the enabled runtime,
        // called inside it), and so do its workers.
        let (flags, _) = producer::iter(0..4u64)
            .map_blocking(|_| tokio::runtime::Handle::try_current().is_ok())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(flags, [true; 4]);

        let flags = Arc::new(Mutex::new(Vec::new()));
        let f = flags.clone();
        producer::iter(0..3u64)
            .run(consumer::blocking(move |_| {
                f.lock()
                    .unwrap()
                    .push(tokio::runtime::Handle::try_current().is_ok());
            }))
            .await
            .unwrap();
        assert_eq!(*flags.lock().unwrap(), [true; 3]);
    });
}
