//! Timing stages: `throttle`, `idle_timeout`, `then_timeout`, `debounce`,
//! `sample`.
//!
//! Each test runs on smol, tokio and runtime-free (real timers: outcomes and
//! lower bounds on time only, since the machine is shared) and on the test
//! kit's virtual clock, where timings are exact.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use flowline::stage::{Elapsed, Rate};
use flowline::{producer, PipelineError, StageKind};
use support::Rt;

fn throttle_spaces_items_at_the_rate(rt: Rt) {
    rt.block_on(|env| async move {
        let start = env.now();
        let (out, report) = producer::iter(0..50u32)
            .throttle(100, 1)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let took = env.now() - start;
        assert_eq!(out, (0..50).collect::<Vec<_>>());
        // 49 gaps of 10 ms.
        assert!(took >= Duration::from_millis(480), "took {took:?}");
        if env.is_virtual() {
            assert_eq!(took, Duration::from_millis(490));
        }
        assert_eq!(report.stages[1].kind, StageKind::Timing);
        assert_eq!(report.stages[1].items_out, 50);
    });
}

fn throttle_lets_a_burst_through_then_keeps_the_rate(rt: Rt) {
    rt.block_on(|env| async move {
        let clock = env.clock();
        let start = clock.now();
        let (out, _) = producer::iter(0..20u32)
            .throttle((5, Duration::from_millis(100)), 10) // 1 per 20 ms
            .map(move |x| (x, clock.now() - start))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(
            out.iter().map(|(x, _)| *x).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        let burst = out[9].1;
        let rest = out[19].1 - out[9].1;
        // The 10 after the burst take 10 × 20 ms; the burst takes nothing.
        assert!(rest >= Duration::from_millis(190), "rest {rest:?}");
        if env.is_virtual() {
            assert_eq!((burst, rest), (Duration::ZERO, Duration::from_millis(200)));
        }
    });
}

fn throttle_refills_the_bucket_while_idle(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let gappy = producer::generator(move |out| async move {
            for i in 0..3u32 {
                out.emit(i).await;
            }
            env2.sleep(Duration::from_millis(300)).await; // refills 3 tokens
            for i in 3..6u32 {
                out.emit(i).await;
            }
        });
        let clock = env.clock();
        let start = clock.now();
        let (out, _) = gappy
            .throttle(Rate::new(10, Duration::from_secs(1)), 3)
            .map(move |x| (x, clock.now() - start))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let items: Vec<u32> = out.iter().map(|&(x, _)| x).collect();
        assert_eq!(items, [0, 1, 2, 3, 4, 5]);
        if env.is_virtual() {
            // Items 3..6 arrive together after the pause and pass at once.
            let ms = Duration::from_millis;
            let times: Vec<Duration> = out.iter().map(|&(_, t)| t).collect();
            assert_eq!(times, [ms(0), ms(0), ms(0), ms(300), ms(300), ms(300)]);
        }
    });
}

fn idle_timeout_fails_a_stalled_upstream(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let stalls = producer::generator(move |out| async move {
            out.emit(1u32).await;
            out.emit(2).await;
            env2.sleep(Duration::from_secs(30)).await;
            out.emit(3).await;
        });
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let start = env.now();
        let result = stalls
            .idle_timeout(Duration::from_millis(50))
            .named("feed")
            .on_runtime(env.runtime.clone())
            .run_for_each(move |_| {
                g.fetch_add(1, SeqCst);
                async {}
            })
            .await;
        assert!(env.now() - start >= Duration::from_millis(50));
        if env.is_virtual() {
            assert_eq!(env.now() - start, Duration::from_millis(50));
        }
        assert_eq!(got.load(SeqCst), 2);
        match result {
            Err(PipelineError::Failed { stage, source, .. }) => {
                assert_eq!(stage, "feed");
                let elapsed = source.downcast_ref::<Elapsed>().expect("an Elapsed");
                assert_eq!(elapsed.limit(), Duration::from_millis(50));
            }
            other => panic!("unexpected: {other:?}"),
        }
    });
}

/// A consumer slower than the limit does not trip it: only time spent
/// waiting for upstream counts.
fn idle_timeout_ignores_a_slow_consumer(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let report = producer::iter(0..5u32)
            .idle_timeout(Duration::from_millis(20))
            .on_runtime(env.runtime.clone())
            .run_for_each(move |_| {
                let env = env2.clone();
                async move { env.sleep(Duration::from_millis(40)).await }
            })
            .await
            .unwrap();
        assert_eq!(report.delivered(), 5);
    });
}

fn then_timeout_passes_fast_items_and_fails_a_slow_one(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let (out, _) = producer::iter(0..10u32)
            .then_timeout(Duration::from_secs(5), |x| async move { x + 1 })
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (1..=10).collect::<Vec<_>>());

        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let result = producer::iter(0..10u32)
            .then_timeout(Duration::from_millis(50), move |x| {
                let env = env2.clone();
                let guard = support::DropCounter::new(&l);
                async move {
                    let _guard = guard;
                    if x == 3 {
                        env.sleep(Duration::from_secs(30)).await;
                    }
                    x
                }
            })
            .named("lookup")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        let err = result.unwrap_err();
        assert_eq!(err.stage(), "lookup");
        assert!(matches!(&err, PipelineError::Failed { source, .. } if source.is::<Elapsed>()));
        assert_eq!(live.load(SeqCst), 0, "the late future was not dropped");
    });
}

fn debounce_keeps_the_last_of_each_burst(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let bursts = producer::generator(move |out| async move {
            for burst in 0..3u32 {
                for i in 0..5 {
                    out.emit(burst * 10 + i).await;
                }
                env2.sleep(Duration::from_millis(250)).await;
            }
            out.emit(99).await; // emitted at once when upstream ends
        });
        let (out, report) = bursts
            .debounce(Duration::from_millis(60))
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [4, 14, 24, 99]);
        assert_eq!(
            (report.stages[1].items_in, report.stages[1].items_out),
            (16, 4)
        );
    });
}

fn sample_emits_latest_per_period(rt: Rt) {
    rt.block_on(|env| async move {
        let env2 = env.clone();
        let readings = producer::generator(move |out| async move {
            for i in 0..60u32 {
                out.emit(i).await;
                env2.sleep(Duration::from_millis(5)).await;
            }
        });
        let (out, report) = readings
            .sample(Duration::from_millis(52))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        // ≥ 300 ms of readings sampled every 52 ms: a handful, increasing,
        // far fewer than the input.
        assert!(!out.is_empty() && out.len() <= 20, "{out:?}");
        assert!(out.windows(2).all(|w| w[0] < w[1]), "{out:?}");
        if env.is_virtual() {
            // Readings at 0, 5, …, 295 ms; ticks at 52, 104, …, 260 ms take
            // the latest (no tick lands on a reading); what came after the
            // last tick is not emitted when upstream ends.
            assert_eq!(out, [10, 20, 31, 41, 52]);
        }
        assert_eq!(report.stages[1].items_in, 60);
    });
}

#[test]
fn timing_and_batch_pipelines_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let pipeline = producer::iter(0..10u32)
        .throttle(1000, 4)
        .idle_timeout(Duration::from_secs(1))
        .then_timeout(Duration::from_secs(1), |x| async move { x })
        .debounce(Duration::from_millis(1))
        .sample(Duration::from_millis(1))
        .batch(4, Duration::from_millis(1))
        .batch_weighted(4, Duration::from_millis(1), |b| b.len());
    assert_send(&pipeline);
    assert_send(&pipeline.run_collect());
}

#[test]
#[should_panic(expected = "throttle burst must be at least 1, got 0")]
fn zero_burst_panics() {
    let _ = producer::iter(0..1).throttle(10, 0);
}

#[test]
#[should_panic(expected = "throttle rate must be at least 1 item per non-zero duration")]
fn zero_rate_panics() {
    let _ = producer::iter(0..1).throttle(0, 1);
}

on_all_clocks!(
    throttle_spaces_items_at_the_rate,
    throttle_lets_a_burst_through_then_keeps_the_rate,
    throttle_refills_the_bucket_while_idle,
    idle_timeout_fails_a_stalled_upstream,
    idle_timeout_ignores_a_slow_consumer,
    then_timeout_passes_fast_items_and_fails_a_slow_one,
    debounce_keeps_the_last_of_each_burst,
    sample_emits_latest_per_period,
);
