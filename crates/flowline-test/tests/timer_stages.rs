//! Every timer in flowline runs on the pipeline's runtime clock: on the
//! virtual clock each timer stage gives its real-time outcome, at exact
//! virtual instants, in no real time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline_core::runtime::{Runtime, RuntimeExt};
use flowline_core::stage::Elapsed;
use flowline_core::{producer, Backoff, ErrorPolicy, PipelineError};
use flowline_test::{VirtualHandle, VirtualRuntime};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Each item paired with the virtual time it passed `at`.
fn stamp<T>(h: &VirtualHandle) -> impl FnMut(T) -> (T, Duration) {
    let h = h.clone();
    move |x| (x, h.elapsed())
}

#[test]
fn throttle_spaces_items_exactly_at_the_rate() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (out, report) = rt
        .block_on(
            producer::iter(0..5u32)
                .throttle(100, 1)
                .map(stamp(&h))
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    assert_eq!(
        out,
        [
            (0, ms(0)),
            (1, ms(10)),
            (2, ms(20)),
            (3, ms(30)),
            (4, ms(40))
        ]
    );
    assert_eq!(report.elapsed, ms(40));
}

#[test]
fn batch_flushes_at_max_wait_on_the_virtual_clock() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let source = producer::generator(move |out| async move {
        for i in 0..6u32 {
            out.emit(i).await;
            h2.sleep(ms(400)).await;
        }
    });
    let (out, _) = rt
        .block_on(
            source
                .batch(10, ms(1000))
                .map(stamp(&h))
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    // Items at 0, 400, 800 ms go in the first batch (flushed at 1000 ms),
    // 1200, 1600, 2000 in the second (flushed at 2200 ms).
    assert_eq!(out, [(vec![0, 1, 2], ms(1000)), (vec![3, 4, 5], ms(2200))]);
}

#[test]
fn debounce_and_sample_see_virtual_time() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let bursts = producer::generator(move |out| async move {
        for burst in 0..3u32 {
            for i in 0..5 {
                out.emit(burst * 10 + i).await;
                h2.sleep(ms(10)).await;
            }
            h2.sleep(ms(250)).await;
        }
    });
    let (out, _) = rt
        .block_on(
            bursts
                .debounce(ms(60))
                .map(stamp(&h))
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    // The last of each burst (at 40 ms) passes after 60 ms of quiet;
    // bursts start 300 ms apart.
    assert_eq!(out, [(4, ms(100)), (14, ms(400)), (24, ms(700))]);

    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let readings = producer::generator(move |out| async move {
        for i in 0..30u32 {
            out.emit(i).await;
            h2.sleep(ms(10)).await;
        }
    });
    let (out, _) = rt
        .block_on(readings.sample(ms(104)).on(h.clone()).run_collect())
        .unwrap();
    // Readings at 0, 10, …, 290 ms; the ticks at 104 and 208 ms take the
    // latest (4 ms off the readings: no tie for real time to break).
    assert_eq!(out[..2], [10, 20]);
}

#[test]
fn idle_timeout_and_then_timeout_fire_at_their_limit() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let stalls = producer::generator(move |out| async move {
        out.emit(1u32).await;
        h2.sleep(Duration::from_secs(3600)).await;
        out.emit(2).await;
    });
    let err = rt
        .block_on(
            stalls
                .idle_timeout(ms(50))
                .named("feed")
                .on(h.clone())
                .run_collect(),
        )
        .unwrap_err();
    assert!(matches!(&err, PipelineError::Failed { stage, source, .. }
        if stage == "feed" && source.is::<Elapsed>()));
    assert_eq!(h.elapsed(), ms(50));

    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let err = rt
        .block_on(
            producer::iter(0..5u32)
                .then_timeout(ms(200), move |x| {
                    let h = h2.clone();
                    async move {
                        h.sleep(ms(150 * u64::from(x))).await;
                        x
                    }
                })
                .named("lookup")
                .on(h.clone())
                .run_collect(),
        )
        .unwrap_err();
    assert_eq!(err.stage(), "lookup");
    // Item 0 takes no time, item 1 150 ms, item 2 would take 300 ms and
    // times out 200 ms after it started.
    assert_eq!(h.elapsed(), ms(350));
}

#[test]
fn retry_backoff_sleeps_on_the_virtual_clock() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let mut calls = 0;
    let (out, report) = rt
        .block_on(
            producer::iter([7u32])
                .try_map(move |x| {
                    calls += 1;
                    if calls < 3 {
                        Err("flaky")
                    } else {
                        Ok(x)
                    }
                })
                .on_error(ErrorPolicy::Retry {
                    attempts: 5,
                    backoff: Backoff::fixed(Duration::from_secs(30)),
                })
                .named("flaky")
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    assert_eq!(out, [7]);
    assert_eq!(report.stage("flaky").unwrap().retried, 2);
    assert_eq!(report.elapsed, Duration::from_secs(60));
}

#[test]
fn on_progress_ticks_on_the_virtual_clock() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let (_, report) = rt
        .block_on(
            producer::iter(0..6u32)
                .throttle((1, Duration::from_secs(1)), 1)
                .on_progress(Duration::from_secs(2), move |snap| {
                    s.lock().unwrap().push((snap.elapsed, snap.finished));
                })
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    let secs = Duration::from_secs;
    assert_eq!(report.elapsed, secs(5));
    let seen = seen.lock().unwrap();
    // Ticks at 2 s and 4 s, then one final snapshot when the run finishes.
    assert_eq!(seen[..2], [(secs(2), false), (secs(4), false)]);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[2].1);
}

/// User code that sleeps with `flowline::time` (the runtime of the pipeline
/// polling it) sleeps in virtual time too, in fused stages and in stage
/// tasks alike.
#[test]
fn flowline_time_in_user_code_is_virtual() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (out, report) = rt
        .block_on(
            producer::iter(1..=3u64)
                .then(|x| async move {
                    flowline_core::time::sleep(Duration::from_secs(x)).await;
                    x
                })
                .boundary(2)
                .then(|x| async move {
                    flowline_core::time::sleep(Duration::from_secs(10)).await;
                    (x, flowline_core::time::now())
                })
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    let start = h.now() - report.elapsed;
    let at: Vec<(u64, Duration)> = out.into_iter().map(|(x, t)| (x, t - start)).collect();
    let secs = Duration::from_secs;
    // Upstream sleeps 1, 2, 3 s (done at 1, 3, 6 s); downstream 10 s each,
    // one at a time: 11, 21, 31 s.
    assert_eq!(at, [(1, secs(11)), (2, secs(21)), (3, secs(31))]);
    assert_eq!(report.elapsed, secs(31));
}
