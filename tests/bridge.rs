//! Bridges: Feeder (sync → pipeline) and Drain (pipeline → sync).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use flowline::bridge::{
    self, PushError, PushTimeoutError, RecvTimeoutError, TryPushError, TryRecvError,
};
use flowline::{producer, PipelineError, StageKind};
use futures::future::{self, Either};
use support::{DropCounter, Env, Rt};

/// Generous: the machine is shared and loaded.
const LIMIT: Duration = Duration::from_secs(20);

/// An async wait the consumer can be held on: open when the flag is set.
async fn gate(env: &Env, open: &AtomicBool) {
    while !open.load(SeqCst) {
        env.sleep(Duration::from_millis(1)).await;
    }
}

fn many_feeders_deliver_every_item_once_in_order(rt: Rt) {
    const THREADS: u64 = 6;
    const ITEMS: u64 = 2_500;
    rt.block_on(|env| async move {
        for capacity in [1, 7, 256] {
            let (feeder, pipeline) = bridge::feeder::<(u64, u64)>(capacity);
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let feeder = feeder.clone();
                    thread::spawn(move || {
                        for i in 0..ITEMS {
                            feeder.push((t, i)).unwrap();
                        }
                    })
                })
                .collect();
            drop(feeder);
            let (items, report) = pipeline
                .map(|x| x)
                .boundary(capacity)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(items.len() as u64, THREADS * ITEMS, "capacity {capacity}");
            let mut next = vec![0u64; THREADS as usize];
            for (t, i) in items {
                assert_eq!(i, next[t as usize], "feeder {t} out of order");
                next[t as usize] += 1;
            }
            assert!(next.iter().all(|&n| n == ITEMS));
            assert_eq!(report.stages[0].name, "feeder#0");
            assert_eq!(report.stages[0].kind, StageKind::Bridge);
            assert_eq!(report.stages[0].items_out, THREADS * ITEMS);
            assert_eq!(report.delivered(), THREADS * ITEMS);
        }
    });
}

fn backpressure_blocks_pusher_until_consumer_catches_up(rt: Rt) {
    const CAPACITY: usize = 4;
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<usize>(CAPACITY);
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicBool::new(false));
        let pusher = {
            let accepted = accepted.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    feeder.push(i).unwrap();
                    accepted.fetch_add(1, SeqCst);
                }
            })
        };
        let items = Mutex::new(Vec::new());
        // The consumer holds the first item until the gate opens.
        let run = pipeline.on_runtime(env.runtime.clone()).run_for_each(|x| {
            items.lock().unwrap().push(x);
            gate(&env, &open)
        });
        let check = async {
            assert!(
                env.eventually(LIMIT, || accepted.load(SeqCst) >= CAPACITY)
                    .await
            );
            env.sleep(Duration::from_millis(100)).await;
            let stalled = accepted.load(SeqCst);
            // the item held + the rest of the batch taken + a full queue
            assert!(
                stalled <= 2 * CAPACITY,
                "pushed {stalled} past a stalled consumer"
            );
            env.sleep(Duration::from_millis(50)).await;
            assert_eq!(accepted.load(SeqCst), stalled, "pusher was not blocked");
            assert!(!pusher.is_finished());
            open.store(true, SeqCst);
            assert!(env.eventually(LIMIT, || pusher.is_finished()).await);
        };
        let (report, ()) = futures::join!(run, check);
        assert_eq!(report.unwrap().delivered(), 100);
        pusher.join().unwrap();
        let items = items.into_inner().unwrap();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    });
}

/// Each pusher pushes 0.. until refused: returns (accepted, the refused item).
fn push_until_refused(feeder: bridge::Feeder<(usize, usize)>, t: usize) -> (usize, usize) {
    let mut i = 0;
    loop {
        match feeder.push((t, i)) {
            Ok(()) => i += 1,
            Err(PushError((tt, refused))) => {
                assert_eq!(tt, t);
                return (i, refused);
            }
        }
    }
}

fn close_wakes_blocked_pushers_with_their_items(rt: Rt) {
    const CAPACITY: usize = 3;
    const THREADS: usize = 4;
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<(usize, usize)>(CAPACITY);
        let pushers: Vec<_> = (0..THREADS)
            .map(|t| {
                let feeder = feeder.clone();
                thread::spawn(move || push_until_refused(feeder, t))
            })
            .collect();
        // Nobody consumes: all pushers end up blocked on a full feeder.
        assert!(env.eventually(LIMIT, || feeder.len() == CAPACITY).await);
        env.sleep(Duration::from_millis(100)).await;
        assert!(pushers.iter().all(|p| !p.is_finished()));
        assert!(feeder.close());
        assert!(
            env.eventually(LIMIT, || pushers.iter().all(|p| p.is_finished()))
                .await
        );
        let outcomes: Vec<(usize, usize)> =
            pushers.into_iter().map(|p| p.join().unwrap()).collect();
        for &(accepted, refused) in &outcomes {
            assert_eq!(refused, accepted, "the refused item is the next one");
        }
        let accepted: usize = outcomes.iter().map(|o| o.0).sum();
        assert_eq!(accepted, CAPACITY);
        // What was accepted before the close is still delivered, nothing else.
        let (items, _) = pipeline
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(items.len(), accepted);
        for (t, &(n, _)) in outcomes.iter().enumerate() {
            let mine: Vec<usize> = items.iter().filter(|x| x.0 == t).map(|x| x.1).collect();
            assert_eq!(mine, (0..n).collect::<Vec<_>>());
        }
        assert_eq!(feeder.push((9, 9)), Err(PushError((9, 9))));
    });
}

fn dropping_the_pipeline_refuses_pushes(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(1);
        let open = AtomicBool::new(false);
        let blocked = {
            let feeder = feeder.clone();
            thread::spawn(move || {
                let mut pushed = 0;
                for i in 0..10 {
                    match feeder.push(i) {
                        Ok(()) => pushed += 1,
                        Err(PushError(item)) => return (pushed, item),
                    }
                }
                (pushed, 99)
            })
        };
        let run = pipeline
            .boundary(1)
            .on_runtime(env.runtime.clone())
            .run_for_each(|_| gate(&env, &open));
        // Run a while, with the consumer stuck, then drop the run.
        match future::select(
            std::pin::pin!(run),
            std::pin::pin!(env.sleep(Duration::from_millis(100))),
        )
        .await
        {
            Either::Left(_) => panic!("the run cannot end while the feeder is open"),
            Either::Right(_) => {}
        }
        assert!(env.eventually(LIMIT, || blocked.is_finished()).await);
        let (pushed, refused) = blocked.join().unwrap();
        assert_eq!(refused, pushed, "the refused push hands back its item");
        assert!(feeder.is_closed());
        assert_eq!(feeder.push(42), Err(PushError(42)));
        assert_eq!(feeder.try_push(43), Err(TryPushError::Closed(43)));
    });
}

fn try_push_full_and_closed(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<&str>(2);
        assert_eq!(feeder.try_push("a"), Ok(()));
        assert_eq!(feeder.try_push("b"), Ok(()));
        assert_eq!(feeder.try_push("c"), Err(TryPushError::Full("c")));
        assert_eq!(feeder.len(), 2);
        assert!(feeder.close());
        assert!(!feeder.close());
        assert_eq!(feeder.try_push("d"), Err(TryPushError::Closed("d")));
        let (items, report) = pipeline
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(items, ["a", "b"]);
        assert_eq!(report.delivered(), 2);
    });
}

fn push_timeout_times_out_and_succeeds(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(1);
        feeder.push(1).unwrap();
        let start = Instant::now();
        let full = feeder.push_timeout(2, Duration::from_millis(50));
        assert_eq!(full, Err(PushTimeoutError::Timeout(2)));
        assert!(start.elapsed() >= Duration::from_millis(45));
        // With a consumer, a generous timeout succeeds.
        let pusher = {
            let feeder = feeder.clone();
            thread::spawn(move || {
                let r = (2..=50)
                    .map(|i| feeder.push_timeout(i, LIMIT))
                    .collect::<Vec<_>>();
                feeder.close();
                r
            })
        };
        drop(feeder);
        let (items, _) = pipeline
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert!(pusher.join().unwrap().iter().all(Result::is_ok));
        assert_eq!(items, (1..=50).collect::<Vec<_>>());
        // Closed while waiting.
        let (feeder, _pipeline) = bridge::feeder::<u32>(1);
        feeder.push(1).unwrap();
        let closer = feeder.clone();
        let waiter = thread::spawn(move || feeder.push_timeout(2, LIMIT));
        thread::sleep(Duration::from_millis(30));
        closer.close();
        assert_eq!(waiter.join().unwrap(), Err(PushTimeoutError::Closed(2)));
    });
}

/// Runs `f` on a thread of its own; the future resolves to its result
/// without a timer, so a virtual clock sees only the thread's own waits.
fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    async move { rx.await.expect("the thread panicked") }
}

/// How long the timeout tests wait: ten seconds of virtual time take none.
fn timeout_for(env: &Env) -> Duration {
    if env.is_virtual() {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(50)
    }
}

/// Once the run has started, `push_timeout` times on the run's clock: ten
/// virtual seconds on the virtual clock, exactly.
fn push_timeout_times_on_the_run_s_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let timeout = timeout_for(&env);
        let waited = push_timeout_case(&env, timeout).await;
        if env.is_virtual() {
            assert_eq!(waited, timeout);
        } else {
            assert!(waited >= timeout, "{waited:?}");
        }
    });
}

/// On tokio's paused clock too: ten seconds of tokio time, no real ones.
#[test]
fn push_timeout_times_on_tokio_s_paused_clock() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let env = Env {
        kind: Rt::Tokio,
        runtime: Some(Arc::new(flowline::tokio::TokioRuntime::from_handle(
            rt.handle().clone(),
        ))),
    };
    let waited = rt.block_on(push_timeout_case(&env, Duration::from_secs(10)));
    // Tokio's timers fire on whole milliseconds.
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_millis(10_001),
        "{waited:?}"
    );
}

/// Starts a run whose consumer holds item 1, fills the feeder from a thread
/// and returns how long, on the run's clock, a `push_timeout(timeout)` then
/// took to time out.
async fn push_timeout_case(env: &Env, timeout: Duration) -> Duration {
    let (feeder, pipeline) = bridge::feeder::<u32>(1);
    let (open, gate) = futures::channel::oneshot::channel::<()>();
    let gate = Mutex::new(Some(gate));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer_seen = seen.clone();
    // Item 1 is held (no timer) until the test has its answer.
    let run = pipeline
        .on_runtime(env.runtime.clone())
        .run_for_each(move |x| {
            consumer_seen.lock().unwrap().push(x);
            let gate = gate.lock().unwrap().take();
            async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
            }
        });
    let clock = env.clock();
    let pusher = on_thread(move || {
        feeder.push(1).unwrap();
        // Room for 2 once the run took 1: the run has started.
        feeder.push(2).unwrap();
        let start = clock.now();
        let full = feeder.push_timeout(3, timeout);
        (full, clock.now() - start)
    });
    let check = async {
        let (full, waited) = pusher.await;
        assert_eq!(full, Err(PushTimeoutError::Timeout(3)));
        open.send(()).unwrap();
        waited
    };
    let (report, waited) = futures::join!(run, check);
    assert_eq!(report.unwrap().delivered(), 2);
    assert_eq!(*seen.lock().unwrap(), [1, 2]);
    waited
}

/// `recv_timeout` times on the run's clock: ten virtual seconds on the
/// virtual clock, exactly; then an item pushed arrives.
fn recv_timeout_times_on_the_run_s_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(4);
        let mut drain = pipeline.on_runtime(env.runtime.clone()).into_drain(4);
        let (clock, timeout) = (env.clock(), timeout_for(&env));
        let (empty, waited, next, report) = on_thread(move || {
            let start = clock.now();
            let empty = drain.recv_timeout(timeout);
            let waited = clock.now() - start;
            feeder.push(7).unwrap();
            let next = drain.recv_timeout(LIMIT);
            drop(feeder);
            (empty, waited, next, drain.finish())
        })
        .await;
        assert_eq!((empty, next), (Err(RecvTimeoutError::Timeout), Ok(7)));
        if env.is_virtual() {
            assert_eq!(waited, timeout);
        } else {
            assert!(waited >= timeout, "{waited:?}");
        }
        assert_eq!(report.unwrap().delivered(), 1);
    });
}

/// The asyncio pitfall: pushes landing between two wake-ups of the consumer
/// must all be delivered now, not when some later push wakes it again.
fn bursts_between_wakeups_are_delivered_in_full(rt: Rt) {
    rt.block_on(|env| async move {
        for boundary in [false, true] {
            let (feeder, pipeline) = bridge::feeder::<u32>(256);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let pusher = {
                let seen = seen.clone();
                thread::spawn(move || {
                    let mut next = 0u32;
                    for burst in [1, 2, 100, 1, 1, 2, 100, 2, 1, 100, 100, 2] {
                        // The consumer has seen everything: it is asleep now.
                        for _ in 0..burst {
                            feeder.push(next).unwrap();
                            next += 1;
                        }
                        let start = Instant::now();
                        while seen.lock().unwrap().len() < next as usize {
                            assert!(
                                start.elapsed() < LIMIT,
                                "burst of {burst}: {} of {next} items seen; the rest is stranded",
                                seen.lock().unwrap().len()
                            );
                            thread::sleep(Duration::from_micros(200));
                        }
                    }
                    next
                })
            };
            let record = seen.clone();
            let pipeline = pipeline.on_runtime(env.runtime.clone());
            let run = if boundary {
                Either::Left(pipeline.boundary(4).run_for_each(|x| {
                    record.lock().unwrap().push(x);
                    async {}
                }))
            } else {
                Either::Right(pipeline.run_for_each(|x| {
                    record.lock().unwrap().push(x);
                    async {}
                }))
            };
            let report = run.await.unwrap();
            let total = pusher.join().unwrap();
            assert_eq!(*seen.lock().unwrap(), (0..total).collect::<Vec<_>>());
            assert_eq!(report.delivered(), u64::from(total));
        }
    });
}

fn send_waits_without_blocking(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(1);
        let producer = async move {
            for i in 0..500 {
                feeder.send(i).await.unwrap();
            }
        };
        let ((items, _), ()) = futures::join!(
            async {
                pipeline
                    .boundary(2)
                    .on_runtime(env.runtime.clone())
                    .run_collect()
                    .await
                    .unwrap()
            },
            producer
        );
        assert_eq!(items, (0..500).collect::<Vec<_>>());
        let (feeder, pipeline) = bridge::feeder::<u32>(1);
        drop(pipeline);
        assert_eq!(feeder.send(5).await, Err(PushError(5)));
    });
}

fn drain_ends_after_last_item(rt: Rt) {
    rt.block_on(|env| async move {
        let drain = producer::iter(0..10_000u64)
            .map(|x| x * 2)
            .boundary(16)
            .on_runtime(env.runtime.clone())
            .into_drain(8);
        let reader = thread::spawn(move || {
            let mut drain = drain;
            let items: Vec<u64> = drain.by_ref().collect();
            assert_eq!(drain.next(), None);
            assert_eq!(drain.try_recv(), Err(TryRecvError::Ended));
            (items, drain.finish())
        });
        assert!(env.eventually(LIMIT, || reader.is_finished()).await);
        let (items, report) = reader.join().unwrap();
        assert_eq!(items, (0..10_000).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(report.unwrap().delivered(), 10_000);
    });
}

fn drain_reads_a_feeder_round_trip(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(4);
        let mut drain = pipeline
            .map(|x| x + 1)
            .on_runtime(env.runtime.clone())
            .into_drain(4);
        let reader = thread::spawn(move || {
            assert_eq!(drain.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(
                drain.recv_timeout(Duration::from_millis(20)),
                Err(RecvTimeoutError::Timeout)
            );
            for i in 0..1000 {
                feeder.push(i).unwrap();
                assert_eq!(drain.recv_timeout(LIMIT), Ok(i + 1));
            }
            drop(feeder);
            assert_eq!(drain.recv_timeout(LIMIT), Err(RecvTimeoutError::Ended));
            drain.finish()
        });
        assert!(env.eventually(LIMIT, || reader.is_finished()).await);
        assert_eq!(reader.join().unwrap().unwrap().delivered(), 1000);
    });
}

fn drain_reports_a_panic(rt: Rt) {
    rt.block_on(|env| async move {
        let drain = producer::iter(0..100u32)
            .map(|x| if x == 50 { panic!("bad item {x}") } else { x })
            .named("check")
            .on_runtime(env.runtime.clone())
            .into_drain(4);
        let reader = thread::spawn(move || {
            let mut drain = drain;
            let items: Vec<u32> = drain.by_ref().collect();
            (items, drain.finish())
        });
        assert!(env.eventually(LIMIT, || reader.is_finished()).await);
        let (items, result) = reader.join().unwrap();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
        match result {
            Err(PipelineError::Panicked { stage, message, .. }) => {
                assert_eq!(stage, "check");
                assert_eq!(message, "bad item 50");
            }
            other => panic!("unexpected: {other:?}"),
        }
    });
}

fn dropping_the_drain_cancels_the_pipeline(rt: Rt) {
    rt.block_on(|env| async move {
        let live = Arc::new(AtomicUsize::new(0));
        let counted = live.clone();
        let drain = producer::generator(move |out| async move {
            let _alive = DropCounter::new(&counted);
            for i in 0u64.. {
                out.emit(i).await;
            }
        })
        .boundary(4)
        .on_runtime(env.runtime.clone())
        .into_drain(4);
        let reader = thread::spawn(move || {
            let mut drain = drain;
            let first: Vec<u64> = drain.by_ref().take(10).collect();
            drop(drain);
            first
        });
        assert!(env.eventually(LIMIT, || reader.is_finished()).await);
        assert_eq!(reader.join().unwrap(), (0..10).collect::<Vec<_>>());
        assert!(
            env.eventually(LIMIT, || live.load(SeqCst) == 0).await,
            "the pipeline outlived its Drain"
        );
    });
}

fn finish_discards_unread_items_and_reports(rt: Rt) {
    rt.block_on(|env| async move {
        let drain = producer::iter(0..1000u32)
            .on_runtime(env.runtime.clone())
            .into_drain(2);
        let reader = thread::spawn(move || {
            let mut drain = drain;
            assert_eq!(drain.next(), Some(0));
            drain.finish()
        });
        assert!(env.eventually(LIMIT, || reader.is_finished()).await);
        assert_eq!(reader.join().unwrap().unwrap().delivered(), 1000);
    });
}

/// `shutdown()` closes a feeder source although `Feeder` clones are alive:
/// a pusher blocked at that moment and every later push get their item back
/// with a closed error, the items accepted before are delivered, and the run
/// completes.
fn shutdown_closes_the_feeder_and_delivers_what_was_accepted(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(2);
        let open = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (o, s, e) = (open.clone(), seen.clone(), env.clone());
        let consumer = flowline::consumer::for_each(move |x: u32| {
            s.lock().unwrap().push(x);
            let (o, e) = (o.clone(), e.clone());
            async move {
                if x == 0 {
                    gate(&e, &o).await; // held here until the test opens it
                }
            }
        });
        feeder.try_push(0).unwrap();
        feeder.try_push(1).unwrap();
        let handle = pipeline.on_runtime(env.runtime.clone()).spawn(consumer);
        let stop = handle.stop_handle();
        let checks = async {
            // The feeder took [0, 1]; the consumer holds 0. Fill the queue again.
            assert!(env.eventually(LIMIT, || feeder.is_empty()).await);
            feeder.try_push(2).unwrap();
            feeder.try_push(3).unwrap();
            let blocked = {
                let feeder = feeder.clone();
                thread::spawn(move || feeder.push(4))
            };
            stop.shutdown(); // the consumer is still held on item 0
            assert!(
                env.eventually(LIMIT, || blocked.is_finished()).await,
                "a push blocked at shutdown must fail at once"
            );
            assert_eq!(blocked.join().unwrap(), Err(PushError(4)));
            assert!(feeder.is_closed());
            assert_eq!(feeder.try_push(5), Err(TryPushError::Closed(5)));
            assert_eq!(feeder.push(6), Err(PushError(6)));
            assert_eq!(feeder.send(7).await, Err(PushError(7)));
            open.store(true, SeqCst);
        };
        // Awaited together: a runtime-free run progresses only while its
        // handle is awaited.
        let (report, ()) = futures::join!(handle, checks);
        let report = report.expect("a shut-down feeder run completes");
        assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(report.stages[0].items_out, 4);
        assert_eq!(report.delivered(), 4);
        drop(feeder); // alive all along: shutdown did not wait for it
    });
}

/// `shutdown()` also ends a feeder pipeline asleep on an empty queue.
fn shutdown_ends_an_idle_feeder_pipeline(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<u32>(4);
        let handle = pipeline
            .map(|x| x * 10)
            .on_runtime(env.runtime.clone())
            .spawn(flowline::consumer::count());
        let (monitor, stop) = (handle.monitor(), handle.stop_handle());
        let run = futures::future::join(handle, async {
            for i in 0..3 {
                feeder.push(i).unwrap(); // room for 4: never blocks
            }
            assert!(
                env.eventually(LIMIT, || monitor.snapshot().stages[0].stage.items_out == 3)
                    .await
            );
            stop.shutdown();
        });
        let report = match future::select(Box::pin(run), Box::pin(env.sleep(LIMIT))).await {
            Either::Left(((report, ()), _)) => report.unwrap(),
            Either::Right(_) => panic!("shutdown waited for the live feeder"),
        };
        assert_eq!(report.delivered(), 3);
        assert_eq!(feeder.push(9), Err(PushError(9)));
    });
}

/// A `Feeder` is a `Sink`: an async producer forwards a stream into it with
/// backpressure, and closing the sink ends the pipeline; into a closed
/// feeder, the item comes back in the error.
fn feeder_is_a_sink(rt: Rt) {
    rt.block_on(|env| async move {
        use futures::{SinkExt as _, StreamExt as _};
        let (feeder, pipeline) = bridge::feeder::<u32>(2);
        let produce = async move {
            let mut feeder = feeder;
            let mut items = futures::stream::iter(0..100u32).map(Ok);
            feeder.send_all(&mut items).await.unwrap();
            futures::SinkExt::close(&mut feeder).await.unwrap();
        };
        let (result, ()) = futures::join!(
            pipeline.on_runtime(env.runtime.clone()).run_collect(),
            produce
        );
        let (items, report) = result.unwrap();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
        assert_eq!(report.delivered(), 100);

        let (mut feeder, pipeline) = bridge::feeder::<u32>(2);
        drop(pipeline);
        let err = futures::SinkExt::send(&mut feeder, 7).await.unwrap_err();
        assert_eq!(err.0, 7);
    });
}

/// `run_fold` over a feeder: each pusher's items arrive in push order, and a
/// panic in the fold leaves the feeder charged with the items the fold
/// reached, though the feed took all ten from the queue at once.
fn fold_keeps_push_order_and_counts_what_it_reached(rt: Rt) {
    const ITEMS: u32 = 5_000;
    rt.block_on(|env| async move {
        let (feeder, pipeline) = bridge::feeder::<(usize, u32)>(64);
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let feeder = feeder.clone();
                thread::spawn(move || (0..ITEMS).for_each(|i| feeder.push((t, i)).unwrap()))
            })
            .collect();
        drop(feeder);
        let (next, report) = pipeline
            .on_runtime(env.runtime.clone())
            .run_fold([0u32; 2], |mut next, (t, i)| {
                assert_eq!(i, next[t], "pusher {t} out of order");
                next[t] += 1;
                next
            })
            .await
            .unwrap();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(next, [ITEMS, ITEMS]);
        assert_eq!(report.stages[0].items_out, 2 * u64::from(ITEMS));
        assert_eq!(report.delivered(), 2 * u64::from(ITEMS));

        // Ten items queued, taken in one step; the fold fails on the fourth.
        let (feeder, pipeline) = bridge::feeder::<u32>(16);
        (0..10).for_each(|i| feeder.push(i).unwrap());
        drop(feeder);
        let err = pipeline
            .on_runtime(env.runtime.clone())
            .run_fold(0, |sum, x| {
                if x == 3 {
                    panic!("bad item {x}")
                } else {
                    sum + x
                }
            })
            .await
            .unwrap_err();
        match err {
            PipelineError::Panicked {
                message, report, ..
            } => {
                assert_eq!(message, "bad item 3");
                assert_eq!(report.stages[0].name, "feeder#0");
                assert_eq!(report.stages[0].items_out, 4);
            }
            other => panic!("unexpected: {other:?}"),
        }
    });
}

fn push_all_delivers_in_order_and_hands_back_what_it_did_not_push(rt: Rt) {
    const ITEMS: u32 = 2_000;
    rt.block_on(|env| async move {
        // Batches of 37 into room for 8, from two threads.
        let (feeder, pipeline) = bridge::feeder::<(usize, u32)>(8);
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let feeder = feeder.clone();
                thread::spawn(move || {
                    let items: Vec<u32> = (0..ITEMS).collect();
                    for batch in items.chunks(37) {
                        feeder.push_all(batch.iter().map(|&i| (t, i))).unwrap();
                    }
                })
            })
            .collect();
        drop(feeder);
        let (items, report) = pipeline
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        threads.into_iter().for_each(|t| t.join().unwrap());
        for t in 0..2 {
            let mine: Vec<u32> = items.iter().filter(|x| x.0 == t).map(|x| x.1).collect();
            assert_eq!(mine, (0..ITEMS).collect::<Vec<_>>(), "pusher {t}");
        }
        assert_eq!(report.stages[0].items_out, 2 * u64::from(ITEMS));

        // Closed while blocked on a full feeder: what was not pushed comes
        // back, in order; what was is delivered.
        let (feeder, pipeline) = bridge::feeder::<u32>(4);
        let closer = feeder.clone();
        let pusher = thread::spawn(move || feeder.push_all(0..10));
        assert!(env.eventually(LIMIT, || closer.len() == 4).await);
        assert!(closer.close());
        let rest = pusher.join().unwrap().unwrap_err().into_inner();
        assert_eq!(rest, (4..10).collect::<Vec<_>>());
        drop(closer);
        let (items, _) = pipeline
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(items, [0, 1, 2, 3]);
    });
}

on_all_runtimes!(
    push_all_delivers_in_order_and_hands_back_what_it_did_not_push,
    fold_keeps_push_order_and_counts_what_it_reached,
    feeder_is_a_sink,
    shutdown_closes_the_feeder_and_delivers_what_was_accepted,
    shutdown_ends_an_idle_feeder_pipeline,
    dropping_the_drain_cancels_the_pipeline,
    finish_discards_unread_items_and_reports,
    many_feeders_deliver_every_item_once_in_order,
    backpressure_blocks_pusher_until_consumer_catches_up,
    close_wakes_blocked_pushers_with_their_items,
    dropping_the_pipeline_refuses_pushes,
    try_push_full_and_closed,
    push_timeout_times_out_and_succeeds,
    bursts_between_wakeups_are_delivered_in_full,
    send_waits_without_blocking,
    drain_ends_after_last_item,
    drain_reads_a_feeder_round_trip,
    drain_reports_a_panic,
    push_timeout_times_on_the_run_s_clock,
    recv_timeout_times_on_the_run_s_clock,
);
on_virtual_clock!(
    push_timeout_times_on_the_run_s_clock,
    recv_timeout_times_on_the_run_s_clock,
);

#[test]
#[should_panic(expected = "feeder capacity must be at least 1, got 0")]
fn feeder_capacity_zero_panics() {
    let _ = bridge::feeder::<u8>(0);
}

#[test]
#[should_panic(expected = "into_drain capacity must be at least 1, got 0")]
fn drain_capacity_zero_panics() {
    let _ = producer::iter([1]).into_drain(0);
}

#[test]
fn bridge_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<bridge::Feeder<String>>();
    send::<bridge::Drain<String>>();
    send::<bridge::Feed<String>>();
    send_sync::<PushError<String>>();
    send_sync::<TryPushError<String>>();
    let (feeder, _p) = bridge::feeder::<String>(1);
    fn send_future<F: std::future::Future + Send>(_: F) {}
    send_future(feeder.send(String::new()));
}
