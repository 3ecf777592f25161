//! The outcome contract: a failed or aborted run never looks like a finished
//! one, never closes (commits) its consumer, stops at once, waits for its own
//! work before it returns, and reports its counts; a pipeline without a named
//! runtime runs on the enabled one.

mod support;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use flowline::runtime::RuntimeFree;
use flowline::{consumer, producer, PipelineError};
use futures::{Sink, StreamExt as _};
use support::{DropCounter, Env, Rt};

/// What a [`Recorder`] saw: items taken, and whether it was flushed after a
/// failure or closed.
#[derive(Debug, Default)]
struct Seen {
    items: Mutex<Vec<u32>>,
    closed: AtomicBool,
    flushes: AtomicUsize,
}

/// A sink whose close means commit: it records every call.
struct Recorder(Arc<Seen>);

impl Sink<u32> for Recorder {
    type Error = std::io::Error;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: u32) -> Result<(), Self::Error> {
        self.0.items.lock().unwrap().push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.flushes.fetch_add(1, SeqCst);
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.closed.store(true, SeqCst);
        Poll::Ready(Ok(()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Error,
    Panic,
}

/// `try_map` failing on item 50 of 100 (by error or panic), with and without
/// a boundary: the run fails naming the stage, the sink is never closed, and
/// the report the error carries counts the 50 items before it.
fn a_failed_run_never_closes_the_consumer(rt: Rt) {
    rt.block_on(|env| async move {
        for failure in [Failure::Error, Failure::Panic] {
            for boundary in [false, true] {
                let seen = Arc::new(Seen::default());
                let pipeline = producer::iter(0..100u32)
                    .try_map(move |x| match (x, failure) {
                        (50, Failure::Error) => Err(std::io::Error::other("bad item")),
                        (50, Failure::Panic) => panic!("bad item"),
                        _ => Ok(x),
                    })
                    .named("parse");
                let pipeline = if boundary {
                    pipeline.boundary(8).boxed()
                } else {
                    pipeline.boxed()
                };
                let err = pipeline
                    .on_runtime(env.runtime.clone())
                    .run(Recorder(seen.clone()))
                    .await
                    .unwrap_err();
                let case = format!("{failure:?}, boundary: {boundary}");
                assert_eq!(err.stage(), "parse", "{case}");
                match failure {
                    Failure::Error => {
                        assert!(matches!(err, PipelineError::Failed { .. }), "{case}")
                    }
                    Failure::Panic => {
                        assert!(matches!(err, PipelineError::Panicked { .. }), "{case}")
                    }
                }
                assert!(
                    !seen.closed.load(SeqCst),
                    "{case}: a failed run closed the sink"
                );
                let items = seen.items.lock().unwrap().clone();
                assert!(items.len() <= 50, "{case}");
                assert_eq!(items, (0..items.len() as u32).collect::<Vec<_>>(), "{case}");
                let report = err.report();
                assert_eq!(report.delivered(), items.len() as u64, "{case}");
                let parse = report.stage("parse").unwrap();
                assert_eq!((parse.items_out, parse.failed), (50, 1), "{case}\n{report}");
            }
        }
    });
}

/// A failure after the last item went out still never reaches `poll_close`.
fn a_failure_at_the_end_does_not_commit(rt: Rt) {
    rt.block_on(|env| async move {
        let seen = Arc::new(Seen::default());
        let err = producer::iter(0..10u32)
            .try_map(|x| {
                if x == 9 {
                    Err(std::io::Error::other("last"))
                } else {
                    Ok(x)
                }
            })
            .boundary(4)
            .on_runtime(env.runtime.clone())
            .run(Recorder(seen.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, PipelineError::Failed { .. }));
        assert!(!seen.closed.load(SeqCst));
        // The run stops at once: some of the 9 good items may not have
        // crossed the boundary, and the report says how many did.
        let delivered = seen.items.lock().unwrap().len() as u64;
        assert!(delivered <= 9);
        assert_eq!(err.report().delivered(), delivered);
    });
}

/// `failing.merge(ticker)`: the run ends when the failing side fails, not
/// when the ticker runs out.
fn merge_ends_when_a_side_fails(rt: Rt) {
    rt.block_on(|env| async move {
        const TICKS: u32 = 2_000;
        let ticked = Arc::new(AtomicUsize::new(0));
        let counter = ticked.clone();
        let pause = env.clone();
        let ticker = producer::generator(move |out| async move {
            for i in 0..TICKS {
                pause.sleep(Duration::from_millis(1)).await;
                counter.fetch_add(1, SeqCst);
                out.emit(1_000_000 + i).await;
            }
        })
        .boundary(4);
        let failing = producer::iter(0..10u32)
            .try_map(|x| {
                if x == 4 {
                    Err(std::io::Error::other("fifth"))
                } else {
                    Ok(x)
                }
            })
            .named("failing")
            .boundary(4);
        let err = failing
            .merge(ticker)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "failing");
        let ticks = ticked.load(SeqCst);
        assert!(
            ticks < TICKS as usize / 2,
            "the ticker ran on: {ticks} ticks"
        );
    });
}

/// When a run fails, no user code of another stage is still running: the
/// run returns after its tasks are gone.
fn the_error_path_waits_for_the_run_s_tasks(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let (counter, pause) = (live.clone(), env.clone());
        let err = producer::iter(0..1_000u32)
            .then(move |x| {
                let guard = DropCounter::new(&counter);
                let pause = pause.clone();
                async move {
                    pause.sleep(Duration::from_millis(2)).await;
                    drop(guard);
                    x
                }
            })
            .boundary(4)
            .try_map(|x| if x == 3 { Err("stop") } else { Ok(x) })
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap_err();
        assert!(matches!(err, PipelineError::Failed { .. }));
        assert_eq!(live.load(SeqCst), 0, "a stage's future outlived the run");
    });
}

/// `into_try_stream`: items as `Ok`, then the failure as one `Err`; the plain
/// `Stream` ends early.
fn a_failure_shows_in_the_try_stream(rt: Rt) {
    rt.block_on(|env| async move {
        let failing = || {
            producer::iter(0..10u32)
                .try_map(|x| if x == 5 { Err("five") } else { Ok(x) })
                .named("five")
                .boundary(2)
                .on_runtime(env.runtime.clone())
        };
        let results: Vec<_> = failing().into_try_stream().collect().await;
        assert_eq!(results.len(), 6);
        for (i, r) in results[..5].iter().enumerate() {
            assert_eq!(*r.as_ref().unwrap(), i as u32);
        }
        let err = results[5].as_ref().unwrap_err();
        assert_eq!(err.stage(), "five");
        assert_eq!(err.report().stage("five").unwrap().failed, 1);
        let plain: Vec<u32> = futures::StreamExt::collect(failing()).await;
        assert_eq!(plain, [0, 1, 2, 3, 4]);
    });
}

/// The consumer can be named, and fan-out branches' generated names differ.
fn every_stage_can_be_named_and_names_are_unique(rt: Rt) {
    rt.block_on(|env| async move {
        let err = producer::iter(0..5u32)
            .consumer_named("archive")
            .on_runtime(env.runtime.clone())
            .run(consumer::from_fn(|x: u32| async move {
                if x == 2 {
                    Err(std::io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            }))
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "archive");
        let mut branches = producer::iter(0..4u32)
            .on_runtime(env.runtime.clone())
            .broadcast(2, 4, flowline::Overflow::Backpressure);
        let (b, a) = (branches.pop().unwrap(), branches.pop().unwrap());
        let (ra, rb) = futures::join!(a.run_collect(), b.run_collect());
        let (ra, rb) = (ra.unwrap().1, rb.unwrap().1);
        let names = |r: &flowline::RunReport| -> Vec<String> {
            r.stages.iter().map(|s| s.name.clone()).collect()
        };
        let (na, nb) = (names(&ra), names(&rb));
        for name in &na {
            assert_eq!(na.iter().filter(|n| *n == name).count(), 1, "{na:?}");
        }
        let a_own: Vec<_> = na.iter().filter(|n| !nb.contains(n)).collect();
        let b_own: Vec<_> = nb.iter().filter(|n| !na.contains(n)).collect();
        // Each branch's fan-out stage and consumer are its own.
        assert_eq!(a_own.len(), 2, "{na:?} / {nb:?}");
        assert_eq!(b_own.len(), 2, "{na:?} / {nb:?}");
    });
}

/// With no runtime named, a boundary's upstream runs on the enabled
/// runtime's threads, not inline in the consumer's task; runtime-free, on
/// the consumer's thread and no other.
fn no_runtime_named_means_the_enabled_one(rt: Rt) {
    rt.block_on(|env| async move {
        let here = std::thread::current().id();
        let threads = Arc::new(Mutex::new(Vec::new()));
        let seen = threads.clone();
        let pipeline = producer::iter(0..64u32)
            .inspect(move |_| seen.lock().unwrap().push(std::thread::current().id()))
            .boundary(4);
        let pipeline = match env.kind {
            // Nothing named: inside tokio that is tokio, outside it smol.
            Rt::Smol | Rt::Tokio => pipeline,
            Rt::Free | Rt::Virtual => {
                pipeline.on_runtime(env.runtime.clone().or(Some(Arc::new(RuntimeFree))))
            }
        };
        let (items, _) = pipeline.run_collect().await.unwrap();
        assert_eq!(items.len(), 64);
        let threads = threads.lock().unwrap();
        match env.kind {
            Rt::Smol | Rt::Tokio => assert!(
                threads.iter().all(|t| *t != here),
                "the boundary's upstream ran inline on the consumer's thread"
            ),
            Rt::Free | Rt::Virtual => assert!(threads.iter().all(|t| *t == here)),
        }
    });
}

/// Runtime-free, `spawn` starts no thread: the run goes on in the task that
/// awaits the handle.
fn a_runtime_free_spawn_runs_where_it_is_awaited(rt: Rt) {
    rt.block_on(|env: Env| async move {
        if env.kind != Rt::Free {
            return;
        }
        let here = std::thread::current().id();
        let threads = Arc::new(Mutex::new(Vec::new()));
        let seen = threads.clone();
        let handle = producer::iter(0..100u32)
            .inspect(move |_| seen.lock().unwrap().push(std::thread::current().id()))
            .boundary(8)
            .on(RuntimeFree)
            .spawn(consumer::discard());
        let report = handle.await.unwrap();
        assert_eq!(report.delivered(), 100);
        assert!(threads.lock().unwrap().iter().all(|t| *t == here));
    });
}

/// Completed runs hold nothing in flight, whatever the operator: batch,
/// batch_weighted, debounce, sample, zip; a balance branch's input is what
/// it took; a dropped broadcast branch's copies are counted.
fn completed_runs_hold_nothing_in_flight(rt: Rt) {
    rt.block_on(|env| async move {
        let check = |report: &flowline::RunReport| {
            assert_eq!(report.in_flight(), 0, "{report}");
            assert!(report.stages.iter().all(|s| s.is_balanced()), "{report}");
        };
        let on = || env.runtime.clone();
        let (batches, report) = producer::iter(0..1000u32)
            .batch(64, Duration::from_millis(5))
            .on_runtime(on())
            .run_collect()
            .await
            .unwrap();
        check(&report);
        let batch = report.stage("batch#1").unwrap();
        assert_eq!(
            (batch.items_out, batch.grouped),
            (batches.len() as u64, 1000 - batches.len() as u64)
        );
        let (_, report) = producer::iter(0..1000u32)
            .batch_weighted(64, Duration::from_millis(5), |_| 1)
            .on_runtime(on())
            .run_collect()
            .await
            .unwrap();
        check(&report);
        let (out, report) = producer::iter(0..20u32)
            .debounce(Duration::from_millis(50))
            .on_runtime(on())
            .run_collect()
            .await
            .unwrap();
        check(&report);
        assert_eq!(out, [19]);
        assert_eq!(report.stage("debounce#1").unwrap().discarded, 19);
        let (_, report) = producer::iter(0..50u32)
            .sample(Duration::from_millis(1))
            .on_runtime(on())
            .run_collect()
            .await
            .unwrap();
        check(&report);
        let (pairs, report) = producer::iter(0..10u32)
            .boundary(2)
            .zip(producer::iter(0..30u32).boundary(2))
            .on_runtime(on())
            .run_collect()
            .await
            .unwrap();
        check(&report);
        assert_eq!(pairs.len(), 10);
        let mut branches = producer::iter(0..100u32).on_runtime(on()).balance(2, 4);
        let (b, a) = (branches.pop().unwrap(), branches.pop().unwrap());
        let (out, report) = a.merge(b).run_collect().await.unwrap();
        check(&report);
        assert_eq!(out.len(), 100);
        let inputs: u64 = report
            .stages
            .iter()
            .filter(|s| s.name.starts_with("balance"))
            .map(|s| s.items_in)
            .sum();
        assert_eq!(inputs, 100, "{report}");
        let mut branches = producer::iter(0..100u32).on_runtime(on()).broadcast(
            2,
            4,
            flowline::Overflow::Backpressure,
        );
        let kept = branches.remove(0);
        let dropped = branches.remove(0);
        let monitor = dropped.monitor();
        drop(dropped);
        let (out, report) = kept.run_collect().await.unwrap();
        check(&report);
        assert_eq!(out.len(), 100);
        let gone = monitor.report();
        let branch = gone.stage("broadcast#1.1").unwrap();
        assert_eq!((branch.items_in, branch.discarded), (100, 100), "{gone}");
    });
}

/// A `zip` whose other side is empty ends at once and stops reading a side
/// with queues and timers in it: tearing that side down must not turn the
/// completed run into an aborted one (found by the accounting proptest).
fn a_zip_that_cuts_a_side_off_completes(rt: Rt) {
    rt.block_on(|env| async move {
        for _ in 0..50 {
            let (out, report) = producer::iter(0..6u64)
                .zip(producer::iter(0..6u64).boundary(2))
                .map(|(a, _)| a)
                .debounce(Duration::from_micros(50))
                .boundary(1)
                .zip(producer::iter(0..0u64).boundary(2))
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert!(out.is_empty());
            assert_eq!(report.in_flight(), 0, "{report}");
        }
    });
}

on_all_runtimes!(
    a_zip_that_cuts_a_side_off_completes,
    completed_runs_hold_nothing_in_flight,
    a_failed_run_never_closes_the_consumer,
    a_failure_at_the_end_does_not_commit,
    merge_ends_when_a_side_fails,
    the_error_path_waits_for_the_run_s_tasks,
    a_failure_shows_in_the_try_stream,
    every_stage_can_be_named_and_names_are_unique,
    no_runtime_named_means_the_enabled_one,
    a_runtime_free_spawn_runs_where_it_is_awaited,
);

/// `TokioRuntime::now` follows tokio's clock, so a paused clock drives
/// flowline's timers: an hour-long batch window passes in no real time.
#[test]
fn tokio_s_paused_clock_drives_flowline_timers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let start = tokio::time::Instant::now();
        let (batches, _) = producer::generator(|out| async move {
            out.emit(1u32).await;
            out.emit(2).await;
            tokio::time::sleep(Duration::from_secs(7200)).await;
            out.emit(3).await;
        })
        .batch(100, Duration::from_secs(3600))
        .run_collect()
        .await
        .unwrap();
        assert_eq!(batches, [vec![1, 2], vec![3]]);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(3600), "{waited:?}");
    });
}
