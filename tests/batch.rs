//! Batching: `batch` and `batch_weighted`.

mod support;

use std::time::Duration;

use flowline::{producer, StageKind};
use support::Rt;

fn full_batches_in_order_with_a_short_tail(rt: Rt) {
    rt.block_on(|env| async move {
        let (batches, report) = producer::iter(0..10_007u32)
            .batch(100, Duration::from_secs(60))
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(batches.len(), 101);
        assert!(batches[..100].iter().all(|b| b.len() == 100));
        assert_eq!(batches[100].len(), 7);
        let flat: Vec<u32> = batches.into_iter().flatten().collect();
        assert_eq!(flat, (0..10_007).collect::<Vec<_>>());
        let stage = &report.stages[1];
        assert_eq!(stage.kind, StageKind::Batch);
        assert_eq!((stage.items_in, stage.items_out), (10_007, 101));
    });
}

fn empty_input_gives_no_batch(rt: Rt) {
    rt.block_on(|env| async move {
        let (batches, _) = producer::iter(Vec::<u8>::new())
            .batch(4, Duration::from_millis(1))
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert!(batches.is_empty());
    });
}

/// A trickle: one item every 30 ms, batches of up to 100 or 10 ms. Every
/// batch is emitted by the timer long before it fills.
fn timer_emits_partial_batches(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let trickle = producer::generator(move |out| async move {
            for i in 0..5u32 {
                out.emit(i).await;
                env2.sleep(Duration::from_millis(30)).await;
            }
        });
        let clock = env.clock();
        let start = clock.now();
        let (batches, _) = trickle
            .batch(100, Duration::from_millis(10))
            .map(move |b| (b, clock.now() - start))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let items: Vec<u32> = batches.iter().flat_map(|(b, _)| b.clone()).collect();
        assert_eq!(items, [0, 1, 2, 3, 4]);
        // 5 items 30 ms apart cannot share a 10 ms batch unless the machine
        // stalls badly; allow that on real timers.
        assert!(batches.len() >= 3, "{batches:?}");
        if env.is_virtual() {
            // Each item alone, 10 ms after it arrived.
            let ms = Duration::from_millis;
            assert_eq!(
                batches,
                [
                    (vec![0], ms(10)),
                    (vec![1], ms(40)),
                    (vec![2], ms(70)),
                    (vec![3], ms(100)),
                    (vec![4], ms(130)),
                ]
            );
        }
    });
}

/// The Reactor `bufferTimeout` case: the timer fires while downstream is
/// busy. Nothing is lost or duplicated, batches never exceed the limit, and
/// the pending batch keeps filling up to the limit.
fn slow_downstream_loses_nothing(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let fast = producer::generator(move |out| async move {
            for i in 0..600u32 {
                out.emit(i).await;
                if i % 50 == 0 {
                    env2.sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let mut seen = Vec::new();
        let env3 = env.clone();
        let report = fast
            .batch(64, Duration::from_millis(2))
            .on_runtime(env.runtime.clone())
            .run_for_each(|b| {
                assert!(!b.is_empty() && b.len() <= 64, "batch of {}", b.len());
                seen.push(b);
                let env = env3.clone();
                async move { env.sleep(Duration::from_millis(20)).await }
            })
            .await
            .unwrap();
        let flat: Vec<u32> = seen.iter().flatten().copied().collect();
        assert_eq!(flat, (0..600).collect::<Vec<_>>());
        assert_eq!(report.delivered(), seen.len() as u64);
        // Timers expired during the 20 ms waits, yet most batches are full:
        // the pending batch kept filling instead of going out small.
        let full = seen.iter().filter(|b| b.len() == 64).count();
        assert!(full >= 6, "only {full} full batches of {}", seen.len());
    });
}

fn weighted_batches_respect_weight(rt: Rt) {
    rt.block_on(|env| async move {
        let sizes: Vec<usize> = (0..500).map(|i| (i * 37) % 300 + 1).collect();
        let input = sizes.clone();
        let (batches, report) = producer::iter(input)
            .batch_weighted(1000, Duration::from_secs(60), |n: &usize| *n)
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        for b in &batches {
            let w: usize = b.iter().sum();
            assert!(w <= 1000, "batch weighs {w}");
            assert!(!b.is_empty());
        }
        // Greedy: a batch is only cut when the next item would not fit.
        for pair in batches.windows(2) {
            let w: usize = pair[0].iter().sum();
            assert!(w + pair[1][0] > 1000, "cut too early at {w}");
        }
        let flat: Vec<usize> = batches.iter().flatten().copied().collect();
        assert_eq!(flat, sizes);
        assert_eq!(report.stages[1].items_out, batches.len() as u64);
    });
}

fn weighted_oversized_item_goes_alone(rt: Rt) {
    rt.block_on(|env| async move {
        let (batches, _) = producer::iter(vec![3usize, 50, 2, 2, 9, 1])
            .batch_weighted(8, Duration::from_secs(60), |n: &usize| *n)
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(batches, [vec![3], vec![50], vec![2, 2], vec![9], vec![1]]);
    });
}

fn panicking_weight_names_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let result = producer::iter(0..10usize)
            .batch_weighted(5, Duration::from_secs(1), |n: &usize| {
                if *n == 6 {
                    panic!("cannot weigh {n}")
                }
                1
            })
            .named("by size")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        let err = result.unwrap_err();
        assert_eq!(err.stage(), "by size");
    });
}

#[test]
#[should_panic(expected = "batch max_items must be at least 1, got 0")]
fn zero_items_panics() {
    let _ = producer::iter(0..1).batch(0, Duration::from_millis(1));
}

#[test]
#[should_panic(expected = "batch_weighted max_weight must be at least 1, got 0")]
fn zero_weight_panics() {
    let _ = producer::iter(0..1usize).batch_weighted(0, Duration::from_millis(1), |n| *n);
}

/// `Duration::MAX` means no time limit: a slow upstream's partial batch
/// waits for more (or the end) instead of overflowing the clock.
fn batch_without_a_time_limit(rt: Rt) {
    rt.block_on(|env| async move {
        let pause = env.clone();
        let slow = flowline::producer::generator(move |out| async move {
            for i in 0..5u32 {
                pause.sleep(std::time::Duration::from_millis(2)).await;
                out.emit(i).await;
            }
        });
        let (batches, report) = slow
            .batch(3, std::time::Duration::MAX)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(batches, [vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(report.in_flight(), 0);
    });
}

on_all_clocks!(
    batch_without_a_time_limit,
    full_batches_in_order_with_a_short_tail,
    empty_input_gives_no_batch,
    timer_emits_partial_batches,
    slow_downstream_loses_nothing,
    weighted_batches_respect_weight,
    weighted_oversized_item_goes_alone,
    panicking_weight_names_the_stage,
);
