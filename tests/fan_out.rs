//! Fan-out: `broadcast`, `balance`, `partition`.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline::stage::{Overflow, Overflowed};
use flowline::{producer, PipelineError, StageKind};
use futures::future::{self, Either};
use support::{DropCounter, Rt};

fn broadcast_delivers_every_item_to_every_branch(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = producer::iter(0..5_000u64)
            .map(|x| x + 1)
            .boundary(8)
            .broadcast(3, 4, Overflow::Backpressure);
        assert_eq!(branches.len(), 3);
        let runs = branches.into_iter().enumerate().map(|(i, b)| {
            b.map(move |x| x * (i as u64 + 1))
                .on_runtime(env.runtime.clone())
                .run_collect()
        });
        let results = future::join_all(runs).await;
        for (i, result) in results.into_iter().enumerate() {
            let (out, report) = result.unwrap();
            let expected: Vec<u64> = (1..=5_000u64).map(|x| x * (i as u64 + 1)).collect();
            assert_eq!(out, expected, "branch {i}");
            let stage = report.stage(&format!("broadcast#3.{i}")).unwrap();
            assert_eq!(stage.kind, StageKind::FanOut);
            assert_eq!(
                (stage.items_in, stage.items_out, stage.dropped),
                (5_000, 5_000, 0)
            );
            // The branch's report starts with the shared upstream.
            assert_eq!(report.stages[0].kind, StageKind::Source);
            assert_eq!(report.stages[0].items_out, 5_000);
            assert_eq!(report.stages[2].kind, StageKind::Boundary);
            assert_eq!(report.delivered(), 5_000);
        }
    });
}

fn broadcast_slow_branch_with_drop_policy_does_not_stall_the_fast_one(rt: Rt) {
    rt.block_on(|env| async move {
        let [fast, slow]: [_; 2] = producer::iter(0..300u32)
            .broadcast_with([(8, Overflow::Backpressure), (8, Overflow::DropNewest)])
            .try_into()
            .unwrap();
        let start = env.now();
        let fast = async {
            let result = fast.on_runtime(env.runtime.clone()).run_collect().await;
            (result, env.now() - start)
        };
        let sleeper = env.clone();
        let mut slow_got = Vec::new();
        let slow = async {
            let result = slow
                .on_runtime(env.runtime.clone())
                .run_for_each(|x| {
                    slow_got.push(x);
                    let sleeper = sleeper.clone();
                    async move { sleeper.sleep(Duration::from_millis(20)).await }
                })
                .await;
            (result, env.now() - start)
        };
        let ((fast, fast_took), (slow, slow_took)) = future::join(fast, slow).await;
        let (fast_out, _) = fast.unwrap();
        assert_eq!(
            fast_out,
            (0..300).collect::<Vec<_>>(),
            "the fast branch gets everything"
        );
        let slow_report = slow.unwrap();
        let stage = slow_report.stage("broadcast#1.1").unwrap();
        assert_eq!(slow_got.len() as u64 + stage.dropped, 300, "no silent loss");
        assert!(stage.dropped > 0);
        assert!(slow_got.windows(2).all(|w| w[0] < w[1]));
        if env.is_virtual() {
            // The fast branch never waits for the slow one's 20 ms per item.
            assert_eq!(fast_took, Duration::ZERO, "slow branch took {slow_took:?}");
            assert!(slow_took >= Duration::from_millis(20) * slow_got.len() as u32);
        }
    });
}

fn broadcast_fail_policy_fails_only_the_lagging_branch(rt: Rt) {
    rt.block_on(|env| async move {
        let [fast, slow]: [_; 2] = producer::iter(0..200u32)
            .broadcast_with([(4, Overflow::Backpressure), (4, Overflow::Fail)])
            .try_into()
            .unwrap();
        let sleeper = env.clone();
        let (fast, slow) = future::join(
            fast.on_runtime(env.runtime.clone()).run_collect(),
            slow.on_runtime(env.runtime.clone()).run_for_each(|_| {
                let sleeper = sleeper.clone();
                async move { sleeper.sleep(Duration::from_millis(20)).await }
            }),
        )
        .await;
        assert_eq!(fast.unwrap().0, (0..200).collect::<Vec<_>>());
        match slow.unwrap_err() {
            PipelineError::Failed { stage, source, .. } => {
                assert_eq!(stage, "broadcast#1.1");
                assert!(source.downcast_ref::<Overflowed>().is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn a_dropped_branch_stops_receiving_and_the_others_go_on(rt: Rt) {
    rt.block_on(|env| async move {
        let mut branches = producer::iter(0..1_000u32).broadcast(2, 2, Overflow::Backpressure);
        drop(branches.pop());
        let (out, _) = branches
            .pop()
            .unwrap()
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..1_000).collect::<Vec<_>>());
    });
}

fn upstream_panic_fails_every_branch(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = producer::iter(0..100u32)
            .map(|x| if x == 10 { panic!("bad {x}") } else { x })
            .named("mapper")
            .broadcast(2, 4, Overflow::DropOldest);
        let runs = branches
            .into_iter()
            .map(|b| b.on_runtime(env.runtime.clone()).run_collect());
        for result in future::join_all(runs).await {
            match result.unwrap_err() {
                PipelineError::Panicked { stage, message, .. } => {
                    assert_eq!(stage, "mapper");
                    assert_eq!(message, "bad 10");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
}

/// `balance` pumps its upstream as a boundary does: whole batches through
/// the stages before it (an `inspect` then a `filter_map` see a run of
/// items each; item by item they would alternate), every item to exactly
/// one worker, and every stage balances.
fn balance_pumps_its_upstream_a_batch_at_a_time(rt: Rt) {
    rt.block_on(|env| async move {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (log.clone(), log.clone());
        let workers = producer::iter(0..10_000u64)
            .inspect(move |_| a.lock().unwrap().push('a'))
            .filter_map(move |x| {
                b.lock().unwrap().push('b');
                (x % 3 != 0).then_some(x * 2)
            })
            .balance(2, 1024);
        let runs = workers.into_iter().map(|w| {
            w.on_runtime(env.runtime.clone())
                .run_fold(Vec::new(), |mut got, x| {
                    got.push(x);
                    got
                })
        });
        let mut all = Vec::new();
        for result in future::join_all(runs).await {
            let (got, report) = result.unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "a worker's order");
            assert!(report.stages.iter().all(|s| s.is_balanced()), "{report}");
            assert_eq!(report.in_flight(), 0, "{report}");
            all.extend(got);
        }
        all.sort_unstable();
        let expected: Vec<u64> = (0..10_000).filter(|x| x % 3 != 0).map(|x| x * 2).collect();
        assert_eq!(all, expected, "every item exactly once");
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 20_000);
        let longest_run = log
            .chunk_by(|x, y| x == y)
            .map(<[char]>::len)
            .max()
            .unwrap();
        assert!(longest_run > 1, "item by item: {longest_run}");
    });
}

/// An upstream that never waits (busy for 2 ms per item) must not hold
/// its items back from a waiting branch, whichever fan-out feeds it (and,
/// without a runtime, the branch's consumer runs only when the fan-out task
/// yields). Checked by order: how many items upstream had made when the
/// first one arrived (all 30: held back to the end).
fn fan_outs_hand_over_items_of_a_cpu_bound_upstream_promptly(rt: Rt) {
    for fan_out in ["broadcast", "balance", "partition"] {
        rt.block_on(|env| async move {
            let made = Arc::new(AtomicUsize::new(0));
            let upstream = support::cpu_bound(30, made.clone());
            let mut branches = match fan_out {
                "broadcast" => upstream.broadcast(1, 1024, Overflow::Backpressure),
                "balance" => upstream.balance(1, 1024),
                _ => upstream.partition(1, 1024, |_| 0),
            };
            let branch = branches.pop().unwrap();
            support::assert_not_held_back(branch, env.runtime.clone(), &made, 30, fan_out).await;
        });
    }
}

fn balance_hands_every_item_to_exactly_one_worker(rt: Rt) {
    rt.block_on(|env| async move {
        let workers = producer::iter(0..3_000u32).balance(3, 16);
        let runs = workers.into_iter().enumerate().map(|(i, w)| {
            let sleeper = env.clone();
            let mut got = Vec::new();
            let run = w.on_runtime(env.runtime.clone());
            async move {
                let report = run
                    .run_for_each(|x| {
                        got.push(x);
                        let sleeper = sleeper.clone();
                        // Worker 0 is slow now and then.
                        async move {
                            if i == 0 && x % 100 == 0 {
                                sleeper.sleep(Duration::from_millis(2)).await;
                            }
                        }
                    })
                    .await
                    .unwrap();
                (got, report)
            }
        });
        let results = future::join_all(runs).await;
        let mut all = Vec::new();
        let mut taken = 0;
        for (i, (got, report)) in results.into_iter().enumerate() {
            assert!(got.windows(2).all(|w| w[0] < w[1]), "worker {i} order");
            let stage = report.stage(&format!("balance#1.{i}")).unwrap();
            assert_eq!(stage.items_out, got.len() as u64);
            // A balance branch's input is what it took from the shared queue.
            assert_eq!(stage.items_in, got.len() as u64);
            taken += stage.items_out;
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..3_000).collect::<Vec<_>>(),
            "every item exactly once"
        );
        assert_eq!(taken, 3_000);
    });
}

fn partition_routes_each_item_by_key(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = producer::iter(0..2_000u64)
            .boundary(32)
            .partition(4, 8, |x| (*x * 7) as usize);
        let runs = branches
            .into_iter()
            .map(|b| b.on_runtime(env.runtime.clone()).run_collect());
        for (i, result) in future::join_all(runs).await.into_iter().enumerate() {
            let (out, report) = result.unwrap();
            let expected: Vec<u64> = (0..2_000u64)
                .filter(|x| (x * 7) as usize % 4 == i)
                .collect();
            assert_eq!(out, expected, "branch {i}");
            let stage = report.stage(&format!("partition#2.{i}")).unwrap();
            assert_eq!((stage.items_out, stage.dropped), (expected.len() as u64, 0));
        }
    });
}

fn partition_counts_items_for_a_dropped_branch(rt: Rt) {
    rt.block_on(|env| async move {
        let mut branches = producer::iter(0..100u32).partition(2, 4, |x| *x as usize);
        let _odd_dropped = branches.pop();
        drop(_odd_dropped);
        let (even, report) = branches
            .pop()
            .unwrap()
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(even, (0..100).step_by(2).collect::<Vec<_>>());
        assert_eq!(report.stage("partition#1.0").unwrap().items_out, 50);
    });
}

fn dropping_every_branch_cancels_the_upstream(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let produced = Arc::new(AtomicU64::new(0));
        let (l, p) = (live.clone(), produced.clone());
        let [a, b]: [_; 2] = producer::generator(move |out| async move {
            let _guard = DropCounter::new(&l);
            for i in 0u64.. {
                p.fetch_add(1, SeqCst);
                out.emit(i).await;
            }
        })
        .boundary(4)
        .broadcast(2, 4, Overflow::DropOldest)
        .try_into()
        .unwrap();
        let runs = future::join(
            a.on_runtime(env.runtime.clone()).run_for_each(|_| async {}),
            b.on_runtime(env.runtime.clone()).run_count(),
        );
        let winner = future::select(
            Box::pin(runs),
            Box::pin(env.sleep(Duration::from_millis(50))),
        )
        .await;
        assert!(
            matches!(winner, Either::Right(_)),
            "an endless pipeline cannot finish"
        );
        drop(winner);

        assert!(
            env.eventually(Duration::from_secs(5), || live.load(SeqCst) == 0)
                .await,
            "the upstream generator is still alive"
        );
        let stopped_at = produced.load(SeqCst);
        assert!(stopped_at > 0, "the producer never ran");
        env.sleep(Duration::from_millis(30)).await;
        assert_eq!(
            produced.load(SeqCst),
            stopped_at,
            "the producer kept running"
        );
    });
}

#[test]
#[should_panic(expected = "flowline: broadcast needs at least 1 branch, got 0")]
fn zero_branches_are_rejected() {
    let _ = producer::iter(0..1).broadcast(0, 1, Overflow::Backpressure);
}

#[test]
#[should_panic(expected = "flowline: balance capacity must be at least 1, got 0")]
fn zero_capacity_is_rejected() {
    let _ = producer::iter(0..1).balance(2, 0);
}

/// Two branches of one partition read in lockstep (`zip`): the first item
/// goes to one branch, then ten to the other (more than its queue of 8), then
/// ten more to the first. The zip holds the second branch's first batch
/// while it waits for the first branch: the partition must go on as soon as
/// that made room, and the first branch's item must not stay batched up
/// while the partition waits.
fn zip_of_partition_branches_needs_no_more_than_the_queues(rt: Rt) {
    rt.block_on(|env| async move {
        let route = |x: &u32| usize::from(*x == 0 || *x > 10);
        let [a, b]: [_; 2] = producer::iter(0..=20u32)
            .partition(2, 8, route)
            .try_into()
            .unwrap();
        let (pairs, _) = a
            .zip(b)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let b_items = std::iter::once(0).chain(11..=20);
        let want: Vec<(u32, u32)> = (1..=10).zip(b_items).collect();
        assert_eq!(pairs, want);
    });
}

/// A branch that starts reading late (its queue already holds every item,
/// queued while nobody read) takes them a batch at a time, and hands them
/// on whole: an `inspect` before a `filter_map` sees a run of items before
/// the `filter_map` sees the first of them; item by item they would
/// alternate. Its queue holds whole batches, not an item per batch (as
/// when its receiver counted as starving before it first polled).
fn a_late_branch_catches_up_a_batch_at_a_time(rt: Rt) {
    rt.block_on(|env| async move {
        let log = Arc::new(Mutex::new(Vec::new()));
        let [early, late]: [_; 2] = producer::iter(0..256u64)
            .broadcast(2, 1024, Overflow::Backpressure)
            .try_into()
            .unwrap();
        let early = early.on_runtime(env.runtime.clone()).run_collect();
        let (a, b) = (log.clone(), log.clone());
        let late = late
            .inspect(move |_| a.lock().unwrap().push('a'))
            .filter_map(move |x| {
                b.lock().unwrap().push('b');
                (x % 2 == 0).then_some(x)
            })
            .on_runtime(env.runtime.clone())
            .run_collect();
        let sleeper = env.clone();
        let late = async move {
            // Starts once its queue holds every item.
            sleeper.sleep(Duration::from_millis(50)).await;
            late.await
        };
        let (early, late) = future::join(early, late).await;
        assert_eq!(early.unwrap().0, (0..256).collect::<Vec<u64>>());
        let (out, report) = late.unwrap();
        assert_eq!(out, (0..256).step_by(2).collect::<Vec<u64>>());
        assert_eq!(report.in_flight(), 0, "{report}");
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 512);
        // Its queue's batches are whole (256 items), not one item each:
        // more than the 64 its receiver would gather from small batches.
        let longest_run = log
            .chunk_by(|x, y| x == y)
            .map(<[char]>::len)
            .max()
            .unwrap();
        assert!(longest_run > 64, "{longest_run}: {log:?}");
    });
}

/// A panic mid-batch after a branch: the items before it are delivered, the
/// failing one counts as failed, the rest stay in flight at the branch, and
/// every stage balances.
fn a_panic_mid_batch_after_a_branch_keeps_every_count(rt: Rt) {
    rt.block_on(|env| async move {
        let [branch, other]: [_; 2] = producer::iter(0..256u64)
            .broadcast(2, 1024, Overflow::Backpressure)
            .try_into()
            .unwrap();
        drop(other);
        let p = branch
            .map(|x| if x == 100 { panic!("boom at {x}") } else { x })
            .named("mapper")
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        let err = p.run_collect().await.unwrap_err();
        assert_eq!(err.stage(), "mapper");
        let report = monitor.report();
        for s in &report.stages {
            assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
        }
        let mapper = report.stage("mapper").unwrap();
        assert_eq!(
            (mapper.items_in, mapper.items_out, mapper.failed),
            (101, 100, 1)
        );
        assert_eq!(report.delivered(), 100, "{report}");
        let branch = report.stage("broadcast#1.0").unwrap();
        assert_eq!(branch.items_out, 101, "{report}");
    });
}

on_all_runtimes!(
    a_late_branch_catches_up_a_batch_at_a_time,
    balance_pumps_its_upstream_a_batch_at_a_time,
    fan_outs_hand_over_items_of_a_cpu_bound_upstream_promptly,
    a_panic_mid_batch_after_a_branch_keeps_every_count,
    zip_of_partition_branches_needs_no_more_than_the_queues,
    broadcast_delivers_every_item_to_every_branch,
    broadcast_slow_branch_with_drop_policy_does_not_stall_the_fast_one,
    broadcast_fail_policy_fails_only_the_lagging_branch,
    a_dropped_branch_stops_receiving_and_the_others_go_on,
    upstream_panic_fails_every_branch,
    balance_hands_every_item_to_exactly_one_worker,
    partition_routes_each_item_by_key,
    partition_counts_items_for_a_dropped_branch,
    dropping_every_branch_cancels_the_upstream,
);

on_virtual_clock!(broadcast_slow_branch_with_drop_policy_does_not_stall_the_fast_one);
