//! Spawned runs: await, shutdown, abort, drop, detach; snapshots, progress,
//! describe.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline::{consumer, producer, Pipeline, PipelineError, RunReport, StageKind};
use futures::Stream;
use support::{DropCounter, Env, Rt, Stop};

const LIMIT: Duration = Duration::from_secs(20);

/// An endless generator of 0, 1, 2, … holding a drop guard while it lives.
fn endless(live: &Arc<AtomicUsize>) -> Pipeline<impl Stream<Item = u64> + Send + 'static> {
    let guard = DropCounter::new(live);
    producer::generator(move |out| async move {
        let _guard = guard;
        for i in 0u64.. {
            out.emit(i).await;
        }
    })
}

/// A consumer storing items, holding a drop guard; sleeps `pause` per item.
fn store(
    env: &Env,
    live: &Arc<AtomicUsize>,
    pause: Duration,
) -> (
    impl futures::Sink<u64, Error = std::convert::Infallible> + Send + 'static,
    Arc<Mutex<Vec<u64>>>,
) {
    let items = Arc::new(Mutex::new(Vec::new()));
    let sink_items = items.clone();
    let guard = DropCounter::new(live);
    let env = env.clone();
    let sink = consumer::for_each(move |x| {
        let _ = &guard;
        sink_items.lock().unwrap().push(x);
        let env = env.clone();
        async move {
            if !pause.is_zero() {
                env.sleep(pause).await;
            }
        }
    });
    (sink, items)
}

fn check_balanced(report: &RunReport) {
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced stage {s:?}");
    }
}

fn awaiting_the_handle_gives_the_report(rt: Rt) {
    rt.block_on(|env| async move {
        let handle = producer::iter(0..1000u64)
            .map(|x| x + 1)
            .boundary(16)
            .on_runtime(env.runtime)
            .spawn(consumer::discard());
        let report = handle.await.unwrap();
        assert_eq!(report.delivered(), 1000);
        check_balanced(&report);
    });
}

fn shutdown_drains_everything_produced(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let (sink, items) = store(&env, &live, Duration::ZERO);
        let handle = endless(&live)
            .map(|x| x * 2)
            .boundary(16)
            .then(|x| async move { x + 1 })
            .boundary(4)
            .on_runtime(env.runtime.clone())
            .spawn(sink);
        let monitor = handle.monitor();
        let cond = || monitor.snapshot().stages[4].stage.items_out >= 200;
        let report = env
            .stop_when(handle, LIMIT, cond, Stop::Shutdown)
            .await
            .unwrap();
        let produced = report.stages[0].items_out;
        assert!(produced >= 200);
        // Nothing lost: every item produced before the stop was delivered.
        assert_eq!(report.delivered(), produced);
        assert_eq!(report.in_flight(), 0);
        check_balanced(&report);
        let expected: Vec<u64> = (0..produced).map(|x| x * 2 + 1).collect();
        assert_eq!(*items.lock().unwrap(), expected);
        assert!(env.eventually(LIMIT, || live.load(SeqCst) == 0).await);
    });
}

fn shutdown_wakes_a_waiting_producer(rt: Rt) {
    rt.block_on(|env| async move {
        let waiting = env.clone();
        // Emits 3 items, then waits a long time.
        let handle = producer::generator(move |out| async move {
            for i in 0..3u32 {
                out.emit(i).await;
            }
            waiting.sleep(Duration::from_secs(3600)).await;
        })
        .on_runtime(env.runtime.clone())
        .spawn(consumer::discard());
        let monitor = handle.monitor();
        let result = env
            .stop_when(
                handle,
                LIMIT,
                || monitor.report().delivered() == 3,
                Stop::Shutdown,
            )
            .await;
        assert_eq!(result.unwrap().delivered(), 3);
    });
}

fn abort_stops_now_and_reports_in_flight(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let (sink, items) = store(&env, &live, Duration::from_millis(1));
        let handle = endless(&live)
            .boundary(64)
            .map(|x| x + 1)
            .on_runtime(env.runtime.clone())
            .spawn(sink);
        let monitor = handle.monitor();
        let result = env
            .stop_when(
                handle,
                LIMIT,
                || monitor.report().delivered() >= 10,
                Stop::Abort,
            )
            .await;
        let err = result.unwrap_err();
        assert!(matches!(err, PipelineError::Aborted { .. }), "{err}");
        // The error carries the counts at the moment the run stopped.
        let report = err.report().clone();
        assert_eq!(report.stages, monitor.report().stages);
        check_balanced(&report);
        let produced = report.stages[0].items_out;
        assert_eq!(produced, report.delivered() + report.in_flight());
        // The slow consumer leaves the boundary holding items.
        assert!(report.in_flight() > 0, "{report}");
        let delivered = items.lock().unwrap().len() as u64;
        assert_eq!(delivered, report.delivered());
        // Every task and the consumer are gone already.
        assert_eq!(live.load(SeqCst), 0);
    });
}

fn dropping_the_handle_cancels_the_run(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let (sink, items) = store(&env, &live, Duration::from_millis(1));
        let handle = endless(&live)
            .boundary(8)
            .boundary(8)
            .on_runtime(env.runtime.clone())
            .spawn(sink);
        let mut handle = handle;
        let watch = Box::pin(env.eventually(LIMIT, || items.lock().unwrap().len() >= 5));
        match futures::future::select(&mut handle, watch).await {
            futures::future::Either::Right((reached, _)) => assert!(reached),
            futures::future::Either::Left(_) => panic!("an endless run ended"),
        }
        drop(handle);
        assert!(env.eventually(LIMIT, || live.load(SeqCst) == 0).await);
        let after = items.lock().unwrap().len();
        env.sleep(Duration::from_millis(20)).await;
        assert_eq!(items.lock().unwrap().len(), after);
    });
}

fn detached_runs_finish(rt: Rt) {
    rt.block_on(|env| async move {
        let count = Arc::new(AtomicU64::new(0));
        let seen = count.clone();
        let handle = producer::iter(0..500u64)
            .boundary(8)
            .on_runtime(env.runtime.clone())
            .spawn(consumer::for_each(move |_| {
                seen.fetch_add(1, SeqCst);
                async {}
            }));
        let monitor = handle.monitor();
        if env.kind == Rt::Free {
            // Nothing would drive a detached runtime-free run: refused.
            let refused =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.detach()));
            let payload = refused.unwrap_err();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap();
            assert!(message.contains("cannot be detached"), "{message}");
            return;
        }
        handle.detach();
        assert!(env.eventually(LIMIT, || count.load(SeqCst) == 500).await);
        assert!(env.eventually(LIMIT, || monitor.snapshot().finished).await);
    });
}

fn failed_runs_keep_their_counts(rt: Rt) {
    rt.block_on(|env| async move {
        let pipeline = producer::iter(0..10u32)
            .map(|x| if x == 4 { panic!("four") } else { x })
            .named("m")
            .on_runtime(env.runtime);
        let monitor = pipeline.monitor();
        let err = pipeline.run_collect().await.unwrap_err();
        assert!(matches!(err, PipelineError::Panicked { ref stage, .. } if stage == "m"));
        let report = monitor.report();
        let m = report.stage("m").unwrap();
        assert_eq!(
            (m.items_in, m.items_out, m.failed, m.in_flight),
            (5, 4, 1, 0)
        );
        check_balanced(&report);
    });
}

fn snapshots_show_progress_and_queues(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let (sink, _items) = store(&env, &live, Duration::from_millis(1));
        let handle = endless(&live)
            .try_map(Ok::<_, std::io::Error>)
            .boundary(32)
            .on_runtime(env.runtime.clone())
            .spawn(sink);
        let monitor = handle.monitor();
        let stop = handle.stop_handle();
        let (result, ()) = futures::join!(handle, async {
            assert!(
                env.eventually(LIMIT, || {
                    let s = monitor.snapshot();
                    s.stages[3].stage.items_out >= 5 && s.stages[2].queue_depth.unwrap_or(0) > 0
                })
                .await
            );
            let snapshot = monitor.snapshot();
            assert!(!snapshot.finished);
            assert_eq!(snapshot.stages[2].stage.kind, StageKind::Boundary);
            assert_eq!(snapshot.stages[0].queue_depth, None);
            assert!(snapshot.stages[0].throughput > 0.0);
            assert!(snapshot.to_string().contains("[boundary#2 in "));
            stop.abort();
        });
        check_balanced(result.unwrap_err().report());
    });
}

fn progress_is_reported_until_the_end(rt: Rt) {
    rt.block_on(|env| async move {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let pause = env.clone();
        let (n, _) = producer::iter(0..40u64)
            .then(move |x| {
                let pause = pause.clone();
                async move {
                    pause.sleep(Duration::from_millis(1)).await;
                    x
                }
            })
            .on_progress(Duration::from_millis(5), move |s| {
                seen.lock().unwrap().push(s.stages[1].stage.items_out);
            })
            .on_runtime(env.runtime)
            .run_count()
            .await
            .unwrap();
        assert_eq!(n, 40);
        let calls = calls.lock().unwrap();
        assert!(calls.len() >= 2, "{calls:?}");
        assert!(calls.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*calls.last().unwrap(), 40);
    });
}

fn describe_exports_mermaid_and_dot(_rt: Rt) {
    let pipeline = producer::iter(0..10u32)
        .map(|x| x + 1)
        .named("parse \"x\"")
        .boundary(8)
        .try_map(Ok::<_, std::io::Error>);
    let topology = pipeline.describe();
    assert_eq!(
        topology.mermaid(),
        "flowchart LR\n\
         \x20   s0[\"iter#0<br/>source\"]\n\
         \x20   s1[\"parse #quot;x#quot;<br/>fused\"]\n\
         \x20   s2[\"boundary#2<br/>boundary\"]\n\
         \x20   s3[\"try_map#3<br/>fused\"]\n\
         \x20   s0 --> s1\n\
         \x20   s1 --> s2\n\
         \x20   s2 --> s3\n"
    );
    assert_eq!(
        topology.dot(),
        "digraph pipeline {\n\
         \x20   rankdir=LR;\n\
         \x20   node [shape=box];\n\
         \x20   s0 [label=\"iter#0\\nsource\"];\n\
         \x20   s1 [label=\"parse \\\"x\\\"\\nfused\"];\n\
         \x20   s2 [label=\"boundary#2\\nboundary\"];\n\
         \x20   s3 [label=\"try_map#3\\nfused\"];\n\
         \x20   s0 -> s1;\n\
         \x20   s1 -> s2;\n\
         \x20   s2 -> s3;\n\
         }\n"
    );
}

on_all_runtimes!(
    awaiting_the_handle_gives_the_report,
    shutdown_drains_everything_produced,
    shutdown_wakes_a_waiting_producer,
    abort_stops_now_and_reports_in_flight,
    dropping_the_handle_cancels_the_run,
    detached_runs_finish,
    failed_runs_keep_their_counts,
    snapshots_show_progress_and_queues,
    progress_is_reported_until_the_end,
    describe_exports_mermaid_and_dot,
    a_refused_item_counts_as_failed_at_the_consumer,
);

#[test]
fn handles_and_reports_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<flowline::PipelineHandle>();
    send_sync::<flowline::Monitor>();
    send_sync::<flowline::Snapshot>();
    send_sync::<flowline::Topology>();
    send_sync::<RunReport>();
    send::<flowline::ErrorPolicy<String>>();
    send_sync::<flowline::StageError>();
    send_sync::<flowline::DeadLetter<String>>();
    fn pipeline_is_send<T: Send>(_: &T) {}
    let p = producer::iter(0..3u32)
        .try_map(|x| Ok::<_, std::io::Error>(x + 1))
        .on_error(flowline::ErrorPolicy::Skip)
        .try_then(|x| async move { Ok::<_, std::io::Error>(x) });
    pipeline_is_send(&p);
}

fn a_refused_item_counts_as_failed_at_the_consumer(rt: Rt) {
    rt.block_on(|env| async move {
        let pipeline = producer::iter(0..10u32).on_runtime(env.runtime);
        let monitor = pipeline.monitor();
        let err = pipeline
            .run(consumer::from_fn(|x: u32| async move {
                if x == 6 {
                    Err(std::io::Error::other("full"))
                } else {
                    Ok(())
                }
            }))
            .await
            .unwrap_err();
        assert_eq!(err.stage(), "consumer#1");
        let report = monitor.report();
        let consumer = &report.stages[1];
        assert!(consumer.is_balanced(), "{report}");
        // Item 6 was accepted by start_send; its future failed afterwards.
        assert_eq!(consumer.items_out, 7, "{report}");
    });
}
