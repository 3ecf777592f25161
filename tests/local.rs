//! `!Send` pipelines: items and closures that are not `Send` (an `Rc`, a
//! `RefCell` of app state) run in fused stages and across `boundary_local`,
//! runtime-free, on smol's `LocalExecutor` and on tokio's `LocalSet`.
//!
//! Each test body runs on five executors (see [`Exec`]): runtime-free;
//! inside `SmolRuntime::run_local` / `TokioRuntime::run_local`, where the
//! local stage tasks are spawned on the local executor; and on a smol
//! `LocalExecutor` / a multi-threaded tokio runtime without that scope,
//! where they are polled by the run's own future.
//! One more runs on the test kit's virtual clock.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flowline::runtime::{BlockingFn, Runtime, Sleep};
use flowline::smol::SmolRuntime;
use flowline::tokio::TokioRuntime;
use flowline::{producer, Overflow, PipelineError, StageKind};
use futures::future::{BoxFuture, LocalBoxFuture};
use futures::{Sink, Stream};

/// Where a test body runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exec {
    /// `futures::executor::block_on`, `.on_runtime(None)`.
    Free,
    /// `SmolRuntime::run_local` on a `LocalExecutor`.
    SmolLocal,
    /// A `LocalExecutor` without `run_local`: the default smol runtime.
    SmolInline,
    /// `TokioRuntime::run_local` on a `LocalSet` (current-thread runtime).
    TokioLocal,
    /// A multi-threaded tokio runtime's `block_on`, no `LocalSet`.
    TokioInline,
}

const ALL: [Exec; 5] = [
    Exec::Free,
    Exec::SmolLocal,
    Exec::SmolInline,
    Exec::TokioLocal,
    Exec::TokioInline,
];

impl Exec {
    /// Whether local stage tasks are spawned on a local executor here.
    fn spawns_locally(self) -> bool {
        matches!(self, Exec::SmolLocal | Exec::TokioLocal)
    }
}

/// What a body gets: the runtime to put its pipelines on (one that counts
/// the tasks it spawned locally, for [`run_on`] to return).
#[derive(Clone)]
struct Env {
    kind: Exec,
    runtime: Option<Arc<dyn Runtime>>,
}

/// A runtime that forwards to another and counts accepted local spawns.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Runtime>,
    local_spawns: Arc<AtomicUsize>,
}

impl Runtime for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        self.inner.spawn_boxed(task)
    }
    fn spawn_local_boxed(
        &self,
        task: LocalBoxFuture<'static, ()>,
    ) -> Result<(), LocalBoxFuture<'static, ()>> {
        self.inner.spawn_local_boxed(task)?;
        self.local_spawns.fetch_add(1, SeqCst);
        Ok(())
    }
    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        self.inner.spawn_blocking_boxed(f)
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.inner.sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        self.inner.now()
    }
}

/// Runs `body` on `kind`'s executor, on this thread.
fn run_on<F, Fut>(kind: Exec, body: F) -> usize
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let local_spawns = Arc::new(AtomicUsize::new(0));
    let counting = |inner: Arc<dyn Runtime>| -> Option<Arc<dyn Runtime>> {
        Some(Arc::new(Counting {
            inner,
            local_spawns: local_spawns.clone(),
        }))
    };
    match kind {
        Exec::Free => {
            let env = Env {
                kind,
                runtime: None,
            };
            futures::executor::block_on(body(env));
        }
        Exec::SmolLocal | Exec::SmolInline => {
            let env = Env {
                kind,
                runtime: counting(Arc::new(SmolRuntime::new())),
            };
            let ex = Rc::new(smol::LocalExecutor::new());
            if kind == Exec::SmolLocal {
                smol::block_on(SmolRuntime::run_local(&ex, body(env)));
            } else {
                smol::block_on(ex.run(body(env)));
            }
        }
        Exec::TokioLocal => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let env = Env {
                kind,
                runtime: counting(Arc::new(TokioRuntime::from_handle(rt.handle().clone()))),
            };
            let local = tokio::task::LocalSet::new();
            rt.block_on(TokioRuntime::run_local(&local, body(env)));
        }
        Exec::TokioInline => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let env = Env {
                kind,
                runtime: counting(Arc::new(TokioRuntime::from_handle(rt.handle().clone()))),
            };
            rt.block_on(body(env));
        }
    }
    local_spawns.load(SeqCst)
}

/// Set when dropped: tells whether the task holding it has stopped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// An endless producer of `Rc` items that holds `flag` until it is dropped.
fn endless(flag: DropFlag) -> impl Stream<Item = Rc<u64>> {
    futures::stream::unfold((0u64, flag), |(n, flag)| async move {
        Some((Rc::new(n), (n + 1, flag)))
    })
}

/// A sink that records what it got, and whether it was closed.
#[derive(Default)]
struct Recorder {
    got: Rc<RefCell<Vec<u64>>>,
    closed: Rc<Cell<bool>>,
    fail_at: Option<u64>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Sink<Rc<u64>> for Recorder {
    type Error = std::io::Error;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Rc<u64>) -> Result<(), Self::Error> {
        if Some(*item) == self.fail_at {
            return Err(std::io::Error::other("disk full"));
        }
        self.got.borrow_mut().push(*item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.closed.set(true);
        Poll::Ready(Ok(()))
    }
}

/// Yields to the executor until `cond` holds (at most a million times, so a
/// stalled run fails the test instead of hanging it).
async fn yield_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..1_000_000 {
        if cond() {
            return;
        }
        smol::future::yield_now().await;
    }
    panic!("the condition never held");
}

fn assert_balanced(report: &flowline::RunReport) {
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
    }
}

#[test]
fn rc_items_and_refcell_closures_run_fused_without_any_task() {
    for kind in ALL {
        let spawned = run_on(kind, |env| async move {
            let seen = Rc::new(RefCell::new(Vec::new()));
            let log = seen.clone();
            let (out, report) = producer::iter((0..5u32).map(Rc::new))
                .map(|x| Rc::new(*x * 2))
                .inspect(move |x| log.borrow_mut().push(**x))
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out.iter().map(|x| **x).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
            assert_eq!(*seen.borrow(), [0, 2, 4, 6, 8]);
            assert_eq!(report.delivered(), 5);
        });
        assert_eq!(spawned, 0, "{kind:?}");
    }
}

#[test]
fn rc_items_cross_two_local_boundaries_in_order_with_exact_counts() {
    for kind in ALL {
        let spawned = run_on(kind, |env| async move {
            // App state on both sides of each boundary.
            let produced = Rc::new(Cell::new(0u32));
            let counter = produced.clone();
            let odd_seen = Rc::new(RefCell::new(Vec::new()));
            let log = odd_seen.clone();
            let (out, report) = producer::iter(0..1000u32)
                .map(move |x| {
                    counter.set(counter.get() + 1);
                    Rc::new(x)
                })
                .boundary_local(16)
                .named("first")
                .map(|x| Rc::new(RefCell::new(*x + 1)))
                .boundary_local(8)
                .named("second")
                .filter(|x| *x.borrow() % 2 == 1)
                .inspect(move |x| log.borrow_mut().push(*x.borrow()))
                .map(|x| x.take())
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            let odds: Vec<u32> = (1..=1000).filter(|x| x % 2 == 1).collect();
            assert_eq!(out, odds, "{:?}", env.kind);
            assert_eq!(*odd_seen.borrow(), odds);
            assert_eq!(produced.get(), 1000);
            for name in ["first", "second"] {
                let stage = report.stage(name).unwrap();
                assert_eq!(stage.kind, StageKind::Boundary);
                assert_eq!((stage.items_in, stage.items_out), (1000, 1000), "{name}");
            }
            assert_eq!(report.delivered(), 500);
            assert_balanced(&report);
        });
        let expected = if kind.spawns_locally() { 2 } else { 0 };
        assert_eq!(spawned, expected, "{kind:?}");
    }
}

/// Both sides of a local boundary (or backpressure buffer) move whole
/// batches through the stages that can hand them over, as a `boundary`'s
/// do: an `inspect` before a `filter_map` sees several items before the
/// `filter_map` sees the first of them; item by item they alternate.
#[test]
fn local_boundaries_move_whole_batches_on_both_sides() {
    fn batched(log: &[char]) -> bool {
        log.windows(4).any(|w| w == ['a'; 4])
    }
    for kind in ALL {
        for buffer in [false, true] {
            run_on(kind, |env| async move {
                let up = Rc::new(RefCell::new(Vec::new()));
                let down = Rc::new(RefCell::new(Vec::new()));
                let (u1, u2, d1, d2) = (up.clone(), up.clone(), down.clone(), down.clone());
                let p = producer::iter(0..256u32)
                    .map(Rc::new)
                    .inspect(move |_| u1.borrow_mut().push('a'))
                    .filter_map(move |x| {
                        u2.borrow_mut().push('b');
                        Some(x)
                    });
                let p = if buffer {
                    p.buffer_local(1024, Overflow::Backpressure)
                } else {
                    p.boundary_local(1024)
                };
                let (out, report) = p
                    .inspect(move |_| d1.borrow_mut().push('a'))
                    .filter_map(move |x| {
                        d2.borrow_mut().push('b');
                        (*x % 2 == 0).then_some(*x)
                    })
                    .on_runtime(env.runtime.clone())
                    .run_collect()
                    .await
                    .unwrap();
                assert_eq!(out, (0..256).step_by(2).collect::<Vec<u32>>());
                assert_eq!(report.stages[4].items_out, 256, "{report}");
                assert_balanced(&report);
                let (up, down) = (up.borrow(), down.borrow());
                assert_eq!((up.len(), down.len()), (512, 512));
                assert!(batched(&up), "{:?} upstream: {up:?}", env.kind);
                assert!(batched(&down), "{:?} downstream: {down:?}", env.kind);
            });
        }
    }
}

#[test]
fn send_boundaries_upstream_of_a_local_one_keep_running_on_the_runtime() {
    for kind in ALL {
        let spawned = run_on(kind, |env| async move {
            let total = Rc::new(Cell::new(0u64));
            let add = total.clone();
            let (n, report) = producer::iter(0..300u64)
                .map(|x| x * 3)
                .boundary(8) // `Send`: a task on the runtime (inline when free)
                .map(Rc::new)
                .boundary_local(4)
                .map(move |x| {
                    add.set(add.get() + *x);
                    x
                })
                .on_runtime(env.runtime.clone())
                .run_count()
                .await
                .unwrap();
            assert_eq!(n, 300);
            assert_eq!(total.get(), 3 * (0..300).sum::<u64>());
            assert_eq!(report.stage("boundary#2").unwrap().items_out, 300);
            assert_eq!(report.stage("boundary#4").unwrap().items_out, 300);
            assert_balanced(&report);
        });
        let expected = if kind.spawns_locally() { 1 } else { 0 };
        assert_eq!(spawned, expected, "{kind:?}");
    }
}

#[test]
fn a_panic_upstream_of_a_local_boundary_fails_the_run_and_stops_its_task() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let dropped = Rc::new(Cell::new(false));
            let sink = Recorder::default();
            let (got, closed) = (sink.got.clone(), sink.closed.clone());
            let err = producer::from_stream(endless(DropFlag(dropped.clone())))
                .map(|x| {
                    assert!(*x != 40, "item 40 is cursed");
                    x
                })
                .named("curse")
                .boundary_local(4)
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, PipelineError::Panicked { message, .. } if message == "item 40 is cursed"),
                "{err:?}"
            );
            assert_eq!(err.stage(), "curse");
            // The run returned after its local task stopped.
            assert!(dropped.get(), "{:?}: upstream task still alive", env.kind);
            // A failed run's consumer is dropped, not closed.
            assert!(!closed.get());
            let got = got.borrow().clone();
            assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
            assert!(got.len() <= 40);
            let report = err.report();
            assert_eq!(report.delivered(), got.len() as u64);
            assert_eq!(report.stage("curse").unwrap().items_out, 40);
            assert_balanced(report);
        });
    }
}

#[test]
fn a_failing_consumer_cancels_the_local_upstream_before_the_run_returns() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let dropped = Rc::new(Cell::new(false));
            let sink = Recorder {
                fail_at: Some(25),
                ..Recorder::default()
            };
            let (got, closed) = (sink.got.clone(), sink.closed.clone());
            let err = producer::from_stream(endless(DropFlag(dropped.clone())))
                .boundary_local(8)
                .consumer_named("archive")
                .on_runtime(env.runtime.clone())
                .run(sink)
                .await
                .unwrap_err();
            assert!(matches!(err, PipelineError::Failed { .. }), "{err:?}");
            assert_eq!(err.stage(), "archive");
            assert!(err.to_string().contains("disk full"), "{err}");
            assert!(dropped.get(), "{:?}: upstream task still alive", env.kind);
            assert!(!closed.get());
            assert_eq!(*got.borrow(), (0..25).collect::<Vec<_>>());
            let report = err.report();
            assert_eq!(report.delivered(), 25);
            assert_eq!(report.stage("archive").unwrap().failed, 1);
            assert_balanced(report);
        });
    }
}

#[test]
fn dropping_a_local_run_cancels_its_tasks() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let dropped = Rc::new(Cell::new(false));
            let taken = Rc::new(Cell::new(0u32));
            let count = taken.clone();
            let (enough_tx, enough_rx) = futures::channel::oneshot::channel::<()>();
            let mut enough_tx = Some(enough_tx);
            let run = producer::from_stream(endless(DropFlag(dropped.clone())))
                .boundary_local(4)
                .on_runtime(env.runtime.clone())
                .run_for_each(move |_| {
                    count.set(count.get() + 1);
                    if count.get() == 50 {
                        enough_tx.take().unwrap().send(()).unwrap();
                    }
                    async {}
                });
            match futures::future::select(Box::pin(run), enough_rx).await {
                futures::future::Either::Right((Ok(()), run)) => drop(run),
                _ => panic!("the run ended on its own"),
            }
            // A task spawned on a local executor is dropped when the
            // executor next runs it; inline ones with the run.
            for _ in 0..10 {
                if dropped.get() {
                    break;
                }
                smol::future::yield_now().await;
            }
            assert!(dropped.get(), "{:?}: upstream task still alive", env.kind);
            assert!(taken.get() >= 50);
        });
    }
}

#[test]
fn run_local_scopes_are_where_local_spawns_are_accepted() {
    let refused = |rt: &dyn Runtime| rt.spawn_local_boxed(Box::pin(async {})).is_err();
    // smol: only inside `run_local`, and only for smol.
    let ex = Rc::new(smol::LocalExecutor::new());
    assert!(refused(&SmolRuntime::new()));
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    smol::block_on(SmolRuntime::run_local(&ex, async move {
        let task = Box::pin(async move { flag.set(true) });
        assert!(SmolRuntime::new().spawn_local_boxed(task).is_ok());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(refused(&TokioRuntime::from_handle(rt.handle().clone())));
        smol::future::yield_now().await;
    }));
    assert!(ran.get());
    assert!(refused(&SmolRuntime::new()));
    // tokio: only inside `run_local`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tokio_rt = TokioRuntime::from_handle(rt.handle().clone());
    let local = tokio::task::LocalSet::new();
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    rt.block_on(async {
        assert!(refused(&tokio_rt));
    });
    rt.block_on(TokioRuntime::run_local(&local, async {
        let task = Box::pin(async move { flag.set(true) });
        assert!(tokio_rt.spawn_local_boxed(task).is_ok());
        assert!(refused(&SmolRuntime::new()));
        tokio::task::yield_now().await;
    }));
    assert!(ran.get());
}

#[test]
fn a_local_pipeline_read_as_a_stream_drives_its_local_task() {
    use futures::StreamExt as _;
    for kind in ALL {
        run_on(kind, |env| async move {
            let out: Vec<u32> = producer::iter((0..20u32).map(Rc::new))
                .boundary_local(3)
                .map(|x| *x + 1)
                .on_runtime(env.runtime.clone())
                .collect()
                .await;
            assert_eq!(out, (1..=20).collect::<Vec<_>>());
        });
    }
}

#[test]
fn a_timed_stage_batches_rc_items_after_a_local_boundary() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let (out, report) = producer::iter((0..7u32).map(Rc::new))
                .boundary_local(4)
                .batch(3, Duration::from_secs(3600))
                .map(|batch| batch.iter().map(|x| **x).collect::<Vec<_>>())
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(
                out,
                [vec![0, 1, 2], vec![3, 4, 5], vec![6]],
                "{:?}",
                env.kind
            );
            assert_eq!(report.delivered(), 3);
            assert_balanced(&report);
        });
    }
}

#[test]
fn buffer_local_keeps_or_counts_every_item() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let (out, report) = producer::iter((0..500u32).map(Rc::new))
                .buffer_local(8, Overflow::Backpressure)
                .named("kept")
                .map(|x| *x)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out, (0..500).collect::<Vec<_>>(), "{:?}", env.kind);
            assert_eq!(report.stage("kept").unwrap().dropped, 0);
            assert_eq!(report.stage("kept").unwrap().kind, StageKind::Buffer);

            let (latest, report) = producer::iter((0..300u32).map(Rc::new))
                .buffer_local(4, Overflow::DropOldest)
                .named("latest")
                .then(|x| async move {
                    // A slow consumer, on the pipeline's runtime.
                    flowline::time::sleep(Duration::from_micros(50)).await;
                    *x
                })
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            let dropped = report.stage("latest").unwrap().dropped;
            assert_eq!(latest.len() as u64 + dropped, 300);
            assert_eq!(latest.last(), Some(&299)); // the newest always survives
            assert!(latest.windows(2).all(|w| w[0] < w[1]), "{latest:?}");
            assert_balanced(&report);
        });
    }
}

#[test]
fn buffer_local_fails_the_run_when_full_under_overflow_fail() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let dropped = Rc::new(Cell::new(false));
            let err = producer::from_stream(endless(DropFlag(dropped.clone())))
                .buffer_local(4, Overflow::Fail)
                .named("strict")
                .on_runtime(env.runtime.clone())
                // Never takes an item: the queue fills up.
                .run_for_each(|_| futures::future::pending::<()>())
                .await
                .unwrap_err();
            assert!(matches!(err, PipelineError::Failed { .. }), "{err:?}");
            assert_eq!(err.stage(), "strict");
            assert!(
                err.to_string().contains("queue of 4 items is full"),
                "{err}"
            );
            assert!(dropped.get(), "{:?}: upstream task still alive", env.kind);
            let stage = err.report().stage("strict").unwrap();
            assert_eq!(stage.failed, 1);
            assert_balanced(err.report());
        });
    }
}

#[test]
fn map_concurrent_local_runs_limit_futures_and_keeps_input_order() {
    for kind in ALL {
        let spawned = run_on(kind, |env| async move {
            let (now, max) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32)));
            let (n, m) = (now.clone(), max.clone());
            let (out, report) = producer::iter(0..12u64)
                .map_concurrent_local(4, move |x| {
                    let (now, max) = (n.clone(), m.clone());
                    async move {
                        now.set(now.get() + 1);
                        max.set(max.get().max(now.get()));
                        // Later items finish first.
                        flowline::time::sleep(Duration::from_millis(12 - x)).await;
                        now.set(now.get() - 1);
                        Rc::new(x * 10)
                    }
                })
                .named("lookup")
                .map(|x| *x)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(
                out,
                (0..12).map(|x| x * 10).collect::<Vec<_>>(),
                "{:?}",
                env.kind
            );
            assert_eq!(max.get(), 4);
            assert_eq!(now.get(), 0);
            let stage = report.stage("lookup").unwrap();
            assert_eq!(
                (stage.kind, stage.items_in, stage.items_out),
                (StageKind::Concurrent, 12, 12)
            );
            assert_balanced(&report);
        });
        let expected = if kind.spawns_locally() { 1 } else { 0 };
        assert_eq!(spawned, expected, "{kind:?}");
    }
}

#[test]
fn map_concurrent_local_futures_progress_while_the_consumer_is_busy() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let done = Rc::new(Cell::new(0u32));
            let finished = done.clone();
            let seen_while_busy = Rc::new(Cell::new(0u32));
            let seen = seen_while_busy.clone();
            let (n, _) = producer::iter(0..20u32)
                .map_concurrent_local(4, move |x| {
                    let finished = finished.clone();
                    async move {
                        flowline::time::sleep(Duration::from_millis(1)).await;
                        finished.set(finished.get() + 1);
                        x
                    }
                })
                .then(move |x| {
                    let (done, seen) = (done.clone(), seen.clone());
                    async move {
                        if x == 0 {
                            // Busy on the first item until five futures have
                            // finished (or, if they stall, five seconds): with
                            // four at once, the fifth started while busy. The
                            // queue (2 × 4) holds eight results before the
                            // stage stops, so five are always reachable.
                            for _ in 0..5000 {
                                if done.get() >= 5 {
                                    break;
                                }
                                flowline::time::sleep(Duration::from_millis(1)).await;
                            }
                            seen.set(done.get());
                        }
                        x
                    }
                })
                .on_runtime(env.runtime.clone())
                .run_count()
                .await
                .unwrap();
            assert_eq!(n, 20);
            assert!(
                seen_while_busy.get() >= 5,
                "{:?}: {}",
                env.kind,
                seen_while_busy.get()
            );
        });
    }
}

#[test]
fn map_concurrent_unordered_local_yields_as_futures_finish() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let (out, report) = producer::iter([120u64, 30, 90, 60].map(Rc::new))
                .map_concurrent_unordered_local(4, |ms| async move {
                    flowline::time::sleep(Duration::from_millis(*ms)).await;
                    ms
                })
                .map(|ms| *ms)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            assert_eq!(out, [30, 60, 90, 120], "{:?}", env.kind);
            assert_eq!(report.delivered(), 4);
            assert_balanced(&report);
        });
    }
}

#[test]
fn a_panic_in_a_local_concurrent_future_names_the_stage() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let dropped = Rc::new(Cell::new(false));
            let err = producer::from_stream(endless(DropFlag(dropped.clone())))
                .map_concurrent_local(3, |x| async move {
                    assert!(*x != 7, "lookup of 7 failed");
                    x
                })
                .named("lookup")
                .on_runtime(env.runtime.clone())
                .run_count()
                .await
                .unwrap_err();
            assert!(
                matches!(&err, PipelineError::Panicked { message, .. } if message == "lookup of 7 failed"),
                "{err:?}"
            );
            assert_eq!(err.stage(), "lookup");
            assert!(dropped.get(), "{:?}: upstream task still alive", env.kind);
            assert!(err.report().delivered() <= 7);
            assert_balanced(err.report());
        });
    }
}

#[test]
fn local_stages_run_on_the_test_kits_virtual_clock() {
    // The test kit's runtime has no local spawn: the run polls the local
    // task itself, on virtual time.
    let rt = flowline_test::VirtualRuntime::new();
    let handle = rt.handle();
    let (out, report) = rt
        .block_on(
            producer::iter((0..12u64).map(Rc::new))
                .map_concurrent_local(4, |x| async move {
                    flowline::time::sleep(Duration::from_millis(10)).await;
                    x
                })
                .map(|x| *x)
                .on(handle)
                .run_collect(),
        )
        .unwrap();
    assert_eq!(out, (0..12).collect::<Vec<_>>());
    // Three rounds of four 10 ms futures.
    assert_eq!(report.elapsed, Duration::from_millis(30));
    assert_eq!(rt.elapsed(), Duration::from_millis(30));
}

#[test]
fn spawn_local_starts_a_local_run_with_a_handle_or_says_what_to_change() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let sink = Recorder::default();
            let (got, closed) = (sink.got.clone(), sink.closed.clone());
            let spawned = producer::iter((0..30u64).map(Rc::new))
                .boundary_local(4)
                .on_runtime(env.runtime.clone())
                .spawn_local(sink);
            if !env.kind.spawns_locally() {
                let err = spawned.unwrap_err();
                let name = match env.kind {
                    Exec::Free => "runtime-free",
                    Exec::SmolInline => "smol",
                    _ => "tokio",
                };
                let message = err.to_string();
                assert!(message.contains(&format!("(runtime: {name})")), "{message}");
                assert!(message.contains("SmolRuntime::run_local"), "{message}");
                assert!(got.borrow().is_empty());
                return;
            }
            let report = spawned.unwrap().await.unwrap();
            assert_eq!(*got.borrow(), (0..30).collect::<Vec<_>>());
            assert!(closed.get());
            assert_eq!(report.delivered(), 30);
            assert_balanced(&report);
        });
    }
}

#[test]
fn a_spawned_local_run_shuts_down_or_aborts_through_its_handle() {
    for kind in [Exec::SmolLocal, Exec::TokioLocal] {
        run_on(kind, |env| async move {
            // Shutdown: what the source produced is delivered, then closed.
            let dropped = Rc::new(Cell::new(false));
            let sink = Recorder::default();
            let (got, closed) = (sink.got.clone(), sink.closed.clone());
            let handle = producer::from_stream(endless(DropFlag(dropped.clone())))
                .boundary_local(4)
                .on_runtime(env.runtime.clone())
                .spawn_local(sink)
                .unwrap();
            yield_until(|| got.borrow().len() >= 20).await;
            let report = handle.shutdown().await.unwrap();
            assert!(dropped.get(), "{:?}", env.kind);
            assert!(closed.get());
            let got = got.borrow().clone();
            assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
            assert_eq!(report.delivered(), got.len() as u64);
            assert_eq!(report.stages[0].items_out, got.len() as u64);
            assert_balanced(&report);

            // Abort: the run stops, its consumer is not closed.
            let dropped = Rc::new(Cell::new(false));
            let sink = Recorder::default();
            let (got, closed) = (sink.got.clone(), sink.closed.clone());
            let handle = producer::from_stream(endless(DropFlag(dropped.clone())))
                .boundary_local(4)
                .on_runtime(env.runtime.clone())
                .spawn_local(sink)
                .unwrap();
            yield_until(|| got.borrow().len() >= 20).await;
            let report = handle.abort().await;
            assert!(dropped.get(), "{:?}", env.kind);
            assert!(!closed.get());
            assert_eq!(report.delivered(), got.borrow().len() as u64);
            assert_balanced(&report);
        });
    }
}

#[test]
#[should_panic(expected = "map_concurrent_local limit must be at least 1, got 0")]
fn a_zero_limit_local_concurrent_stage_is_rejected() {
    let _ = producer::iter(0..3u32).map_concurrent_local(0, |x| async move { x });
}

#[test]
#[should_panic(expected = "boundary_local capacity must be at least 1, got 0")]
fn a_zero_capacity_local_boundary_is_rejected() {
    let _ = producer::iter(0..3u32).boundary_local(0);
}

#[test]
fn local_boundaries_merge_with_another_pipeline() {
    for kind in ALL {
        run_on(kind, |env| async move {
            let left = producer::iter((0..50u32).map(Rc::new)).boundary_local(4);
            let right = producer::iter((100..150u32).map(Rc::new)).boundary_local(4);
            let (mut out, report) = left
                .merge(right)
                .map(|x| *x)
                .on_runtime(env.runtime.clone())
                .run_collect()
                .await
                .unwrap();
            out.sort_unstable();
            let expected: Vec<u32> = (0..50).chain(100..150).collect();
            assert_eq!(out, expected);
            assert_eq!(report.delivered(), 100);
            assert_balanced(&report);
        });
    }
}
