//! Adversarial paths through the run contract: failures, aborts and drops
//! inside or after fan-out and fan-in, in timing and concurrent stages, in
//! buffers and local boundaries, and at batch edges. Every run must end as
//! completed (exact items, `in_flight == 0`) or as an error carrying a
//! balanced report, never closing its consumer after a failure, and with
//! every piece of user code it held dropped by the time it returns.

#[path = "support/contract.rs"]
mod contract;
mod support;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use contract::*;
use flowline::stage::Overflow;
use flowline::{producer, Pipeline, PipelineError};
use futures::Stream;
use support::{DropCounter, Rt};

/// A consumer refusing item `k` (an error from `start_send`): the run fails
/// naming the consumer, the sink got exactly `0..k` and is never flushed or
/// closed after, and every stage balances — through no boundary, a small
/// one, a big one at batch edges, and a concurrent stage.
fn a_consumer_refusing_item_k_got_exactly_the_prefix(rt: Rt) {
    rt.block_on(|env| async move {
        for k in [0u64, 1, 255, 256, 257, 1023, 1024, 1025] {
            for shape in 0..4 {
                let source = producer::iter(0..2_000u64);
                let pipeline = match shape {
                    0 => source.boxed(),
                    1 => source.boundary(4).boxed(),
                    2 => source.boundary(1024).map(|x| x).boundary(1024).boxed(),
                    _ => source.map_concurrent(8, |x| async move { x }).boxed(),
                };
                let (mut sink, seen) = recorder();
                sink.refuse = Some(k);
                let err = pipeline
                    .consumer_named("sink")
                    .on_runtime(env.runtime.clone())
                    .run(sink)
                    .await
                    .unwrap_err();
                let case = format!("k {k}, shape {shape}");
                assert!(
                    matches!(err, PipelineError::Failed { ref stage, .. } if stage == "sink"),
                    "{case}: {err:?}"
                );
                assert_eq!(seen.items(), (0..k).collect::<Vec<_>>(), "{case}");
                assert_eq!(seen.flushes_after_failure.load(SeqCst), 0, "{case}");
                assert!(!seen.closed.load(SeqCst), "{case}");
                let report = err.report();
                assert_balanced(report);
                let sink = report.stage("sink").unwrap();
                assert_eq!(
                    (sink.items_in, sink.items_out, sink.failed),
                    (k + 1, k, 1),
                    "{case}\n{report}"
                );
            }
        }
    });
}

/// Nested boundaries of capacity 1024 (`boundary`, or `boundary_local`
/// and `buffer_local`), then a `boundary_local(16)`, with a map panicking at item `k` (0, 1 and the
/// edges of their 256-item batches): the run fails naming the map, the sink
/// got a prefix of `0..k` in order and was not closed, and the map counts
/// exactly `k` out and one failed. Without the panic, every item arrives
/// once, in order.
fn nested_boundaries_fail_cleanly_at_batch_edges(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        const EDGES: [u64; 12] = [
            0,
            1,
            255,
            256,
            257,
            511,
            1023,
            1024,
            1025,
            2047,
            2999,
            u64::MAX,
        ];
        for (local, k) in EDGES.iter().flat_map(|&k| [(false, k), (true, k)]) {
            let (sink, seen) = recorder();
            let marker = seen.clone();
            let fail = move |x| if x == k { marker.boom(x) } else { x };
            let source = producer::iter(0..3_000u64);
            let pipeline = if local {
                source
                    .boundary_local(1024)
                    .map(fail)
                    .named("edge")
                    .buffer_local(1024, Overflow::Backpressure)
                    .boundary_local(16)
            } else {
                source
                    .boundary(1024)
                    .map(fail)
                    .named("edge")
                    .boundary(1024)
                    .boundary_local(16)
            };
            let result = pipeline.on_runtime(env.runtime.clone()).run(sink).await;
            let what = format!("k {k}, local {local}");
            if k == u64::MAX {
                assert_completed(&result.unwrap());
                assert_eq!(seen.items(), (0..3_000).collect::<Vec<_>>(), "{what}");
                assert!(seen.closed.load(SeqCst));
                continue;
            }
            let err = result.unwrap_err();
            assert_panicked(&err, "edge");
            seen.assert_uncommitted(&env);
            let items = seen.items();
            assert!(items.len() as u64 <= k, "{what}: {} items", items.len());
            assert_eq!(items, (0..items.len() as u64).collect::<Vec<_>>(), "{what}");
            let report = err.report();
            assert_eq!(report.delivered(), items.len() as u64, "{what}\n{report}");
            let edge = counts(report, "edge");
            assert_eq!(
                (edge.0, edge.1, edge.4, edge.5),
                (k + 1, k, 1, 0),
                "{what}\n{report}"
            );
        }
    });
}

/// A panic in one broadcast branch, merged back with its sibling: the run
/// fails naming the branch's stage, each side delivered an ordered prefix,
/// the sink was not committed, and the source's drop guard is gone.
fn a_panic_in_a_broadcast_branch_fails_the_merged_run(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for at in [0u64, 5, 99] {
            let live = Arc::new(AtomicUsize::new(0));
            let guard = DropCounter::new(&live);
            let (sink, seen) = recorder();
            let marker = seen.clone();
            let [a, b]: [_; 2] = producer::iter(0..100u64)
                .inspect(move |_| {
                    let _ = &guard;
                })
                .boundary(8)
                .broadcast(2, 4, Overflow::Backpressure)
                .try_into()
                .unwrap();
            let a = a
                .map(move |x| if x == at { marker.boom(x) } else { x })
                .named("a-map");
            let b = b.map(|x| x + 1_000).boundary(2);
            let err = a
                .merge(b)
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await
                .unwrap_err();
            assert_panicked(&err, "a-map");
            seen.assert_uncommitted(&env);
            assert_eq!(live.load(SeqCst), 0, "the source outlived the run");
            let items = seen.items();
            let (low, high): (Vec<u64>, Vec<u64>) = items.iter().partition(|&&x| x < 1_000);
            assert_eq!(low, (0..low.len() as u64).collect::<Vec<_>>(), "at {at}");
            assert!(low.len() as u64 <= at);
            assert_eq!(high, (1_000..1_000 + high.len() as u64).collect::<Vec<_>>());
            assert_eq!(err.report().delivered(), items.len() as u64);
        }
    });
}

/// `balance` into three workers merged back (`merge_all`), one of which
/// panics on item 500: the run fails naming it, nothing was committed, the
/// workers' closures are dropped when the run returns, and no item was
/// delivered twice. Without the panic every item arrives exactly once.
fn a_panic_in_a_balance_worker_fails_the_merged_run(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for fail in [true, false] {
            let live = Arc::new(AtomicUsize::new(0));
            let (sink, seen) = recorder();
            let workers = producer::iter(0..1_000u64)
                .balance(3, 4)
                .into_iter()
                .enumerate()
                .map(|(i, worker)| {
                    let (guard, marker) = (DropCounter::new(&live), seen.clone());
                    worker
                        .map(move |x| {
                            let _ = &guard;
                            if fail && x == 500 {
                                marker.boom(x)
                            }
                            x
                        })
                        .named(format!("worker-{i}"))
                        .boundary(2)
                })
                .collect::<Vec<_>>();
            let result = producer::merge_all(workers)
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await;
            assert_eq!(live.load(SeqCst), 0, "a worker's closure outlived the run");
            let mut items = seen.items();
            items.sort_unstable();
            if fail {
                let err = result.unwrap_err();
                assert!(matches!(&err, PipelineError::Panicked { stage, .. } if stage.starts_with("worker-")), "{err:?}");
                assert_balanced(err.report());
                seen.assert_uncommitted(&env);
                assert!(items.windows(2).all(|w| w[0] < w[1]), "an item came twice");
                assert!(!items.contains(&500));
                assert_eq!(err.report().delivered(), items.len() as u64);
            } else {
                let report = result.unwrap();
                assert_completed(&report);
                assert_eq!(items, (0..1_000).collect::<Vec<_>>());
                assert!(seen.closed.load(SeqCst));
            }
        }
    });
}

/// `zip` of the two `partition` branches (evens, odds), the odd side
/// panicking on 51: the run fails naming it, pairs came in order, nothing
/// was committed.
fn a_panic_in_a_zipped_partition_branch_fails_the_run(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        let (sink, seen) = recorder();
        let marker = seen.clone();
        let [evens, odds]: [_; 2] = producer::iter(0..200u64)
            .partition(2, 4, |x| (x % 2) as usize)
            .try_into()
            .unwrap();
        let odds = odds
            .map(move |x| if x == 51 { marker.boom(x) } else { x })
            .named("odd");
        let err = evens
            .zip(odds)
            .map(|(e, o)| e * 1_000 + o)
            .on_runtime(env.runtime.clone())
            .run(sink)
            .await
            .unwrap_err();
        assert_panicked(&err, "odd");
        seen.assert_uncommitted(&env);
        let items = seen.items();
        let expected: Vec<u64> = (0..items.len() as u64)
            .map(|i| 2 * i * 1_000 + 2 * i + 1)
            .collect();
        assert_eq!(items, expected);
        assert!(items.len() <= 25);
    });
}

/// `chain`: a panic in the first part stops the run before the second part
/// delivers anything; a panic in the second part comes after every item of
/// the first. Either way nothing is committed.
fn a_panic_on_either_side_of_a_chain_fails_the_run(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for first_fails in [true, false] {
            let (sink, seen) = recorder();
            let (m1, m2) = (seen.clone(), seen.clone());
            let first = producer::iter(0..100u64)
                .map(move |x| {
                    if first_fails && x == 40 {
                        m1.boom(x)
                    } else {
                        x
                    }
                })
                .named("first")
                .boundary(4);
            let second = producer::iter(100..200u64)
                .map(move |x| {
                    if !first_fails && x == 140 {
                        m2.boom(x)
                    } else {
                        x
                    }
                })
                .named("second")
                .boundary(4);
            let err = first
                .chain(second)
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await
                .unwrap_err();
            assert_panicked(&err, if first_fails { "first" } else { "second" });
            seen.assert_uncommitted(&env);
            let items = seen.items();
            assert_eq!(items, (0..items.len() as u64).collect::<Vec<_>>());
            if first_fails {
                assert!(items.len() <= 40);
            } else {
                assert!(items.len() >= 100 && items.len() <= 140, "{}", items.len());
            }
        }
    });
}

/// Which concurrent stage a test builds.
#[derive(Debug, Clone, Copy)]
enum Conc {
    Ordered,
    Unordered,
    ByKey,
}

fn concurrent<S>(
    pipeline: Pipeline<S>,
    kind: Conc,
    f: impl FnMut(u64) -> futures::future::BoxFuture<'static, u64> + Send + 'static,
) -> Pipeline<futures::stream::BoxStream<'static, u64>>
where
    S: Stream<Item = u64> + Send + 'static,
{
    match kind {
        Conc::Ordered => pipeline.map_concurrent(8, f).named("conc").boxed(),
        Conc::Unordered => pipeline
            .map_concurrent_unordered(8, f)
            .named("conc")
            .boxed(),
        Conc::ByKey => pipeline
            .map_concurrent_by_key(8, |x| x % 4, f)
            .named("conc")
            .boxed(),
    }
}

/// A future of a concurrent stage panicking on item 20, its siblings
/// holding drop guards and sleeping: the run fails naming the stage, every
/// sibling future is dropped by the time the run returns, the sink got an
/// ordered prefix (ordered kinds) or distinct items, and nothing was
/// committed.
fn a_panicking_concurrent_future_fails_the_run_and_drops_its_siblings(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for kind in [Conc::Ordered, Conc::Unordered, Conc::ByKey] {
            for boundary in [false, true] {
                let live = Arc::new(AtomicUsize::new(0));
                let (sink, seen) = recorder();
                let (counter, pause, marker) = (live.clone(), env.clone(), seen.clone());
                let f = move |x: u64| {
                    let (guard, pause, marker) =
                        (DropCounter::new(&counter), pause.clone(), marker.clone());
                    Box::pin(async move {
                        let _guard = guard;
                        if x % 3 == 0 {
                            pause.sleep(Duration::from_millis(1)).await;
                        }
                        if x == 20 {
                            marker.boom(x)
                        }
                        x
                    }) as futures::future::BoxFuture<'static, u64>
                };
                let pipeline = concurrent(producer::iter(0..200u64), kind, f);
                let pipeline = if boundary {
                    pipeline.boundary(4).boxed()
                } else {
                    pipeline
                };
                let err = pipeline
                    .on_runtime(env.runtime.clone())
                    .run(sink)
                    .await
                    .unwrap_err();
                let case = format!("{kind:?}, boundary {boundary}");
                assert_panicked(&err, "conc");
                assert_eq!(live.load(SeqCst), 0, "{case}: a future outlived the run");
                seen.assert_uncommitted(&env);
                let items = seen.items();
                match kind {
                    Conc::Unordered => {
                        let mut sorted = items.clone();
                        sorted.sort_unstable();
                        sorted.dedup();
                        assert_eq!(sorted.len(), items.len(), "{case}");
                        assert!(!items.contains(&20), "{case}");
                    }
                    _ if matches!(kind, Conc::Ordered) => {
                        assert_eq!(items, (0..items.len() as u64).collect::<Vec<_>>(), "{case}");
                    }
                    _ => assert!(!items.contains(&20), "{case}"),
                }
                let conc = err.report().stage("conc").unwrap().clone();
                assert_eq!(conc.failed, 1, "{case}\n{}", err.report());
                assert_eq!(err.report().delivered(), items.len() as u64, "{case}");
            }
        }
    });
}

/// Failures before, in and after the timing stages (batch, batch_weighted,
/// debounce, sample, throttle, then_timeout, idle_timeout), each with and
/// without a boundary after it: the run fails naming the right stage, the
/// sink got exactly what the stage let out before and was not closed, and
/// the timing stage's counts say what it held.
fn failures_around_timing_stages_keep_exact_counts(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        const HOUR: Duration = Duration::from_secs(3600);
        for boundary in [false, true] {
            for case in 0..9 {
                let (sink, seen) = recorder();
                let m = seen.clone();
                let boom_at = move |k: u64| move |x: u64| if x == k { m.boom(x) } else { x };
                let src = producer::iter(0..100u64);
                let (pipeline, failing, stage, delivered, expected) = match case {
                    0 => (
                        src.map(boom_at(13))
                            .named("m")
                            .batch(8, HOUR)
                            .named("t")
                            .map(|b| b.len() as u64)
                            .boxed(),
                        "m",
                        "t",
                        vec![8],
                        (13, 1, 7, 0, 0, 5),
                    ),
                    1 => (
                        src.batch(8, HOUR)
                            .named("t")
                            .map(|b| b[0])
                            .map(boom_at(16))
                            .named("m")
                            .boxed(),
                        "m",
                        "t",
                        vec![0, 8],
                        (24, 3, 21, 0, 0, 0),
                    ),
                    2 => (
                        src.batch_weighted(8, HOUR, {
                            let m = seen.clone();
                            move |&x: &u64| if x == 13 { m.boom(x) } else { 1 }
                        })
                        .named("t")
                        .map(|b| b.len() as u64)
                        .boxed(),
                        "t",
                        "t",
                        vec![8],
                        (14, 1, 7, 0, 1, 5),
                    ),
                    3 => (
                        src.map(boom_at(20))
                            .named("m")
                            .debounce(HOUR)
                            .named("t")
                            .boxed(),
                        "m",
                        "t",
                        vec![],
                        (20, 0, 0, 19, 0, 1),
                    ),
                    4 => (
                        src.map(boom_at(20))
                            .named("m")
                            .sample(HOUR)
                            .named("t")
                            .boxed(),
                        "m",
                        "t",
                        vec![],
                        (20, 0, 0, 19, 0, 1),
                    ),
                    5 => (
                        src.throttle(flowline::Rate::per_second(100_000), 4)
                            .named("t")
                            .map(boom_at(10))
                            .named("m")
                            .boxed(),
                        "m",
                        "t",
                        (0..10).collect(),
                        (11, 11, 0, 0, 0, 0),
                    ),
                    6 => (
                        src.then_timeout(HOUR, {
                            let f = boom_at(7);
                            move |x| {
                                let f = f.clone();
                                async move { f(x) }
                            }
                        })
                        .named("t")
                        .boxed(),
                        "t",
                        "t",
                        (0..7).collect(),
                        (8, 7, 0, 0, 1, 0),
                    ),
                    7 => (
                        src.then_timeout(Duration::from_millis(5), |x| async move {
                            if x == 5 {
                                futures::future::pending::<()>().await;
                            }
                            x
                        })
                        .named("t")
                        .boxed(),
                        "t",
                        "t",
                        (0..5).collect(),
                        (6, 5, 0, 0, 1, 0),
                    ),
                    _ => (
                        producer::generator(|out| async move {
                            for i in 0..5 {
                                out.emit(i).await;
                            }
                            futures::future::pending::<()>().await;
                        })
                        .idle_timeout(Duration::from_millis(5))
                        .named("t")
                        .boxed(),
                        "t",
                        "t",
                        (0..5).collect(),
                        (5, 5, 0, 0, 0, 0),
                    ),
                };
                let pipeline = if boundary {
                    pipeline.boundary(2).boxed()
                } else {
                    pipeline
                };
                let err = pipeline
                    .on_runtime(env.runtime.clone())
                    .run(sink)
                    .await
                    .unwrap_err();
                let what = format!("case {case}, boundary {boundary}");
                assert_eq!(err.stage(), failing, "{what}: {err:?}");
                assert!(
                    matches!(err, PipelineError::Panicked { .. }) == (case < 7),
                    "{what}: {err:?}"
                );
                assert_balanced(err.report());
                seen.assert_uncommitted(&env);
                let items = seen.items();
                if boundary {
                    assert!(delivered.starts_with(&items), "{what}: {items:?}");
                } else {
                    assert_eq!(items, delivered, "{what}");
                }
                assert_eq!(
                    counts(err.report(), stage),
                    expected,
                    "{what}\n{}",
                    err.report()
                );
            }
        }
    });
}

/// A buffer of each overflow policy with a failure before it (a map
/// panicking on item 1500) or after it (on the 300th item it hands on, the
/// 10th for a dropping buffer): the
/// run fails naming the map (or, for `Fail`, possibly the buffer), the sink
/// got increasing items (a prefix of what the later map saw) and was not
/// closed, and the buffer's drops are counted, never silent.
fn a_failure_around_a_buffer_of_each_policy(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for policy in [
            Overflow::Backpressure,
            Overflow::DropOldest,
            Overflow::DropNewest,
            Overflow::Fail,
        ] {
            for after in [false, true] {
                let (sink, seen) = recorder();
                let (m, passed) = (seen.clone(), Arc::new(Mutex::new(Vec::new())));
                let pass = passed.clone();
                // A dropping buffer hands on at least its capacity, 16.
                let nth = match policy {
                    Overflow::DropOldest | Overflow::DropNewest => 10,
                    _ => 300,
                };
                let src = producer::iter(0..2_000u64);
                let pipeline = if after {
                    src.buffer(16, policy)
                        .named("buf")
                        .map(move |x| {
                            let mut pass = pass.lock().unwrap();
                            if pass.len() == nth - 1 {
                                drop(pass);
                                m.boom(x)
                            }
                            pass.push(x);
                            x
                        })
                        .named("m")
                        .boxed()
                } else {
                    src.map(move |x| if x == 1_500 { m.boom(x) } else { x })
                        .named("m")
                        .buffer(16, policy)
                        .named("buf")
                        .boxed()
                };
                let err = pipeline
                    .on_runtime(env.runtime.clone())
                    .run(sink)
                    .await
                    .unwrap_err();
                let what = format!("{policy:?}, after {after}");
                let overflowed = matches!(policy, Overflow::Fail) && err.stage() == "buf";
                if !overflowed {
                    assert_panicked(&err, "m");
                }
                assert_balanced(err.report());
                seen.assert_uncommitted(&env);
                let items = seen.items();
                assert!(items.windows(2).all(|w| w[0] < w[1]), "{what}: {items:?}");
                assert_eq!(err.report().delivered(), items.len() as u64, "{what}");
                let buf = err.report().stage("buf").unwrap();
                if matches!(policy, Overflow::Backpressure) {
                    assert_eq!(buf.dropped, 0, "{what}");
                }
                if after {
                    let passed = passed.lock().unwrap().clone();
                    assert_eq!(items, passed, "{what}");
                    if !overflowed {
                        let m = err.report().stage("m").unwrap();
                        assert_eq!(
                            (m.items_in, m.items_out, m.failed),
                            (nth as u64, nth as u64 - 1, 1),
                            "{what}"
                        );
                    }
                } else {
                    assert!(items.iter().all(|&x| x < 1_500), "{what}");
                    if matches!(policy, Overflow::Backpressure) {
                        assert_eq!(items, (0..items.len() as u64).collect::<Vec<_>>(), "{what}");
                    }
                }
            }
        }
    });
}

/// `buffer_local(0, ..)` is rejected naming `buffer_local`, not `buffer`
/// (whose call a `!Send` pipeline could not make).
#[test]
fn buffer_local_zero_capacity_names_buffer_local() {
    quiet_panics();
    let message = rejection(|| drop(producer::iter(0..4u64).buffer_local(0, Overflow::DropOldest)));
    assert!(
        message.contains("buffer_local capacity")
            && message.contains("e.g. .buffer_local(64, Overflow::DropOldest)"),
        "{message}"
    );
}

/// The message of the panic `bad` makes.
fn rejection(bad: impl FnOnce()) -> String {
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(bad)).expect_err("must be rejected");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

/// Zero capacities and limits of the local stages are rejected at build
/// time with a message naming the method and a valid call; a closed feeder
/// hands the item back.
#[test]
fn bad_input_is_rejected_with_the_fix() {
    let four = || producer::iter(0..4u64);
    for (message, method) in [
        (
            rejection(|| drop(four().boundary_local(0))),
            "boundary_local",
        ),
        (
            rejection(|| drop(four().map_concurrent_local(0, |x| async move { x }))),
            "map_concurrent_local",
        ),
        (
            rejection(|| drop(four().map_concurrent_unordered_local(0, |x| async move { x }))),
            "map_concurrent_unordered_local",
        ),
    ] {
        assert!(
            message.contains(method) && message.contains("e.g. ."),
            "{message}"
        );
        assert!(message.contains(&format!(".{method}(")), "{message}");
    }
    let (feeder, pipeline) = flowline::bridge::feeder::<u64>(4);
    feeder.push(1).unwrap();
    assert!(feeder.close());
    assert_eq!(feeder.push(2).unwrap_err().0, 2);
    assert_eq!(feeder.try_push(3).unwrap_err().into_inner(), 3);
    let (items, report) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    assert_eq!(items, [1]);
    assert_completed(&report);
}

/// A future of `map_concurrent` panicking while the stage's own task drives
/// it, with the consumer woken at the same moment (multi-threaded tokio):
/// the run must fail, and must never close its sink. Repeated, since it is
/// a race between the consumer's next poll and the task recording the
/// panic.
#[test]
fn concurrent_task_panic_never_looks_like_the_end() {
    quiet_panics();
    let rt = Rt::Tokio.reused();
    let mut closed = 0;
    let mut ok = 0;
    for _ in 0..20_000 {
        let (c, o) = rt.block_on(|env| async move {
            let (sink, seen) = recorder();
            let result = producer::iter(0..4u64)
                .map_concurrent(4, |x| async move {
                    YieldOnce(false).await;
                    if x == 3 {
                        boom(x)
                    }
                    x
                })
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await;
            (seen.closed.load(SeqCst), result.is_ok())
        });
        closed += usize::from(c);
        ok += usize::from(o);
    }
    assert_eq!(
        (closed, ok),
        (0, 0),
        "closed sinks, Ok results out of 20,000 failed runs"
    );
}

/// Pending once (waking itself), then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A failing pipeline nested as the source of another
/// (`producer::from_stream(pipeline)`, the plain `Stream` a `Pipeline` is):
/// the outer run must not complete with the items before the failure.
#[test]
#[ignore = "known limitation, documented on producer::from_stream: a failed pipeline read as a plain Stream just ends, so from_stream(failing) runs Ok with 50 of 100 items"]
fn a_failed_pipeline_nested_as_a_source_fails_the_outer_run() {
    for rt in [Rt::Smol, Rt::Tokio, Rt::Free] {
        rt.block_on(|env| async move {
            let inner = producer::iter(0..100u64)
                .try_map(|x| if x == 50 { Err("fifty") } else { Ok(x) })
                .boundary(4)
                .on_runtime(env.runtime.clone());
            let result = producer::from_stream(inner)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await;
            if let Ok((items, _)) = result {
                panic!(
                    "{rt:?}: the outer run completed with {} of 100 items",
                    items.len()
                );
            }
        });
    }
}

on_all_runtimes!(
    a_consumer_refusing_item_k_got_exactly_the_prefix,
    nested_boundaries_fail_cleanly_at_batch_edges,
    a_panic_in_a_broadcast_branch_fails_the_merged_run,
    a_panic_in_a_balance_worker_fails_the_merged_run,
    a_panic_in_a_zipped_partition_branch_fails_the_run,
    a_panic_on_either_side_of_a_chain_fails_the_run,
    a_panicking_concurrent_future_fails_the_run_and_drops_its_siblings,
    failures_around_timing_stages_keep_exact_counts,
    a_failure_around_a_buffer_of_each_policy,
);
