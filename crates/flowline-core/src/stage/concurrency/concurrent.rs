//! The engine shared by the `map_concurrent*` stages: upstream, up to
//! `limit` futures in flight and the finished results, which two parties
//! take turns to drive.
//!
//! - The stage's **task** (spawned on the runtime, or polled inside the
//!   pipeline when it has none) drives the engine whenever a future or
//!   upstream wakes it, so in-flight futures keep progressing however long
//!   downstream takes per item. This is what `futures::StreamExt::buffered`
//!   does not do: its futures are polled only when the consumer asks for the
//!   next item, so a consumer that awaits in its loop body stalls them.
//! - The **downstream stream** drives it too when it asks for results, so a
//!   waiting consumer picks results up on the thread the wake-up arrived on,
//!   without a hop through the task.
//!
//! Every future and upstream are polled with one waker that wakes both.
//!
//! # Who drives, and why nobody blocks
//!
//! Only one party drives at a time, and nobody ever waits for the other to
//! finish: user code (upstream's closures, `f`, its futures) runs while the
//! engine is driven, and may be slow or may itself block. A small atomic
//! state (`Driving`) hands ownership over: a party that finds the engine
//! taken marks itself turned away and returns `Pending` (its waker is
//! registered before it tries); the driver, on releasing, wakes whoever it
//! turned away, so that party comes back. The `Mutex` around the engine is
//! only a container: it is locked by the owner alone, with `try_lock`, so it
//! never blocks. Turn-aways are rare (under 0.5% of drives with 100 timers in
//! flight, W2's workload), so the extra wake-up they cost does not show.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::task::{ArcWake, AtomicWaker};
use futures::{FutureExt, Stream};

use crate::run::{RunContext, StageInfo};

/// Items pulled from upstream per poll before yielding, so an endless ready
/// upstream cannot monopolise the task.
const BUDGET: usize = 1024;

/// A set of in-flight futures: how a concurrent stage starts work and which
/// order its results come out in.
pub(crate) trait Lanes<In>: Send + 'static {
    /// Results handed downstream.
    type Out: Send + 'static;

    /// Whether another item may be taken while `ready` results wait to be sent.
    fn has_room(&self, ready: usize) -> bool;

    /// Starts the work for `item` (calls user code).
    fn start(&mut self, item: In, info: &StageInfo);

    /// The next finished result; `Ready(None)` when nothing is in flight.
    fn poll_done(&mut self, cx: &mut Context<'_>, info: &StageInfo) -> Poll<Option<Self::Out>>;

    /// Whether no work is in flight.
    fn is_idle(&self) -> bool;
}

/// The state of one concurrent stage: upstream, the lanes and the
/// finished results waiting to be sent.
struct Engine<S: Stream, L: Lanes<S::Item>> {
    upstream: S,
    lanes: L,
    ready: VecDeque<L::Out>,
    upstream_done: bool,
    info: Arc<StageInfo>,
}

impl<S, L> Engine<S, L>
where
    S: Stream + Unpin,
    L: Lanes<S::Item>,
{
    /// Takes what upstream has ready into the lanes and collects finished
    /// results into `ready`, until neither makes progress.
    fn progress(&mut self, cx: &mut Context<'_>) {
        let mut budget = BUDGET;
        loop {
            while !self.upstream_done && self.lanes.has_room(self.ready.len()) {
                match Pin::new(&mut self.upstream).poll_next(cx) {
                    Poll::Ready(Some(item)) => self.lanes.start(item, &self.info),
                    Poll::Ready(None) => self.upstream_done = true,
                    Poll::Pending => break,
                }
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    break;
                }
            }
            let before = self.ready.len();
            while let Poll::Ready(Some(out)) = self.lanes.poll_done(cx, &self.info) {
                self.ready.push_back(out);
            }
            // Finished work freed room: take more from upstream, unless the
            // budget is spent (the wake above brings us back).
            if self.ready.len() == before || budget == 0 {
                return;
            }
        }
    }

    fn finished(&self) -> bool {
        self.upstream_done && self.lanes.is_idle() && self.ready.is_empty()
    }
}

/// Wakes both parties that drive an engine.
#[derive(Default)]
struct Wakeups {
    task: AtomicWaker,
    consumer: AtomicWaker,
}

impl ArcWake for Wakeups {
    fn wake_by_ref(arc: &Arc<Self>) {
        arc.task.wake();
        arc.consumer.wake();
    }
}

/// `Driving` bits: someone drives the engine.
const DRIVING: u8 = 1;
/// The stage's task was turned away while the engine was driven.
const TASK: u8 = 2;
/// The downstream end was turned away while the engine was driven.
const CONSUMER: u8 = 4;

/// Who may drive an engine: the hand-over described in the module docs.
/// Waiting bits are set only while `DRIVING` is, and cleared with it.
#[derive(Default)]
struct Driving(AtomicU8);

impl Driving {
    /// Takes the engine for `me` (`TASK` or `CONSUMER`), or marks `me` as
    /// turned away and returns `false` when the engine is being driven.
    fn acquire(&self, me: u8) -> bool {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let next = if current & DRIVING == 0 {
                DRIVING
            } else {
                current | me
            };
            if next == current {
                return false; // marked already
            }
            match self
                .0
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return current & DRIVING == 0,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives the engine up; returns who was turned away meanwhile.
    fn release(&self) -> u8 {
        self.0.swap(0, Ordering::AcqRel) & !DRIVING
    }
}

/// Releases the engine when dropped, also when user code panics while it is
/// driven, so the other party is never locked out.
struct Release<'a> {
    driving: &'a Driving,
    wakeups: &'a Wakeups,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let turned_away = self.driving.release();
        // After a panic both are woken: the abandoned engine tells them to stop.
        let panicking = std::thread::panicking();
        if panicking || turned_away & TASK != 0 {
            self.wakeups.task.wake();
        }
        if panicking || turned_away & CONSUMER != 0 {
            self.wakeups.consumer.wake();
        }
    }
}

struct Shared<S: Stream, L: Lanes<S::Item>> {
    /// Locked only by whoever holds `driving`: never contended.
    engine: Mutex<Engine<Pin<Box<S>>, L>>,
    driving: Driving,
    wakeups: Arc<Wakeups>,
    /// Wakes both `wakeups`: the waker every future and upstream see.
    waker: Waker,
}

impl<S, L> Shared<S, L>
where
    S: Stream + Send + 'static,
    L: Lanes<S::Item>,
{
    /// Runs `f` on the engine, unless the other party is driving it:
    /// `Ok(None)` then, and the caller (whose waker is registered) is woken
    /// when the driver lets go. `Err` if user code panicked in an earlier
    /// drive, abandoning the engine.
    fn drive<R>(
        &self,
        me: u8,
        f: impl FnOnce(&mut Engine<Pin<Box<S>>, L>) -> R,
    ) -> Result<Option<R>, ()> {
        if !self.driving.acquire(me) {
            return Ok(None);
        }
        let _release = Release {
            driving: &self.driving,
            wakeups: &self.wakeups,
        };
        let mut engine = match self.engine.try_lock() {
            Ok(engine) => engine,
            Err(TryLockError::Poisoned(_)) => return Err(()),
            Err(TryLockError::WouldBlock) => unreachable!("only the driver locks the engine"),
        };
        Ok(Some(f(&mut engine)))
    }
}

/// The results side of a [`Shared`] engine, with its types erased.
trait Results<T>: Send + Sync {
    /// Drives the engine and moves its finished results into `out` (empty on
    /// entry). `Ok(true)` when no more will ever come; `Err` if the engine
    /// was abandoned by a panic.
    fn poll_take(&self, out: &mut VecDeque<T>, waker: &Waker) -> Result<bool, ()>;
}

impl<S, L> Results<L::Out> for Shared<S, L>
where
    S: Stream + Send + 'static,
    L: Lanes<S::Item>,
{
    fn poll_take(&self, out: &mut VecDeque<L::Out>, waker: &Waker) -> Result<bool, ()> {
        // Register before driving: a wake-up after the drive re-polls us,
        // and so does the driver's release when we are turned away.
        self.wakeups.consumer.register(waker);
        let finished = self.drive(CONSUMER, |engine| {
            let mut cx = Context::from_waker(&self.waker);
            engine.progress(&mut cx);
            std::mem::swap(out, &mut engine.ready);
            if !out.is_empty() {
                // Taking results made room: start more work right away.
                engine.progress(&mut cx);
            }
            if engine.upstream_done && engine.lanes.is_idle() {
                // We may have finished the last work ourselves: let the task
                // see it and end, or the run would wait for it forever.
                self.wakeups.task.wake();
            }
            engine.finished()
        })?;
        Ok(finished.unwrap_or(false))
    }
}

/// The downstream end of a concurrent stage: yields results and drives the
/// engine when it has none.
pub(crate) struct ConcurrentOutput<T> {
    shared: Arc<dyn Results<T>>,
    current: VecDeque<T>,
    done: bool,
    info: Arc<StageInfo>,
}

impl<T> fmt::Debug for ConcurrentOutput<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentOutput")
            .field("taken", &self.current.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// Nothing in it is pinned: results are moved out, never polled.
impl<T> Unpin for ConcurrentOutput<T> {}

impl<T> Stream for ConcurrentOutput<T> {
    type Item = T;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        if this.current.is_empty() && !this.done {
            match this.shared.poll_take(&mut this.current, cx.waker()) {
                Ok(finished) => this.done = finished,
                // The engine was abandoned by a panic, which whoever caught
                // it records (the stage's task, maybe on another thread and
                // not yet): a failing stage waits rather than end, or the
                // run could take the end for completion and close its sink.
                Err(()) => return Poll::Pending,
            }
        }
        match this.current.pop_front() {
            Some(item) => {
                this.info.out.bump();
                Poll::Ready(Some(item))
            }
            None if this.done => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// Builds a concurrent stage over `upstream`: the stream of results and the
/// task that keeps the engine moving.
pub(crate) fn concurrent_stage<S, L>(
    upstream: S,
    lanes: L,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> (ConcurrentOutput<L::Out>, BoxFuture<'static, ()>)
where
    S: Stream + Send + 'static,
    L: Lanes<S::Item>,
{
    let wakeups = Arc::new(Wakeups::default());
    let shared = Arc::new(Shared {
        driving: Driving::default(),
        engine: Mutex::new(Engine {
            upstream: Box::pin(upstream),
            lanes,
            ready: VecDeque::new(),
            upstream_done: false,
            info: info.clone(),
        }),
        waker: futures::task::waker(wakeups.clone()),
        wakeups,
    });
    let fallback = info.clone();
    let driver = shared.clone();
    let task = async move {
        let run = poll_fn(move |cx| {
            driver.wakeups.task.register(cx.waker());
            let drove = driver.drive(TASK, |engine| {
                let before = engine.ready.len();
                engine.progress(&mut Context::from_waker(&driver.waker));
                (
                    engine.ready.len() > before,
                    engine.upstream_done && engine.lanes.is_idle(),
                )
            });
            match drove {
                // Abandoned: downstream's drive panicked, and the run is failing.
                Err(()) => Poll::Ready(()),
                // Downstream drives it now; its release wakes us.
                Ok(None) => Poll::Pending,
                Ok(Some((grew, idle))) => {
                    if grew || idle {
                        driver.wakeups.consumer.wake();
                    }
                    // Nothing left to drive; downstream takes what is ready.
                    if idle {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }
            }
        });
        if let Err(payload) = AssertUnwindSafe(run).catch_unwind().await {
            ctx.fail_with_panic(&*payload, &fallback.name());
        }
    }
    .boxed();
    let output = ConcurrentOutput {
        shared,
        current: VecDeque::new(),
        done: false,
        info,
    };
    (output, task)
}
