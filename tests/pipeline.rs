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
            .run_collect()
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
                .run_collect()
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
        .run_collect()
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
            .run_for_each(|_| {
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
        .run_for_each(|_| async {});
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
            .run_collect()
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
            .run_count()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "exploder");
        assert_eq!(err.to_string(), "stage `exploder` panicked: boom at 7");
        // In the consumer.
        let err = producer::iter(0..3u32)
            .on_runtime(env.runtime.clone())
            .run_for_each(|x| async move { assert!(x < 2, "consumer refuses {x}") })
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
    // downstream must get the first items while upstream is still busy.
    // Checked by order, not by time: how many items upstream had made when
    // the first one arrived (all 30 means it was held back to the end).
    rt.block_on(|env| async move {
        let made = Arc::new(AtomicUsize::new(0));
        let pipeline = support::cpu_bound(30, made.clone()).boundary(1024);
        support::assert_not_held_back(pipeline, env.runtime.clone(), &made, 30, "boundary").await;
    });
}

/// An `emit` polled once (its item parked) and then dropped does not send
/// its item, and a body that returns right after it ends the stream instead
/// of being resumed after completion (which panicked).
fn generator_ends_cleanly_after_an_emit_dropped_while_parked(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::generator(|out| async move {
            let mut first = out.emit(1u32);
            assert!(futures::poll!(&mut first).is_pending());
            drop(first);
            out.emit(2).await;
            let mut last = out.emit(3);
            assert!(futures::poll!(&mut last).is_pending());
            // `last` is dropped as the body returns, with its item parked.
        })
        .boundary(2)
        .on_runtime(env.runtime.clone())
        .run_collect()
        .await
        .unwrap();
        assert_eq!(out, [2]);
        assert_eq!(report.stages[0].items_out, 1);
    });
}

/// `Emit::cancel` hands back an item the stream has not taken, exactly once:
/// re-emitting it sends it once.
fn generator_emit_cancel_hands_the_item_back(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, _) = producer::generator(|out| async move {
            for i in 0..20u32 {
                let mut emit = out.emit(i);
                // Polled once (parked), then given up.
                if let Either::Right(_) = future::select(&mut emit, future::ready(())).await {
                    let back = emit.cancel().expect("not taken yet");
                    assert_eq!(back, i);
                    out.emit(back).await;
                }
            }
        })
        .on_runtime(env.runtime.clone())
        .run_collect()
        .await
        .unwrap();
        assert_eq!(out, (0..20).collect::<Vec<_>>());
    });
}

/// Emitter clones used from other threads wake the stream and are woken by
/// it; the stream ends once the body has returned and every clone is gone.
fn generator_emitter_works_from_other_threads(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::generator(|out| async move {
            let threads: Vec<_> = (0..3u32)
                .map(|t| {
                    let out = out.clone();
                    std::thread::spawn(move || {
                        futures::executor::block_on(async {
                            for i in 0..100 {
                                out.emit(t * 1000 + i).await;
                            }
                        })
                    })
                })
                .collect();
            for i in 0..100 {
                out.emit(9000 + i).await;
            }
            // Returns while the threads may still be emitting.
            drop(threads);
        })
        .boundary(4)
        .on_runtime(env.runtime.clone())
        .run_collect()
        .await
        .unwrap();
        let mut sorted = out.clone();
        sorted.sort_unstable();
        let expected: Vec<u32> = [0, 1000, 2000, 9000]
            .iter()
            .flat_map(|base| (0..100).map(move |i| base + i))
            .collect();
        assert_eq!(sorted, expected);
        for base in [0, 1000, 2000, 9000] {
            let own: Vec<u32> = out
                .iter()
                .copied()
                .filter(|x| x / 1000 * 1000 == base)
                .collect();
            assert_eq!(
                own,
                (base..base + 100).collect::<Vec<_>>(),
                "each emitter in order"
            );
        }
        assert_eq!(report.stages[0].items_out, 400);
    });
}

/// An emitter used by another future of the consuming task (joined with the
/// run, so sharing its waker) is woken like any other.
fn generator_emitter_works_beside_the_run_on_its_task(rt: Rt) {
    rt.block_on(|env| async move {
        let mut kept = None;
        let pipeline = producer::generator(|out: producer::Emitter<u32>| {
            kept = Some(out.clone());
            async {} // the body returns at once; the clone keeps the stream open
        });
        let out = kept.expect("the body ran");
        let feed = async move {
            for i in 0..50 {
                out.emit(i).await;
            }
        };
        let run =
            futures::future::join(pipeline.on_runtime(env.runtime.clone()).run_collect(), feed);
        let (items, ()) =
            match future::select(Box::pin(run), Box::pin(env.sleep(Duration::from_secs(20)))).await
            {
                Either::Left((done, _)) => done,
                Either::Right(_) => panic!("an emit beside the run was never woken"),
            };
        assert_eq!(items.unwrap().0, (0..50).collect::<Vec<_>>());
    });
}

on_all_runtimes!(
    generator_emitter_works_beside_the_run_on_its_task,
    generator_ends_cleanly_after_an_emit_dropped_while_parked,
    generator_emit_cancel_hands_the_item_back,
    generator_emitter_works_from_other_threads,
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
