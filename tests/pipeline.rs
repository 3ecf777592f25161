//! The foundation: fused stages, boundaries, generators, errors, cancellation.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use flowline::{consumer, producer, PipelineError, StageKind};
use futures::future::{self, Either};
use support::{DropCounter, Rt};

fn fused_stages_keep_items_and_order(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::iter(1..=20u32)
            .map(|x| x * 3)
            .filter(|x| x % 2 == 0)
            .filter_map(|x| (x != 12).then_some(x))
            .then(|x| async move { x + 1 })
            .inspect(|_| {})
            .on_runtime(env.runtime)
            .collect()
            .await
            .unwrap();
        let expected: Vec<u32> = (1..=20u32)
            .map(|x| x * 3)
            .filter(|x| x % 2 == 0 && *x != 12)
            .map(|x| x + 1)
            .collect();
        assert_eq!(out, expected);
        let counts: Vec<(u64, u64)> = report
            .stages
            .iter()
            .map(|s| (s.items_in, s.items_out))
            .collect();
        assert_eq!(
            counts,
            [
                (20, 20),
                (20, 20),
                (20, 10),
                (10, 9),
                (9, 9),
                (9, 9),
                (9, 9)
            ]
        );
        assert_eq!(report.stages[0].kind, StageKind::Source);
        assert_eq!(report.stages.last().unwrap().kind, StageKind::Consumer);
    });
}

fn boundaries_keep_items_and_order(rt: Rt) {
    rt.block_on(|env| async move {
        for capacity in [1, 2, 7, 64, 1024] {
            let (out, report) = producer::iter(0..10_000u64)
                .map(|x| x + 1)
                .boundary(capacity)
                .map(|x| x * 2)
                .boundary(capacity)
                .filter(|x| x % 3 != 0)
                .on_runtime(env.runtime.clone())
                .collect()
                .await
                .unwrap();
            let expected: Vec<u64> = (1..=10_000u64)
                .map(|x| x * 2)
                .filter(|x| x % 3 != 0)
                .collect();
            assert_eq!(out, expected, "capacity {capacity}");
            assert_eq!(report.delivered(), expected.len() as u64);
            let boundaries: Vec<_> = report
                .stages
                .iter()
                .filter(|s| s.kind == StageKind::Boundary)
                .map(|s| (s.items_in, s.items_out))
                .collect();
            assert_eq!(boundaries, [(10_000, 10_000), (10_000, 10_000)]);
        }
    });
}

fn generator_yields_in_order_with_awaits(rt: Rt) {
    rt.block_on(|env| async move {
        let sleeper = env.clone();
        let (out, _) = producer::generator(move |out| async move {
            for i in 0..=5u32 {
                sleeper.sleep(Duration::from_millis(2)).await;
                out.emit(i).await;
            }
        })
        .boundary(2)
        .on_runtime(env.runtime.clone())
        .collect()
        .await
        .unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 5]);
    });
}

fn boundary_bounds_producer_ahead_of_stalled_consumer(rt: Rt) {
    const CAPACITY: usize = 16;
    const BATCH: u64 = 4; // max(1, 16 / 4)
    rt.block_on(|env| async move {
        let produced = Arc::new(AtomicU64::new(0));
        let consumed = Arc::new(AtomicU64::new(0));
        let ahead_while_stalled = Arc::new(AtomicU64::new(u64::MAX));
        let p = produced.clone();
        let (c, a, sleeper) = (consumed.clone(), ahead_while_stalled.clone(), env.clone());
        let report = producer::iter(0..1_000u64)
            .inspect(move |_| {
                p.fetch_add(1, SeqCst);
            })
            .boundary(CAPACITY)
            .on_runtime(env.runtime.clone())
            .for_each(|_| {
                let n = c.fetch_add(1, SeqCst) + 1;
                let (produced, a, sleeper) = (produced.clone(), a.clone(), sleeper.clone());
                async move {
                    if n == 10 {
                        // Stall: upstream fills the queue and must stop.
                        sleeper.sleep(Duration::from_millis(200)).await;
                        a.store(produced.load(SeqCst) - n, SeqCst);
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(report.delivered(), 1_000);
        assert_eq!(consumed.load(SeqCst), 1_000);
        let ahead = ahead_while_stalled.load(SeqCst);
        assert!(
            ahead <= CAPACITY as u64 + BATCH,
            "producer ran {ahead} items ahead; bound is {}",
            CAPACITY as u64 + BATCH
        );
        assert!(
            ahead >= CAPACITY as u64 / 2,
            "producer should run ahead while the consumer stalls, got {ahead}"
        );
    });
}

fn dropping_a_running_pipeline_stops_producer_and_tasks(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let produced = Arc::new(AtomicU64::new(0));
        let (l, p) = (live.clone(), produced.clone());
        let consumer_guards = live.clone();
        let run = producer::generator(move |out| async move {
            let _guard = DropCounter::new(&l);
            for i in 0u64.. {
                p.fetch_add(1, SeqCst);
                out.emit(i).await;
            }
        })
        .map(|x| x + 1)
        .boundary(8)
        .map(move |x| (x, DropCounter::new(&consumer_guards)))
        .boundary(8)
        .on_runtime(env.runtime.clone())
        .for_each(|_| async {});
        let winner = future::select(
            Box::pin(run),
            Box::pin(env.sleep(Duration::from_millis(50))),
        )
        .await;
        assert!(
            matches!(winner, Either::Right(_)),
            "an endless pipeline cannot finish"
        );
        drop(winner); // `select` hands the unfinished run back: drop it
                      // The run future is dropped now: every task must stop and release
                      // its state (the generator's guard and the items in flight).
        assert!(
            env.eventually(Duration::from_secs(5), || live.load(SeqCst) == 0)
                .await,
            "{} guards still alive after drop",
            live.load(SeqCst)
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

fn panicking_map_names_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        // Fused, in the consuming task.
        let err = producer::iter(0..10u32)
            .map(|x| if x == 4 { panic!("cannot map {x}") } else { x })
            .named("mapper")
            .on_runtime(env.runtime.clone())
            .collect()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PipelineError::Panicked { stage, message, .. } if stage == "mapper" && message == "cannot map 4"),
            "{err}"
        );
        // Upstream of a boundary, in a task of its own.
        let err = producer::iter(0..10u32)
            .map(|x| x + 1)
            .map(|x| if x == 7 { panic!("boom at {x}") } else { x })
            .named("exploder")
            .boundary(4)
            .map(|x| x * 2)
            .on_runtime(env.runtime.clone())
            .count()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "exploder");
        assert_eq!(err.to_string(), "stage `exploder` panicked: boom at 7");
        // In the consumer.
        let err = producer::iter(0..3u32)
            .on_runtime(env.runtime.clone())
            .for_each(|x| async move { assert!(x < 2, "consumer refuses {x}") })
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "consumer#1");
    });
}

fn failing_consumer_is_a_stage_error(rt: Rt) {
    rt.block_on(|env| async move {
        let err = producer::iter(0..10u32)
            .boundary(2)
            .on_runtime(env.runtime.clone())
            .run(consumer::from_fn(|x: u32| async move {
                if x == 5 {
                    Err(std::io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            }))
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "consumer#2");
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "disk full"
        );
    });
}

fn boundary_hands_over_items_of_a_cpu_bound_upstream_promptly(rt: Rt) {
    // An upstream that never waits (busy for 2 ms per item) would fill a
    // whole batch (256 items here) before sending anything; a starving
    // downstream must get the first items long before the last.
    rt.block_on(|env| async move {
        let start = std::time::Instant::now();
        let mut arrivals = Vec::new();
        producer::iter(0..30u32)
            .map(|x| {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_millis(2) {}
                x
            })
            .boundary(1024)
            .on_runtime(env.runtime.clone())
            .for_each(|_| {
                arrivals.push(start.elapsed());
                async {}
            })
            .await
            .unwrap();
        assert_eq!(arrivals.len(), 30);
        let (first, last) = (arrivals[0], arrivals[29]);
        assert!(
            first * 2 < last,
            "first item after {first:?}, last after {last:?}: items were held back: {arrivals:?}"
        );
    });
}

on_all_runtimes!(
    boundary_hands_over_items_of_a_cpu_bound_upstream_promptly,
    fused_stages_keep_items_and_order,
    boundaries_keep_items_and_order,
    generator_yields_in_order_with_awaits,
    boundary_bounds_producer_ahead_of_stalled_consumer,
    dropping_a_running_pipeline_stops_producer_and_tasks,
    panicking_map_names_the_stage,
    failing_consumer_is_a_stage_error,
);

#[test]
#[should_panic(expected = "boundary capacity must be at least 1, got 0")]
fn zero_capacity_is_rejected_with_a_clear_message() {
    let _ = producer::iter(0..1).boundary(0);
}
