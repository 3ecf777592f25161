//! Adversarial stops and ends of the run contract: runs aborted through
//! their handle, shut down, dropped mid-way, stalled by their consumer, or
//! ending while a zip's cut side or a progress report is still busy, with
//! fan-out, fan-in, concurrent and timing stages. An aborted run fails with
//! a balanced report and drops all the user code it held when it returns; a
//! shut-down run completes with exactly what its sources made; a dropped
//! one stops every task; a stalled one makes no more than its queues hold.
#[path = "support/contract.rs"]
mod contract;
mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use contract::*;
use flowline::stage::Overflow;
use flowline::{producer, PipelineError};
use support::{Rt, Stop};

/// An endless source broadcast to a concurrent branch and a throttled,
/// async branch, merged back, spawned and aborted: the run fails as aborted
/// with balanced counts, nothing committed, each branch delivered an
/// ordered prefix, and every closure and future is dropped when the handle
/// resolves.
fn aborting_a_spawned_fan_out_run(rt: Rt) {
    rt.block_on(|env| async move {
        let (live, made) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
        let (sink, seen) = recorder();
        let [a, b]: [_; 2] = endless(&live, &made)
            .boundary(8)
            .broadcast(2, 4, Overflow::Backpressure)
            .try_into()
            .unwrap();
        let a = a.map_concurrent(4, guarded_future(&live, &env));
        let b = b
            .throttle(flowline::Rate::per_second(20_000), 16)
            .then(guarded_future(&live, &env))
            .map(|x| x + (1 << 40));
        let handle = a.merge(b).on_runtime(env.runtime.clone()).spawn(sink);
        let watch = seen.clone();
        let result = env
            .stop_when(handle, LIMIT, move || watch.len() >= 40, Stop::Abort)
            .await;
        assert_eq!(live.load(SeqCst), 0, "user code outlived the run");
        let items = seen.items();
        let (low, high): (Vec<u64>, Vec<u64>) = items.iter().partition(|&&x| x < 1 << 40);
        let high: Vec<u64> = high.into_iter().map(|x| x - (1 << 40)).collect();
        let err = result.unwrap_err();
        assert!(matches!(err, PipelineError::Aborted { .. }), "{err:?}");
        assert_balanced(err.report());
        assert!(!seen.closed.load(SeqCst));
        assert_eq!(low, (0..low.len() as u64).collect::<Vec<_>>());
        assert_eq!(high, (0..high.len() as u64).collect::<Vec<_>>());
    });
}

/// The run future dropped while items flow, for several shapes: every
/// closure and future of the run is dropped soon after (at once when
/// runtime-free), and nothing more reaches the sink.
fn dropping_the_run_future_stops_every_task(rt: Rt) {
    rt.block_on(|env| async move {
        for shape in 0..6 {
            let (live, made) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
            let (sink, seen) = recorder();
            let source = endless(&live, &made);
            let pipeline = match shape {
                0 => source.boundary(4).map(|x| x).boundary(16).boxed(),
                1 => {
                    let [a, b]: [_; 2] = source
                        .broadcast(2, 4, Overflow::Backpressure)
                        .try_into()
                        .unwrap();
                    a.merge(
                        b.map_concurrent(3, guarded_future(&live, &env))
                            .map(|x| x + (1 << 40)),
                    )
                    .boxed()
                }
                2 => source
                    .map_concurrent_unordered(4, guarded_future(&live, &env))
                    .boundary(4)
                    .boxed(),
                3 => {
                    let workers = source
                        .balance(3, 2)
                        .into_iter()
                        .map(|w| w.map_concurrent(2, guarded_future(&live, &env)).boxed());
                    producer::merge_all(workers).boxed()
                }
                4 => source
                    .throttle(flowline::Rate::per_second(50_000), 8)
                    .batch(4, Duration::from_millis(2))
                    .map(|b| b[0])
                    .boundary(2)
                    .boxed(),
                _ => source
                    .buffer(8, Overflow::DropOldest)
                    .then(guarded_future(&live, &env))
                    .buffer(2, Overflow::Backpressure)
                    .boxed(),
            };
            let run = pipeline.on_runtime(env.runtime.clone()).run(sink);
            let watch = seen.clone();
            let started = Box::pin(env.eventually(LIMIT, move || watch.len() >= 10));
            match futures::future::select(Box::pin(run), started).await {
                futures::future::Either::Right((reached, run)) => {
                    assert!(reached, "shape {shape} never got going");
                    drop(run);
                }
                futures::future::Either::Left((result, _)) => {
                    panic!("shape {shape}: an endless run ended: {result:?}")
                }
            }
            if env.kind == Rt::Free {
                assert_eq!(live.load(SeqCst), 0, "shape {shape}");
            }
            assert!(
                env.eventually(LIMIT, || live.load(SeqCst) == 0).await,
                "shape {shape}: {} guards left",
                live.load(SeqCst)
            );
            let (delivered, produced) = (seen.len(), made.load(SeqCst));
            env.sleep(Duration::from_millis(10)).await;
            assert_eq!(
                (seen.len(), made.load(SeqCst)),
                (delivered, produced),
                "shape {shape}"
            );
            assert!(!seen.closed.load(SeqCst));
        }
    });
}

/// A consumer stalled on its first item: upstream runs ahead no further
/// than the queues' capacities allow (each queue of capacity `c` holds `c`
/// plus the reader's batch in hand, at most `c / 4`), however long it waits.
fn a_stalled_consumer_bounds_what_upstream_makes(rt: Rt) {
    rt.block_on(|env| async move {
        for shape in 0..4 {
            let (live, made) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
            let source = endless(&live, &made);
            // The bound: queue capacities, batches in hand, one item in each
            // hand between them.
            let (pipeline, bound) = match shape {
                0 => (
                    source.boundary(16).map(|x| x).boundary(8).boxed(),
                    16 + 4 + 8 + 2 + 4,
                ),
                1 => (
                    source.buffer(32, Overflow::Backpressure).boxed(),
                    32 + 8 + 2,
                ),
                2 => {
                    let [a, b]: [_; 2] = source
                        .broadcast(2, 8, Overflow::Backpressure)
                        .try_into()
                        .unwrap();
                    // Branch b is read only after a's first item: a stalls.
                    (a.zip(b).map(|(x, _)| x).boxed(), 2 * (8 + 2) + 4)
                }
                _ => (
                    source
                        .map_concurrent(4, |x| async move { x })
                        .boundary(8)
                        .boxed(),
                    4 + 4 + 8 + 2 + 4,
                ),
            };
            let stall = futures::FutureExt::shared(futures::FutureExt::boxed(
                futures::future::pending::<()>(),
            ));
            let handle = pipeline
                .on_runtime(env.runtime.clone())
                .spawn(flowline::consumer::for_each(move |_: u64| stall.clone()));
            // Stop once upstream has made nothing new for 30 looks (about
            // 30 ms): the bound must hold whenever we look.
            let (watch, mut last, mut still) = (made.clone(), 0, 0);
            let result = env
                .stop_when(
                    handle,
                    LIMIT,
                    move || {
                        let now = watch.load(SeqCst);
                        still = if now == last && now > 0 { still + 1 } else { 0 };
                        last = now;
                        still >= 30
                    },
                    Stop::Abort,
                )
                .await;
            let err = result.unwrap_err();
            assert!(matches!(err, PipelineError::Aborted { .. }), "{err:?}");
            assert_balanced(err.report());
            assert_eq!(live.load(SeqCst), 0);
            let made = made.load(SeqCst);
            assert!(
                made <= bound,
                "shape {shape}: upstream made {made} > {bound}\n{}",
                err.report()
            );
        }
    });
}

/// Two runs reading the two workers of one `balance`: one is aborted
/// after a few items (unless the other took all the rest first), the other
/// completes. Every item was taken by exactly
/// one worker; the completed run delivered all it took, in order; the
/// aborted one delivered an ordered part of what it took, and its report
/// balances.
fn aborting_one_balance_worker_s_run_loses_nothing_for_the_other(rt: Rt) {
    rt.block_on(|env| async move {
        const N: u64 = 20_000;
        let [a, b]: [_; 2] = producer::iter(0..N)
            .boundary(8)
            .balance(2, 4)
            .try_into()
            .unwrap();
        let (sink, seen) = recorder();
        let pause = env.clone();
        let slow = a.then(move |x| {
            let pause = pause.clone();
            async move {
                pause.sleep(Duration::from_millis(1)).await;
                x
            }
        });
        let handle = slow.on_runtime(env.runtime.clone()).spawn(sink);
        let watch = seen.clone();
        let aborted = env.stop_when(handle, LIMIT, move || watch.len() >= 5, Stop::Abort);
        let completed = b.on_runtime(env.runtime.clone()).run_collect();
        let (aborted, completed) = futures::join!(aborted, completed);
        // The other worker may take everything left before the abort: the
        // slow run then completes.
        let a_report = match aborted {
            Ok(report) => report,
            Err(err) => {
                assert!(matches!(err, PipelineError::Aborted { .. }), "{err:?}");
                err.report().clone()
            }
        };
        assert_balanced(&a_report);
        let (b_items, report) = completed.unwrap();
        assert_completed(&report);
        assert!(b_items.windows(2).all(|w| w[0] < w[1]));
        let a_items = seen.items();
        assert!(a_items.windows(2).all(|w| w[0] < w[1]));
        let a_took = a_report.stage("balance#2.0").unwrap().items_in;
        let b_took = report.stage("balance#2.1").unwrap().items_in;
        assert_eq!(a_took + b_took, N, "\n{a_report}\n{report}");
        assert_eq!(b_took, b_items.len() as u64);
        assert!(
            a_items.iter().all(|x| b_items.binary_search(x).is_err()),
            "an item went to both"
        );
    });
}

/// `shutdown` of spawned runs of several shapes (boundaries, concurrent
/// stages, throttle and `then`, batch, merge, chain, zip) fed by endless
/// sources: the run completes, nothing is in flight, and the sink got
/// exactly the items each source made (in order where the stages keep it).
fn shutting_down_a_spawned_run_delivers_everything_made(rt: Rt) {
    rt.block_on(|env| async move {
        const HIGH: u64 = 1 << 40;
        for shape in 0..8 {
            let (live, made, made2) = (
                Arc::new(AtomicUsize::new(0)),
                Arc::new(AtomicU64::new(0)),
                Arc::new(AtomicU64::new(0)),
            );
            let (sink, seen) = recorder();
            let src = endless(&live, &made);
            let other = || endless(&live, &made2).map(|x| x + HIGH);
            let (pipeline, ordered) = match shape {
                0 => (src.boundary(4).map(|x| x).boundary(16).boxed(), true),
                1 => (
                    src.map_concurrent(4, guarded_future(&live, &env)).boxed(),
                    true,
                ),
                2 => (
                    src.map_concurrent_unordered(4, guarded_future(&live, &env))
                        .boundary(2)
                        .boxed(),
                    false,
                ),
                3 => (
                    src.throttle(flowline::Rate::per_second(20_000), 8)
                        .then(guarded_future(&live, &env))
                        .boxed(),
                    true,
                ),
                4 => (
                    src.batch(7, Duration::from_secs(3600))
                        .map(|b| b[0] * 1_000 + b.len() as u64)
                        .boxed(),
                    true,
                ),
                5 => (src.boundary(2).merge(other().boundary(2)).boxed(), true),
                6 => (src.boundary(2).chain(other()).boxed(), true),
                _ => (src.zip(other()).map(|(a, b)| a + b - HIGH).boxed(), true),
            };
            let handle = pipeline.on_runtime(env.runtime.clone()).spawn(sink);
            let watch = seen.clone();
            let report = env
                .stop_when(handle, LIMIT, move || watch.len() >= 30, Stop::Shutdown)
                .await
                .unwrap_or_else(|e| panic!("shape {shape}: {e:?}"));
            assert_completed(&report);
            assert!(seen.closed.load(SeqCst));
            assert_eq!(live.load(SeqCst), 0, "shape {shape}");
            let mut items = seen.items();
            let mut high: Vec<u64> = items
                .iter()
                .copied()
                .filter(|&x| x >= HIGH)
                .map(|x| x - HIGH)
                .collect();
            items.retain(|&x| x < HIGH);
            if !ordered {
                items.sort_unstable();
            }
            let (made, made2) = (made.load(SeqCst), made2.load(SeqCst));
            let source = report.stages[0].items_out;
            let what = format!("shape {shape}: made {made}, {made2}\n{report}");
            let expected: Vec<u64> = match shape {
                // (first, len) of consecutive batches covering what was made.
                4 => {
                    let mut next = 0;
                    let batches: Vec<u64> = items
                        .iter()
                        .map(|&b| {
                            let (first, len) = (b / 1_000, b % 1_000);
                            assert_eq!(first, next, "shape 4");
                            next = first + len;
                            first
                        })
                        .collect();
                    assert_eq!(next, source, "{what}");
                    items = batches.clone();
                    batches
                }
                // Pairs (i, i) sum to 2i.
                7 => (0..report.delivered()).map(|i| 2 * i).collect(),
                _ => (0..source).collect(),
            };
            assert_eq!(items, expected, "{what}");
            if matches!(shape, 5 | 6) {
                high.sort_unstable();
                assert_eq!(high, (0..high.len() as u64).collect::<Vec<_>>(), "{what}");
            }
        }
    });
}

/// Shutdown of a run that reads fan-out branches (here both branches of a
/// broadcast, merged back): the source must stop and the run complete with
/// every item the source made on both sides, long before the source's end.
#[test]
fn shutting_down_a_run_of_fan_out_branches_stops_the_source() {
    const N: u64 = 2_000_000;
    for rt in [Rt::Smol, Rt::Tokio, Rt::Free] {
        rt.block_on(|env| async move {
            let (sink, seen) = recorder();
            let [a, b]: [_; 2] = producer::iter(0..N)
                .broadcast(2, 4, Overflow::Backpressure)
                .try_into()
                .unwrap();
            let handle = a
                .merge(b.map(|x| x + (1 << 40)))
                .on_runtime(env.runtime.clone())
                .spawn(sink);
            let watch = seen.clone();
            let report = env
                .stop_when(handle, LIMIT, move || watch.len() >= 40, Stop::Shutdown)
                .await
                .unwrap();
            assert_completed(&report);
            let made = report.stages[0].items_out;
            assert!(
                made < N,
                "{rt:?}: the source ran to its end after the shutdown\n{report}"
            );
            let items = seen.items();
            let low: Vec<u64> = items.iter().copied().filter(|&x| x < 1 << 40).collect();
            assert_eq!(low, (0..made).collect::<Vec<_>>());
            assert_eq!(items.len() as u64, 2 * made);
        });
    }
}

/// Each branch of a broadcast whose upstream has concurrent futures, a
/// boundary and an async `then` (all holding drop guards), run on its own:
/// both runs aborted, or one dropped and the other aborted. Every run fails
/// as aborted with a balanced report, and once the last one has returned
/// no user code of the shared upstream is left.
fn aborting_every_run_of_a_fan_out_drops_its_upstream(rt: Rt) {
    rt.block_on(|env| async move {
        for drop_one in [false, true] {
            let (live, made) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
            let [a, b]: [_; 2] = endless(&live, &made)
                .map_concurrent(4, guarded_future(&live, &env))
                .boundary(4)
                .then(guarded_future(&live, &env))
                .broadcast(2, 4, Overflow::Backpressure)
                .try_into()
                .unwrap();
            let ((sa, seen_a), (sb, seen_b)) = (recorder(), recorder());
            let ha = a.on_runtime(env.runtime.clone()).spawn(sa);
            let hb = b
                .map_concurrent(2, guarded_future(&live, &env))
                .on_runtime(env.runtime.clone())
                .spawn(sb);
            let (wa, wb) = (seen_a.clone(), seen_b.clone());
            let abort_a = env.stop_when(ha, LIMIT, move || wa.len() >= 20, Stop::Abort);
            let results = if drop_one {
                drop(hb);
                vec![abort_a.await]
            } else {
                let abort_b = env.stop_when(hb, LIMIT, move || wb.len() >= 40, Stop::Abort);
                let (ra, rb) = futures::join!(abort_a, abort_b);
                vec![ra, rb]
            };
            assert_eq!(
                live.load(SeqCst),
                0,
                "drop_one {drop_one}: user code outlived the runs"
            );
            for result in results {
                let err = result.unwrap_err();
                assert!(matches!(err, PipelineError::Aborted { .. }), "{err:?}");
                assert_balanced(err.report());
            }
            assert!(!seen_a.closed.load(SeqCst) && !seen_b.closed.load(SeqCst));
        }
    });
}

/// A `zip` whose short side ends while the long side's stages hold items
/// (a boundary, concurrent futures in flight, a part-full batch, a
/// throttled item, an async `then`, a buffer, a broadcast branch): the run
/// completes with exactly the pairs, every stage balances with nothing in
/// flight, and the long side's futures are dropped by the time it returns.
fn a_zip_cutting_off_a_busy_side_completes_with_nothing_in_flight(rt: Rt) {
    rt.block_on(|env| async move {
        for shape in 0..9 {
            let live = Arc::new(AtomicUsize::new(0));
            let long = producer::iter(0..100_000u64);
            let long = match shape {
                0 => long.boundary(8).boxed(),
                1 => long.map_concurrent(8, guarded_future(&live, &env)).boxed(),
                2 => long
                    .map_concurrent_unordered(8, guarded_future(&live, &env))
                    .map(|_| 0)
                    .boxed(),
                3 => long
                    .map_concurrent_by_key(8, |x| x % 3, guarded_future(&live, &env))
                    .map(|_| 0)
                    .boxed(),
                4 => long
                    .batch(5, Duration::from_secs(3600))
                    .map(|b| b[0] / 5)
                    .boxed(),
                5 => long
                    .throttle(flowline::Rate::per_second(1_000), 2)
                    .boundary(2)
                    .boxed(),
                6 => long.then(guarded_future(&live, &env)).boundary(4).boxed(),
                7 => long.buffer(8, Overflow::DropOldest).map(|_| 0).boxed(),
                _ => {
                    let mut branches = long.boundary(4).broadcast(2, 4, Overflow::Backpressure);
                    drop(branches.pop());
                    branches.pop().unwrap().boxed()
                }
            };
            let expected: Vec<(u64, u64)> = match shape {
                2 | 3 | 7 => (0..3).map(|i| (i, 0)).collect(),
                _ => (0..3).map(|i| (i, i)).collect(),
            };
            let (pairs, report) = producer::iter(0..3u64)
                .zip(long)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(pairs, expected, "shape {shape}");
            assert_completed(&report);
            assert_eq!(
                live.load(SeqCst),
                0,
                "shape {shape}: a future outlived the run"
            );
        }
    });
}

/// A zip ends (its short side ended) and the run closes its sink; while
/// the close is under way, the side the zip stopped reading panics in its
/// boundary task. The consumer was committed with every pair: the run must
/// not report a failure (the caller would redo committed work).
#[test]
fn a_committed_run_is_not_reported_failed() {
    quiet_panics();
    for rt in [Rt::Tokio, Rt::Smol] {
        rt.block_on(|env| async move {
            let (mut sink, seen) = recorder();
            sink.slow_close = true;
            let (watch, pause) = (seen.clone(), env.clone());
            let long = producer::generator(move |out| async move {
                for i in 0..3u64 {
                    out.emit(i).await;
                }
                while !watch.closed.load(SeqCst) {
                    pause.sleep(Duration::from_millis(1)).await;
                }
                boom(3)
            })
            .named("cut")
            .boundary(2);
            let result = producer::iter(0..3u64)
                .zip(long)
                .map(|(a, _)| a)
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await;
            assert!(seen.closed.load(SeqCst));
            assert_eq!(seen.items(), [0, 1, 2]);
            let report = result.unwrap_or_else(|e| {
                panic!(
                    "{rt:?}: committed, yet failed in {}\n{}",
                    e.stage(),
                    e.report()
                )
            });
            assert_completed(&report);
        });
    }
}

/// A progress callback panicking on the run's final report, which comes
/// after the sink's close (the commit): the outcome must not depend on
/// timing, and a run whose sink was closed must not be reported failed.
#[test]
fn a_panic_in_the_final_progress_report_has_one_outcome() {
    quiet_panics();
    for rt in [Rt::Smol, Rt::Tokio] {
        let rt = rt.reused();
        for run in 0..2_000 {
            let (closed, result) = rt.block_on(|env| async move {
                let (sink, seen) = recorder();
                let result = producer::iter(0..100u64)
                    .boundary(4)
                    .on_progress(Duration::from_secs(3600), |s| {
                        if s.finished {
                            boom(0)
                        }
                    })
                    .on_runtime(env.runtime.clone())
                    .run(sink)
                    .await;
                (
                    seen.closed.load(SeqCst),
                    result.map_err(|e| e.stage().to_string()),
                )
            });
            assert!(closed);
            assert!(
                result.is_ok(),
                "run {run}: committed, yet failed in {result:?}"
            );
        }
    }
}

/// Fan-out and fan-in at the smallest capacities (1 to 3): a zip of two
/// broadcast branches (plain, and behind a boundary and a buffer), balance
/// into boundaries merged back, a zip of three partition branches. Each run
/// completes (nothing waits for room another queue holds) with exactly the
/// items, and nothing in flight.
fn tiny_queues_around_fan_out_and_fan_in_complete_exactly(rt: Rt) {
    rt.block_on(|env| async move {
        for (cap, shape) in (1..=3usize).flat_map(|c| (0..4).map(move |s| (c, s))) {
            let src = producer::iter(0..3_000u64);
            let back = Overflow::Backpressure;
            let (pipeline, expected): (_, Vec<u64>) = match shape {
                0 => {
                    let [a, b]: [_; 2] = src.broadcast(2, cap, back).try_into().unwrap();
                    let pairs = a.zip(b).map(|(x, y)| x * 10_000 + y).boxed();
                    (pairs, (0..3_000).map(|i| i * 10_001).collect())
                }
                1 => {
                    let [a, b]: [_; 2] = src
                        .boundary(cap)
                        .broadcast(2, cap, back)
                        .try_into()
                        .unwrap();
                    let pairs = a
                        .boundary(cap)
                        .zip(b.buffer(cap, back))
                        .map(|(x, y)| x * 10_000 + y);
                    (pairs.boxed(), (0..3_000).map(|i| i * 10_001).collect())
                }
                2 => {
                    let workers = src
                        .boundary(cap)
                        .balance(3, cap)
                        .into_iter()
                        .map(|w| w.boundary(cap));
                    (producer::merge_all(workers).boxed(), (0..3_000).collect())
                }
                _ => {
                    let [a, b, c]: [_; 3] = src
                        .partition(3, cap, |x| (x % 3) as usize)
                        .try_into()
                        .unwrap();
                    let sums = a.zip(b).zip(c).map(|((x, y), z)| x + y + z).boxed();
                    (sums, (0..1_000).map(|i| 9 * i + 3).collect())
                }
            };
            let (mut items, report) = pipeline
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            if shape == 2 {
                items.sort_unstable();
            }
            assert_eq!(items, expected, "capacity {cap}, shape {shape}");
            assert_completed(&report);
        }
    });
}

on_all_runtimes!(
    tiny_queues_around_fan_out_and_fan_in_complete_exactly,
    a_zip_cutting_off_a_busy_side_completes_with_nothing_in_flight,
    aborting_every_run_of_a_fan_out_drops_its_upstream,
    aborting_a_spawned_fan_out_run,
    dropping_the_run_future_stops_every_task,
    a_stalled_consumer_bounds_what_upstream_makes,
    aborting_one_balance_worker_s_run_loses_nothing_for_the_other,
    shutting_down_a_spawned_run_delivers_everything_made,
);
