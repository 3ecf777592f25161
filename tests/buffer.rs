//! `buffer(capacity, overflow)`: every policy, exact counts, no silent loss.

mod support;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use flowline::stage::{Overflow, Overflowed};
use flowline::{producer, PipelineError, StageKind};
use support::Rt;

fn backpressure_keeps_every_item_in_order(rt: Rt) {
    rt.block_on(|env| async move {
        for capacity in [1, 3, 64] {
            let (out, report) = producer::iter(0..10_000u64)
                .map(|x| x * 2)
                .buffer(capacity, Overflow::Backpressure)
                .named("buf")
                .map(|x| x + 1)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            let expected: Vec<u64> = (0..10_000u64).map(|x| x * 2 + 1).collect();
            assert_eq!(out, expected, "capacity {capacity}");
            let stage = report.stage("buf").unwrap();
            assert_eq!(stage.kind, StageKind::Buffer);
            assert_eq!(
                (stage.items_in, stage.items_out, stage.dropped),
                (10_000, 10_000, 0)
            );
        }
    });
}

/// Runs 1000 items through `buffer(8, overflow)` into a consumer that stalls
/// on its first item; returns what it got and the buffer's dropped count.
async fn through_stalled_consumer(env: &support::Env, overflow: Overflow) -> (Vec<u32>, u64) {
    let mut got = Vec::new();
    let sleeper = env.clone();
    let report = producer::iter(0..1000u32)
        .buffer(8, overflow)
        .named("buf")
        .on_runtime(env.runtime.clone())
        .run_for_each(|x| {
            let first = got.is_empty();
            got.push(x);
            let sleeper = sleeper.clone();
            async move {
                if first {
                    sleeper.sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .await
        .unwrap();
    let stage = report.stage("buf").unwrap().clone();
    assert_eq!(stage.items_in, 1000);
    assert_eq!(stage.items_out, got.len() as u64);
    assert_eq!(report.delivered(), got.len() as u64);
    (got, stage.dropped)
}

fn drop_oldest_keeps_the_latest_and_counts_the_rest(rt: Rt) {
    rt.block_on(|env| async move {
        let (got, dropped) = through_stalled_consumer(&env, Overflow::DropOldest).await;
        assert_eq!(got.len() as u64 + dropped, 1000, "no silent loss");
        assert!(dropped > 0, "a stalled consumer must cause drops");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");
        assert_eq!(*got.last().unwrap(), 999, "the newest item survives");
        assert!(
            got.len() <= 8 + 2,
            "at most the queue plus in-hand: {got:?}"
        );
    });
}

fn drop_newest_keeps_the_first_and_counts_the_rest(rt: Rt) {
    rt.block_on(|env| async move {
        let (got, dropped) = through_stalled_consumer(&env, Overflow::DropNewest).await;
        assert_eq!(got.len() as u64 + dropped, 1000, "no silent loss");
        assert!(dropped > 0, "a stalled consumer must cause drops");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");
        assert_eq!(got[0], 0);
        assert!(
            got.len() <= 8 + 2,
            "at most the queue plus in-hand: {got:?}"
        );
    });
}

fn fail_ends_the_run_naming_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let sleeper = env.clone();
        let err = producer::iter(0..1000u32)
            .buffer(4, Overflow::Fail)
            .named("strict")
            .on_runtime(env.runtime.clone())
            .run_for_each(|_| {
                let sleeper = sleeper.clone();
                async move { sleeper.sleep(Duration::from_millis(20)).await }
            })
            .await
            .unwrap_err();
        match &err {
            PipelineError::Failed { stage, source, .. } => {
                assert_eq!(stage, "strict");
                assert_eq!(
                    source.downcast_ref::<Overflowed>(),
                    Some(&Overflowed { capacity: 4 })
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "stage `strict` failed: queue of 4 items is full (Overflow::Fail)"
        );
    });
}

fn fail_does_not_trigger_when_the_consumer_keeps_up(rt: Rt) {
    rt.block_on(|env| async move {
        // A generator that waits between items never fills the queue.
        let sleeper = env.clone();
        let (out, report) = producer::generator(move |out| async move {
            for i in 0..20u32 {
                sleeper.sleep(Duration::from_millis(1)).await;
                out.emit(i).await;
            }
        })
        .buffer(16, Overflow::Fail)
        .on_runtime(env.runtime.clone())
        .run_collect()
        .await
        .unwrap();
        assert_eq!(out, (0..20).collect::<Vec<_>>());
        assert_eq!(report.stages[1].failed, 0);
    });
}

fn panic_upstream_of_a_buffer_names_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let err = producer::iter(0..100u32)
            .map(|x| if x == 50 { panic!("bad {x}") } else { x })
            .named("mapper")
            .buffer(4, Overflow::DropOldest)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "mapper");
    });
}

/// Each side of a backpressure `buffer` moves whole batches through the
/// stages that can hand them over: its upstream task and its reader (the
/// other policies pump item by item). An
/// `inspect` before a `filter_map` then sees several items before the
/// `filter_map` sees the first of them; item by item they alternate.
fn buffer_moves_whole_batches_on_both_sides(rt: Rt) {
    use std::sync::{Arc, Mutex};
    /// Whether a log of `a`s (inspect) and `b`s (filter_map) shows batches.
    fn batched(log: &[char]) -> bool {
        log.windows(4).any(|w| w == ['a'; 4])
    }
    rt.block_on(|env| async move {
        for overflow in [Overflow::Backpressure, Overflow::DropNewest] {
            let (up, down) = (
                Arc::new(Mutex::new(Vec::new())),
                Arc::new(Mutex::new(Vec::new())),
            );
            let (u1, u2, d1, d2) = (up.clone(), up.clone(), down.clone(), down.clone());
            let (out, report) = producer::iter(0..256u64)
                .inspect(move |_| u1.lock().unwrap().push('a'))
                .filter_map(move |x| {
                    u2.lock().unwrap().push('b');
                    Some(x)
                })
                .buffer(1024, overflow)
                .named("buf")
                .inspect(move |_| d1.lock().unwrap().push('a'))
                .filter_map(move |x| {
                    d2.lock().unwrap().push('b');
                    (x % 2 == 0).then_some(x)
                })
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out, (0..256).step_by(2).collect::<Vec<u64>>());
            let stage = report.stage("buf").unwrap();
            assert_eq!(
                (stage.items_in, stage.items_out, stage.dropped),
                (256, 256, 0)
            );
            let (up, down) = (up.lock().unwrap(), down.lock().unwrap());
            assert_eq!((up.len(), down.len()), (512, 512));
            let backpressure = overflow == Overflow::Backpressure;
            assert_eq!(batched(&up), backpressure, "{overflow:?} upstream: {up:?}");
            if backpressure {
                // (Behind a per-item pump a waiting reader may get each
                // item in a batch of its own.)
                assert!(batched(&down), "downstream: {down:?}");
            }
        }
    });
}

/// Whatever the policy, a waiting consumer gets a CPU-bound upstream's items
/// while upstream is still busy (without a runtime the consumer runs only
/// when the buffer's task yields). Checked by order, not time.
fn a_buffer_hands_over_items_of_a_cpu_bound_upstream_promptly(rt: Rt) {
    for overflow in [
        Overflow::Backpressure,
        Overflow::DropOldest,
        Overflow::DropNewest,
        Overflow::Fail,
    ] {
        rt.block_on(|env| async move {
            let made = Arc::new(AtomicUsize::new(0));
            let pipeline = support::cpu_bound(30, made.clone()).buffer(1024, overflow);
            let what = format!("{overflow:?}");
            let report =
                support::assert_not_held_back(pipeline, env.runtime.clone(), &made, 30, &what)
                    .await;
            assert_eq!(report.stage("buffer#2").unwrap().dropped, 0, "{what}");
        });
    }
}

#[test]
#[should_panic(expected = "flowline: buffer capacity must be at least 1, got 0")]
fn zero_capacity_is_rejected() {
    let _ = producer::iter(0..1).buffer(0, Overflow::Backpressure);
}

on_all_runtimes!(
    backpressure_keeps_every_item_in_order,
    drop_oldest_keeps_the_latest_and_counts_the_rest,
    drop_newest_keeps_the_first_and_counts_the_rest,
    fail_ends_the_run_naming_the_stage,
    fail_does_not_trigger_when_the_consumer_keeps_up,
    panic_upstream_of_a_buffer_names_the_stage,
    buffer_moves_whole_batches_on_both_sides,
    a_buffer_hands_over_items_of_a_cpu_bound_upstream_promptly,
);
