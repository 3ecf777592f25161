//! The virtual-clock runtime: ordering of timers, auto-advance, blocking work
//! holding the clock, manual stepping, cancellation on drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowline_core::producer;
use flowline_core::runtime::{JoinError, Runtime, RuntimeExt};
use flowline_test::VirtualRuntime;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn timers_fire_in_deadline_order_at_their_virtual_instant() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let tasks: Vec<_> = [30u64, 10, 20, 10]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (h2, log) = (h.clone(), log.clone());
                h.spawn(async move {
                    h2.sleep(secs(s)).await;
                    log.lock().unwrap().push((i, h2.elapsed()));
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(
        *log.lock().unwrap(),
        [(1, secs(10)), (3, secs(10)), (2, secs(20)), (0, secs(30))]
    );
    assert_eq!(rt.elapsed(), secs(30));
}

#[test]
fn now_is_the_creation_instant_plus_virtual_time() {
    let before = Instant::now();
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let start = h.now();
    assert!(start >= before);
    rt.block_on(h.sleep(secs(86_400)));
    assert_eq!(h.now() - start, secs(86_400));
}

#[test]
fn blocking_work_holds_auto_advance_back() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let timer = h.spawn({
            let (h, log) = (h.clone(), log.clone());
            async move {
                h.sleep(Duration::from_millis(1)).await;
                log.lock().unwrap().push("timer");
            }
        });
        let call = h.spawn_blocking({
            let log = log.clone();
            move || {
                std::thread::sleep(Duration::from_millis(30));
                log.lock().unwrap().push("blocking");
            }
        });
        call.await.unwrap();
        timer.await.unwrap();
    });
    assert_eq!(*log.lock().unwrap(), ["blocking", "timer"]);
    assert_eq!(rt.elapsed(), Duration::from_millis(1));
}

#[test]
fn manual_mode_moves_only_when_advanced() {
    let rt = VirtualRuntime::manual();
    let h = rt.handle();
    let fired = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        for s in [5, 10, 15] {
            let (h2, fired) = (h.clone(), fired.clone());
            h.spawn(async move {
                h2.sleep(secs(s)).await;
                fired.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
        }
        h.settle().await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        h.advance(secs(9)).await;
        assert_eq!((fired.load(Ordering::SeqCst), h.elapsed()), (1, secs(9)));
        h.advance(secs(6)).await;
        assert_eq!((fired.load(Ordering::SeqCst), h.elapsed()), (3, secs(15)));
    });
    assert_eq!(h.live_tasks(), 0);
}

#[test]
fn advance_settles_between_timers() {
    // A timer at 1 s schedules another at 1.5 s; advancing 2 s fires both.
    let rt = VirtualRuntime::manual();
    let h = rt.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let (h2, log2) = (h.clone(), log.clone());
        h.spawn(async move {
            h2.sleep(secs(1)).await;
            log2.lock().unwrap().push(h2.elapsed());
            h2.sleep(Duration::from_millis(500)).await;
            log2.lock().unwrap().push(h2.elapsed());
        })
        .detach();
        h.advance(secs(2)).await;
    });
    assert_eq!(*log.lock().unwrap(), [secs(1), Duration::from_millis(1500)]);
}

#[test]
fn a_panicking_task_is_reported_by_its_handle() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let out = rt.block_on(h.spawn(async { panic!("boom") }));
    assert_eq!(out, Err(JoinError::Panicked("boom".into())));
    assert_eq!(h.live_tasks(), 0);
}

#[test]
fn dropping_the_runtime_cancels_its_tasks() {
    struct Live(Arc<AtomicUsize>);
    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let rt = VirtualRuntime::manual();
    let h = rt.handle();
    for s in [1, 2] {
        live.fetch_add(1, Ordering::SeqCst);
        let (h2, guard) = (h.clone(), Live(live.clone()));
        h.spawn(async move {
            let _guard = guard;
            h2.sleep(secs(s)).await;
        })
        .detach();
    }
    rt.block_on(h.settle());
    assert_eq!((live.load(Ordering::SeqCst), h.live_tasks()), (2, 2));
    drop(rt);
    assert_eq!((live.load(Ordering::SeqCst), h.live_tasks()), (0, 0));
}

#[test]
fn tasks_woken_from_other_threads_run() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (tx, rx) = futures::channel::oneshot::channel();
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send(7).unwrap();
    });
    let got = rt.block_on(h.spawn(rx));
    pusher.join().unwrap();
    assert_eq!(got.unwrap().unwrap(), 7);
}

/// The target: a ten-minute batch + throttle scenario on the virtual
/// clock. Prints the real time it took (no wall-clock assertion: the machine
/// is shared); the outcome is checked exactly.
#[test]
fn ten_minute_batch_and_throttle_scenario() {
    let real = Instant::now();
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    // 600 items, one a second (throttle), batched by 100 or every 90.5 s
    // (the half second keeps flushes off the instants items arrive at).
    let (batches, report) = rt
        .block_on(
            producer::iter(0..600u32)
                .throttle((1, secs(1)), 1)
                .boundary(16)
                .batch(100, Duration::from_millis(90_500))
                .on(h.clone())
                .run_collect(),
        )
        .unwrap();
    let took = real.elapsed();
    eprintln!(
        "ten-minute batch/throttle scenario: {took:?} real, {:?} virtual",
        rt.elapsed()
    );
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    // A window opens with an item and holds it and the next 90.
    assert_eq!(sizes, [91, 91, 91, 91, 91, 91, 54]);
    assert_eq!(batches.concat(), (0..600).collect::<Vec<_>>());
    assert_eq!(report.delivered(), 7);
    assert_eq!(rt.elapsed(), secs(599));
    assert_eq!(h.live_tasks(), 0);
}

#[test]
fn kit_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<VirtualRuntime>();
    send_sync::<flowline_test::VirtualHandle>();
    send_sync::<flowline_test::Settle>();
    send_sync::<flowline_test::TestSource<u32>>();
    send::<flowline_test::TestSink<u32>>();
}

/// Code in a stage that needs tokio's context (its spawner, its IO driver)
/// works when `block_on` runs inside a tokio runtime's context, while the
/// pipeline's own timers stay virtual.
#[test]
fn block_on_inside_a_tokio_context() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _context = tokio_rt.enter();
    let rt = VirtualRuntime::new();
    let (out, report) = rt
        .block_on(
            producer::iter(1..=3u32)
                .then(|x| async move { tokio::spawn(async move { x * 2 }).await.unwrap() })
                .throttle((1, secs(3600)), 1)
                .on(rt.handle())
                .run_collect(),
        )
        .unwrap();
    assert_eq!(out, [2, 4, 6]);
    assert_eq!(report.elapsed, secs(7200));
}
