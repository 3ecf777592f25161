//! `VirtualClock`: virtual time while the tasks run on smol's or tokio's
//! executor — timers at exact virtual instants, stepped by the test, no real
//! time spent; blocking calls waited for by `settle`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline_core::runtime::RuntimeExt;
use flowline_core::{consumer, producer};
use flowline_test::VirtualClock;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The executors the clock is tested over, each with a way to block on a
/// future there.
fn on_smol_and_tokio(test: fn(VirtualClock, &dyn Fn(futures::future::BoxFuture<'static, ()>))) {
    test(
        VirtualClock::over(flowline_smol::SmolRuntime::new()),
        &|f| smol::block_on(f),
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = flowline_tokio::TokioRuntime::from_handle(tokio.handle().clone());
    test(VirtualClock::over(rt), &|f| tokio.block_on(f));
}

/// A throttled pipeline spawned over the executor emits at exact virtual
/// instants, only when the test moves time.
fn throttle_steps_through_virtual_time(
    clock: VirtualClock,
    block_on: &dyn Fn(futures::future::BoxFuture<'static, ()>),
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let at = clock.clone();
    let handle = producer::iter(0..3u32)
        .throttle((1, secs(600)), 1) // one every ten minutes
        .boundary(2)
        .on(clock.clone())
        .spawn(consumer::for_each(move |x| {
            log.lock().unwrap().push((x, at.elapsed()));
            async {}
        }));
    let c = clock.clone();
    block_on(Box::pin(async move {
        c.settle().await;
        assert_eq!(*seen.lock().unwrap(), [(0, secs(0))]);
        // Real time passing moves nothing.
        std::thread::sleep(Duration::from_millis(20));
        c.advance(secs(599)).await;
        assert_eq!(seen.lock().unwrap().len(), 1);
        c.advance(secs(1)).await;
        assert_eq!(*seen.lock().unwrap(), [(0, secs(0)), (1, secs(600))]);
        c.advance(secs(600)).await;
        let report = handle.await.unwrap();
        assert_eq!(report.delivered(), 3);
        assert_eq!(report.elapsed, secs(1200));
        assert_eq!(
            *seen.lock().unwrap(),
            [(0, secs(0)), (1, secs(600)), (2, secs(1200))]
        );
        c.settle().await;
    }));
    assert_eq!(clock.live_tasks(), 0);
}

#[test]
fn throttle_steps_through_virtual_time_on_smol_and_tokio() {
    on_smol_and_tokio(throttle_steps_through_virtual_time);
}

/// Tasks on the executor sleeping on the clock wake in deadline order, at
/// their virtual instants.
fn timers_fire_in_deadline_order(
    clock: VirtualClock,
    block_on: &dyn Fn(futures::future::BoxFuture<'static, ()>),
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|s| {
            let (log, c) = (log.clone(), clock.clone());
            clock.spawn(async move {
                c.sleep(secs(s)).await;
                log.lock().unwrap().push((s, c.elapsed()));
            })
        })
        .collect();
    let c = clock.clone();
    block_on(Box::pin(async move {
        c.advance(secs(15)).await;
        assert_eq!(*log.lock().unwrap(), [(10, secs(10))]);
        c.advance(secs(15)).await;
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *log.lock().unwrap(),
            [(10, secs(10)), (20, secs(20)), (30, secs(30))]
        );
        c.settle().await;
    }));
    assert_eq!((clock.elapsed(), clock.live_tasks()), (secs(30), 0));
}

#[test]
fn timers_fire_in_deadline_order_on_smol_and_tokio() {
    on_smol_and_tokio(timers_fire_in_deadline_order);
}

/// `settle` waits for blocking calls started through the clock, and for the
/// tasks they wake.
fn settle_waits_for_blocking_calls(
    clock: VirtualClock,
    block_on: &dyn Fn(futures::future::BoxFuture<'static, ()>),
) {
    let done = Arc::new(AtomicBool::new(false));
    let call_done = done.clone();
    let c = clock.clone();
    let task = clock.spawn(async move {
        c.spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(30));
            call_done.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap();
        7
    });
    let c = clock.clone();
    block_on(Box::pin(async move {
        c.settle().await;
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(c.live_tasks(), 0);
        assert_eq!(task.await.unwrap(), 7);
    }));
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[test]
fn settle_waits_for_blocking_calls_on_smol_and_tokio() {
    on_smol_and_tokio(settle_waits_for_blocking_calls);
}

/// The same executors under an auto-advancing clock: the caller does not
/// step time, and a pipeline whose timers span hours completes at once with
/// its real-time outcome at exact virtual instants.
fn on_smol_and_tokio_auto(
    test: fn(VirtualClock, &dyn Fn(futures::future::BoxFuture<'static, ()>)),
) {
    test(
        VirtualClock::auto_over(flowline_smol::SmolRuntime::new()),
        &|f| smol::block_on(f),
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = flowline_tokio::TokioRuntime::from_handle(tokio.handle().clone());
    test(VirtualClock::auto_over(rt), &|f| tokio.block_on(f));
}

/// Bursts 250 virtual ms apart (the generator sleeps with `flowline::time`,
/// the pipeline's clock) through a 60 ms debounce, behind a boundary, and a
/// throttle of one an hour: the outcome of real time, at exact instants.
fn timers_take_no_real_time(
    clock: VirtualClock,
    block_on: &dyn Fn(futures::future::BoxFuture<'static, ()>),
) {
    let bursts = producer::generator(|out| async move {
        for burst in 0..3u32 {
            for i in 0..5 {
                out.emit(burst * 10 + i).await;
            }
            flowline_core::time::sleep(Duration::from_millis(250)).await;
        }
        out.emit(99).await; // emitted at once when upstream ends
    });
    let at = clock.clone();
    let run = clock.spawn(
        bursts
            .debounce(Duration::from_millis(60))
            .boundary(4)
            .throttle((1, secs(3600)), 1)
            .map(move |x| (x, at.elapsed()))
            .on(clock.clone())
            .run_collect(),
    );
    let c = clock.clone();
    block_on(Box::pin(async move {
        let (out, report) = run.await.unwrap().unwrap();
        // Debounced at 60, 310 and 560 ms; 99 when upstream ends at 750 ms;
        // the throttle lets the first through at once, then one an hour.
        let hour_and = |h: u64| secs(h * 3600) + Duration::from_millis(60);
        assert_eq!(
            out,
            [
                (4, hour_and(0)),
                (14, hour_and(1)),
                (24, hour_and(2)),
                (99, hour_and(3))
            ]
        );
        assert_eq!(report.elapsed, hour_and(3));
        c.settle().await;
    }));
    let end = secs(10_800) + Duration::from_millis(60);
    assert_eq!((clock.elapsed(), clock.live_tasks()), (end, 0));
}

#[test]
fn timers_take_no_real_time_on_smol_and_tokio() {
    on_smol_and_tokio_auto(timers_take_no_real_time);
}
