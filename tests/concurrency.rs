//! Concurrent map: `map_concurrent`, `map_concurrent_unordered`,
//! `map_concurrent_by_key`.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};
use flowline::{producer, PipelineError, StageKind};
use support::Rt;

/// A runtime for timers inside user futures (the pipeline's, or async-io).
fn timer_rt(env: &support::Env) -> Arc<dyn Runtime> {
    env.runtime.clone().unwrap_or_else(|| Arc::new(RuntimeFree))
}

/// Tracks how many futures run at once and the most ever seen.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(n, SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

fn ordered_keeps_input_order_and_limit(rt: Rt) {
    rt.block_on(|env| async move {
        let timers = timer_rt(&env);
        let gauge = Arc::new(Gauge::default());
        let g = gauge.clone();
        let (out, report) = producer::iter(0..200u64)
            .map_concurrent(8, move |x| {
                let (timers, g) = (timers.clone(), g.clone());
                async move {
                    g.enter();
                    // Later items often finish first.
                    timers.sleep(Duration::from_micros((x * 7919) % 3000)).await;
                    g.leave();
                    x * 2
                }
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..200u64).map(|x| x * 2).collect::<Vec<_>>());
        assert!(gauge.max.load(SeqCst) <= 8, "limit exceeded");
        assert!(gauge.max.load(SeqCst) >= 2, "never ran concurrently");
        let stage = &report.stages[1];
        assert_eq!(stage.kind, StageKind::Concurrent);
        assert_eq!((stage.items_in, stage.items_out), (200, 200));
        assert_eq!(report.delivered(), 200);
    });
}

fn unordered_delivers_every_item_once_within_limit(rt: Rt) {
    rt.block_on(|env| async move {
        let timers = timer_rt(&env);
        let gauge = Arc::new(Gauge::default());
        let g = gauge.clone();
        let (mut out, report) = producer::iter(0..300u64)
            .map_concurrent_unordered(5, move |x| {
                let (timers, g) = (timers.clone(), g.clone());
                async move {
                    g.enter();
                    timers.sleep(Duration::from_micros((x * 7919) % 2000)).await;
                    g.leave();
                    x
                }
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert!(gauge.max.load(SeqCst) <= 5, "limit exceeded");
        out.sort_unstable();
        assert_eq!(out, (0..300u64).collect::<Vec<_>>());
        assert_eq!(report.delivered(), 300);
    });
}

fn unordered_lets_fast_items_pass_slow_ones(rt: Rt) {
    rt.block_on(|env| async move {
        let timers = timer_rt(&env);
        let (out, _) = producer::iter([300u64, 1, 2, 3])
            .map_concurrent_unordered(4, move |ms| {
                let timers = timers.clone();
                async move {
                    timers.sleep(Duration::from_millis(ms)).await;
                    ms
                }
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out.last(), Some(&300));
        assert_eq!(out.len(), 4);
    });
}

fn by_key_keeps_order_per_key_and_one_at_a_time(rt: Rt) {
    rt.block_on(|env| async move {
        let timers = timer_rt(&env);
        let busy: Arc<Mutex<HashMap<u64, bool>>> = Arc::default();
        let gauge = Arc::new(Gauge::default());
        let (b, g) = (busy.clone(), gauge.clone());
        let (out, report) = producer::iter(0..240u64)
            .map_concurrent_by_key(
                4,
                |x| x % 6,
                move |x| {
                    let (timers, b, g) = (timers.clone(), b.clone(), g.clone());
                    async move {
                        let key = x % 6;
                        let was = b.lock().unwrap().insert(key, true);
                        assert_ne!(was, Some(true), "two futures of key {key} at once");
                        g.enter();
                        timers.sleep(Duration::from_micros((x * 7919) % 1500)).await;
                        g.leave();
                        b.lock().unwrap().insert(key, false);
                        (key, x)
                    }
                },
            )
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out.len(), 240);
        for key in 0..6 {
            let seq: Vec<u64> = out
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, x)| *x)
                .collect();
            let expected: Vec<u64> = (0..240).filter(|x| x % 6 == key).collect();
            assert_eq!(seq, expected, "key {key}");
        }
        assert!(gauge.max.load(SeqCst) <= 4, "limit exceeded");
        assert!(gauge.max.load(SeqCst) >= 2, "keys never ran concurrently");
        assert_eq!(report.delivered(), 240);
    });
}

fn by_key_hot_key_does_not_lose_items(rt: Rt) {
    rt.block_on(|env| async move {
        // One key for almost everything: the waiting room fills and upstream
        // must wait, nothing lost or reordered.
        let (out, _) = producer::iter(0..1000u32)
            .map_concurrent_by_key(3, |x| u32::from(x % 100 == 0), |x| async move { x })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        let hot: Vec<u32> = out.iter().copied().filter(|x| x % 100 != 0).collect();
        assert_eq!(hot, (0..1000).filter(|x| x % 100 != 0).collect::<Vec<_>>());
        assert_eq!(out.len(), 1000);
    });
}

/// A future of two 50 ms steps that records when it finished.
fn two_step_work(
    timers: Arc<dyn Runtime>,
    done: Arc<Mutex<Vec<Instant>>>,
) -> impl FnMut(u32) -> futures::future::BoxFuture<'static, u32> + Send + 'static {
    move |x| {
        let (timers, done) = (timers.clone(), done.clone());
        Box::pin(async move {
            timers.sleep(Duration::from_millis(50)).await;
            timers.sleep(Duration::from_millis(50)).await;
            done.lock().unwrap().push(timers.now());
            x
        })
    }
}

/// When the last of `done` finished, after `start`.
fn last_done(done: &Mutex<Vec<Instant>>, start: Instant) -> Duration {
    let done = done.lock().unwrap();
    assert_eq!(done.len(), 8);
    done.iter().max().unwrap().duration_since(start)
}

/// The starvation test. 8 items, limit 4, each future two 50 ms steps, a
/// consumer that spends 50 ms per item (≥ 100 + 8 × 50 ms in all). With
/// `futures::StreamExt::buffered` a future only moves when the consumer asks
/// for the next item, so the last one finishes after ≥ 400 ms (see
/// `buffered_starves_in_flight_futures`, the control). Here the stage keeps
/// them moving: all finish at about 200 ms.
///
/// On real timers only the outcome is checked (the machine is shared); the
/// virtual clock checks the timing exactly.
fn in_flight_futures_progress_while_consumer_is_busy(rt: Rt) {
    // Ordered and unordered side by side (each its own run and clock
    // readings), so the real-time variants take half the time.
    rt.block_on(|env| async move {
        futures::join!(in_flight_case(&env, false), in_flight_case(&env, true));
    });
}

async fn in_flight_case(env: &support::Env, unordered: bool) {
    let done: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let work = two_step_work(timer_rt(env), done.clone());
    let env2 = env.clone();
    let consume = move |_x: u32| {
        let env = env2.clone();
        async move { env.sleep(Duration::from_millis(50)).await }
    };
    let start = env.now();
    let input = producer::iter(0..8u32);
    let report = if unordered {
        input
            .map_concurrent_unordered(4, work)
            .on_runtime(env.runtime.clone())
            .run_for_each(consume)
            .await
    } else {
        input
            .map_concurrent(4, work)
            .on_runtime(env.runtime.clone())
            .run_for_each(consume)
            .await
    }
    .unwrap();
    let total = env.now() - start;
    assert_eq!(report.delivered(), 8);
    let last = last_done(&done, start);
    if env.is_virtual() {
        // Four at a time, each 100 ms: the last finish at 200 ms, while the
        // consumer is still busy until 100 + 8 × 50 ms.
        let ms = Duration::from_millis;
        assert_eq!((last, total), (ms(200), ms(500)), "unordered: {unordered}");
    }
}

/// The control for the test above: `futures::StreamExt::buffered` does starve
/// its futures (a lower bound on time, so not flaky on a loaded machine).
#[test]
fn buffered_starves_in_flight_futures() {
    use futures::StreamExt as _;
    futures::executor::block_on(async {
        let done: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let work = two_step_work(Arc::new(RuntimeFree), done.clone());
        let start = Instant::now();
        let mut results = futures::stream::iter(0..8u32).map(work).buffered(4);
        while let Some(_x) = results.next().await {
            RuntimeFree.sleep(Duration::from_millis(50)).await;
        }
        assert!(last_done(&done, start) >= Duration::from_millis(350));
    });
}

fn panic_in_future_names_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let result = producer::iter(0..100u32)
            .map_concurrent(4, |x| async move {
                if x == 37 {
                    panic!("bad item {x}");
                }
                x
            })
            .named("fetch")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        match result {
            Err(PipelineError::Panicked { stage, message, .. }) => {
                assert_eq!(stage, "fetch");
                assert_eq!(message, "bad item 37");
            }
            other => panic!("unexpected: {other:?}"),
        }
    });
}

fn dropping_the_run_cancels_in_flight_futures(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let timers = timer_rt(&env);
        let run = producer::iter(0..1000u32)
            .map_concurrent_unordered(10, move |x| {
                let guard = support::DropCounter::new(&l);
                let timers = timers.clone();
                async move {
                    let _guard = guard;
                    timers.sleep(Duration::from_secs(30)).await;
                    x
                }
            })
            .on_runtime(env.runtime.clone())
            .run_count();
        let run = Box::pin(run);
        let raced =
            futures::future::select(run, Box::pin(env.sleep(Duration::from_millis(50)))).await;
        match raced {
            futures::future::Either::Right(((), run)) => drop(run),
            futures::future::Either::Left(_) => panic!("run cannot finish"),
        }
        assert!(
            env.eventually(Duration::from_secs(5), || live.load(SeqCst) == 0)
                .await,
            "in-flight futures were not dropped"
        );
    });
}

/// Both drivers at work: the task and a consumer that alternates between
/// waiting for results and being busy, over many items. Exact order, no loss.
fn task_and_consumer_share_the_engine(rt: Rt) {
    rt.block_on(|env| async move {
        let timers = timer_rt(&env);
        let env2 = env.clone();
        let mut seen = Vec::new();
        let report = producer::iter(0..3000u64)
            .map_concurrent(16, move |x| {
                let timers = timers.clone();
                async move {
                    if x % 7 == 0 {
                        timers.sleep(Duration::from_micros(200)).await;
                    }
                    x
                }
            })
            .on_runtime(env.runtime.clone())
            .run_for_each(|x| {
                seen.push(x);
                let env = env2.clone();
                async move {
                    if x % 500 == 0 {
                        env.sleep(Duration::from_millis(5)).await;
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(seen, (0..3000).collect::<Vec<_>>());
        assert_eq!(report.delivered(), 3000);
    });
}

/// Neither driver of a concurrent stage blocks its thread while the other
/// runs user code. The stage's task pulls an item through an upstream `map`
/// closure that blocks its (worker) thread until the consumer's thread has
/// polled the stage once more: that poll must return (`Pending`, turned
/// away) instead of waiting for the closure. Runtime-free there is one
/// thread, so the two drivers never meet and the closure never waits.
fn no_driver_blocks_while_the_other_runs_user_code(rt: Rt) {
    use std::sync::atomic::AtomicBool;
    use std::thread;

    rt.block_on(|env| async move {
        let consumer_thread = thread::current().id();
        let open = Arc::new(AtomicBool::new(false));
        let upstream_waker = Arc::new(futures::task::AtomicWaker::new());
        let (blocked, released, timed_out) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (o, w) = (open.clone(), upstream_waker.clone());
        let mut next = 0u32;
        let gated = futures::stream::poll_fn(move |cx| {
            w.register(cx.waker());
            if !o.load(SeqCst) {
                return std::task::Poll::Pending;
            }
            next += 1;
            std::task::Poll::Ready((next <= 50).then_some(next - 1))
        });
        let (b, r, t) = (blocked.clone(), released.clone(), timed_out.clone());
        let mut stream = producer::from_stream(gated)
            .map(move |x| {
                if thread::current().id() != consumer_thread && !b.swap(true, SeqCst) {
                    // The first item the task pulls: hold its thread until the
                    // consumer's thread shows it is free.
                    let start = Instant::now();
                    while !r.load(SeqCst) {
                        if start.elapsed() > Duration::from_secs(10) {
                            t.store(true, SeqCst);
                            break;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                x
            })
            .map_concurrent(4, |x| async move { x })
            .on_runtime(env.runtime.clone());
        use futures::StreamExt as _;
        // Starts the stage's task; upstream is still closed.
        assert!(futures::poll!(stream.next()).is_pending());
        open.store(true, SeqCst);
        upstream_waker.wake(); // wakes the task (and the consumer)
        if env.runtime.is_some() {
            // The task pulls the first item on a worker thread and blocks
            // there; the consumer has not been polled since.
            assert!(
                env.eventually(Duration::from_secs(20), || blocked.load(SeqCst))
                    .await
            );
            let _ = futures::poll!(stream.next());
            released.store(true, SeqCst);
        }
        let mut seen: Vec<u32> = Vec::new();
        while let Some(x) = stream.next().await {
            seen.push(x);
        }
        assert!(
            !timed_out.load(SeqCst),
            "the consumer's poll waited for user code running in the task"
        );
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!(blocked.load(SeqCst), env.runtime.is_some());
    });
}

#[test]
fn concurrent_pipelines_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let pipeline = producer::iter(0..10u32)
        .map_concurrent(2, |x| async move { x })
        .map_concurrent_unordered(2, |x| async move { x })
        .map_concurrent_by_key(2, |x| *x % 2, |x| async move { x });
    assert_send(&pipeline);
    assert_send(&pipeline.run_collect());
}

#[test]
#[should_panic(expected = "map_concurrent limit must be at least 1, got 0")]
fn zero_limit_panics() {
    let _ = producer::iter(0..1).map_concurrent(0, |x| async move { x });
}

#[test]
#[should_panic(expected = "map_concurrent_by_key limit must be at least 1, got 0")]
fn zero_limit_by_key_panics() {
    let _ = producer::iter(0..1).map_concurrent_by_key(0, |x| *x, |x| async move { x });
}

on_all_runtimes!(
    ordered_keeps_input_order_and_limit,
    unordered_delivers_every_item_once_within_limit,
    unordered_lets_fast_items_pass_slow_ones,
    by_key_keeps_order_per_key_and_one_at_a_time,
    by_key_hot_key_does_not_lose_items,
    in_flight_futures_progress_while_consumer_is_busy,
    panic_in_future_names_the_stage,
    dropping_the_run_cancels_in_flight_futures,
    task_and_consumer_share_the_engine,
    no_driver_blocks_while_the_other_runs_user_code,
);

// Not the two-thread tests (`task_and_consumer_share_the_engine`,
// `no_driver_blocks_while_the_other_runs_user_code`): the virtual clock runs
// every task on one thread.
on_virtual_clock!(
    ordered_keeps_input_order_and_limit,
    unordered_delivers_every_item_once_within_limit,
    unordered_lets_fast_items_pass_slow_ones,
    by_key_keeps_order_per_key_and_one_at_a_time,
    by_key_hot_key_does_not_lose_items,
    in_flight_futures_progress_while_consumer_is_busy,
    panic_in_future_names_the_stage,
    dropping_the_run_cancels_in_flight_futures,
);
