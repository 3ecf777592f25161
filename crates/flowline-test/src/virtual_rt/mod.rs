//! A [`Runtime`] whose clock and timers are virtual: [`VirtualRuntime`] (the
//! owner, which drives the tasks) and [`VirtualHandle`] (what pipelines run
//! on); and [`VirtualClock`], virtual time over another runtime's executor.
//!
//! Inside: `shared.rs` (run queue, timers, the clock), `sleep.rs` (the timer
//! future), `handle.rs` (the `Runtime` implementation, `advance`, `settle`),
//! `over.rs` (`VirtualClock`: tasks on smol's, tokio's or any executor) and
//! `tracked.rs` (what of its work is busy).

mod handle;
mod over;
mod shared;
mod sleep;
mod tracked;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

pub use handle::{Settle, VirtualHandle};
pub use over::VirtualClock;
use shared::Shared;

/// A single-threaded executor with a virtual clock.
///
/// Tasks spawned on its [`handle`](Self::handle) run on the thread that calls
/// [`block_on`](Self::block_on), one at a time, in the order they were woken.
/// Timers ([`Runtime::sleep_until`](flowline_core::runtime::Runtime::sleep_until))
/// fire when *virtual* time reaches them, and
/// [`Runtime::now`](flowline_core::runtime::Runtime::now) reads virtual time: the
/// real instant the runtime was made, plus the virtual time that has passed.
///
/// Two modes:
///
/// - **auto-advance** ([`new`](Self::new)): whenever no task can run and no
///   blocking call is outstanding, the clock jumps to the next timer. A
///   pipeline with ten-minute batches completes in microseconds, with the
///   same outcome as in real time.
/// - **manual** ([`manual`](Self::manual)): time moves only when the test calls
///   [`VirtualHandle::advance`]; [`VirtualHandle::settle`] waits until
///   everything that can run has run.
///
/// Blocking calls ([`Runtime::spawn_blocking_boxed`](flowline_core::runtime::Runtime::spawn_blocking_boxed))
/// run on real threads (the `blocking` pool); while any is outstanding the
/// clock does not auto-advance and `settle` does not resolve, so a blocking
/// call never sees time jump under it.
///
/// # Caveats
///
/// Work on threads the runtime does not start is invisible to it: the worker
/// threads of `map_blocking`, `from_blocking_iter` and blocking consumers, and
/// threads of your own pushing into a `Feeder`, tasks on another executor.
/// Auto-advance may move the clock while such work runs; use real time (or
/// manual mode) for tests that time it. To keep smol's or tokio's executor
/// and still step through virtual time, use [`VirtualClock`].
///
/// Stages that need tokio's context (`tokio::spawn`, tokio IO) work when
/// `block_on` is called inside it (`let _guard = tokio_runtime.enter();`);
/// `tokio::time` timers there stay real — time with `flowline_core::time`
/// (the runtime of the pipeline polling the code) instead.
///
/// Virtual time passes only when every task waits: a pipeline that never
/// waits (an endless producer and no timer in the way) keeps the clock
/// still, so a test that races it against a sleep never sees the sleep end.
///
/// Dropping the runtime cancels every task still on it (their futures are
/// dropped), as dropping a smol `Executor` does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::producer;
/// use flowline_test::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let (batches, _) = rt
///     .block_on(
///         producer::iter(0..5u32)
///             .batch(100, Duration::from_secs(600)) // ten minutes
///             .boundary(4)
///             .on(rt.handle())
///             .run_collect(),
///     )
///     .unwrap();
/// assert_eq!(batches, [vec![0, 1, 2, 3, 4]]);
/// ```
#[derive(Debug)]
pub struct VirtualRuntime {
    shared: Arc<Shared>,
}

impl Default for VirtualRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualRuntime {
    /// A runtime that jumps to the next timer whenever nothing can run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::runtime::RuntimeExt;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let h = rt.handle();
    /// rt.block_on(async { h.sleep(Duration::from_secs(3600)).await });
    /// assert_eq!(rt.elapsed(), Duration::from_secs(3600));
    /// ```
    pub fn new() -> Self {
        VirtualRuntime {
            shared: Arc::new(Shared::new(true)),
        }
    }

    /// A runtime whose clock moves only through [`VirtualHandle::advance`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::runtime::RuntimeExt;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::manual();
    /// let h = rt.handle();
    /// rt.block_on(async {
    ///     let timer = h.spawn({
    ///         let h = h.clone();
    ///         async move { h.sleep(Duration::from_secs(10)).await }
    ///     });
    ///     h.advance(Duration::from_secs(9)).await;
    ///     assert_eq!(h.live_tasks(), 1); // still sleeping
    ///     h.advance(Duration::from_secs(1)).await;
    ///     assert_eq!(h.live_tasks(), 0);
    ///     timer.await.unwrap();
    /// });
    /// ```
    pub fn manual() -> Self {
        VirtualRuntime {
            shared: Arc::new(Shared::new(false)),
        }
    }

    /// A handle to give pipelines (`.on(rt.handle())`) and to step time with.
    pub fn handle(&self) -> VirtualHandle {
        VirtualHandle::new(self.shared.clone())
    }

    /// Virtual time since the runtime was created.
    pub fn elapsed(&self) -> Duration {
        self.shared.elapsed()
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Runs `future` to completion on the calling thread, running the
    /// runtime's tasks alongside it and moving virtual time as the mode says.
    ///
    /// # Panics
    ///
    /// Panics from `future` propagate. A panic inside a spawned task is
    /// caught by flowline's `JoinHandle` (or the pipeline) as usual.
    ///
    /// # Caveats
    ///
    /// If nothing can run, no timer is pending and no blocking call is
    /// outstanding, the call waits for another thread to wake something (a
    /// `Feeder` push, a worker thread's result); if none ever does, it waits
    /// forever, as any executor would.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let report = rt
    ///     .block_on(
    ///         producer::iter(0..3)
    ///             .then_timeout(Duration::from_secs(1), |x| async move { x })
    ///             .on(rt.handle())
    ///             .run_for_each(|_| async {}),
    ///     )
    ///     .unwrap();
    /// assert_eq!((report.delivered(), report.elapsed), (3, Duration::ZERO));
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: Arc::downgrade(&self.shared),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            self.shared.lock().notified = false;
            if main.woken.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                    return out;
                }
            }
            if self.run_queued(&main.woken) {
                continue;
            }
            self.when_idle();
        }
    }

    /// Runs queued tasks until the queue is empty or the main future is woken.
    /// Returns whether anything ran.
    fn run_queued(&self, main_woken: &AtomicBool) -> bool {
        let mut ran = false;
        loop {
            let next = self.shared.lock().queue.pop_front();
            match next {
                Some(runnable) => {
                    runnable.run();
                    ran = true;
                    if main_woken.load(Ordering::Acquire) {
                        return true;
                    }
                }
                None => return ran,
            }
        }
    }

    /// Nothing is runnable: wake `settle` waiters, else move time, else wait.
    fn when_idle(&self) {
        let mut state = self.shared.lock();
        if !state.queue.is_empty() || state.notified {
            return;
        }
        if state.blocking > 0 {
            // A blocking call is running for real: time must not jump under it.
            return self.shared.wait(state);
        }
        if !state.idle_waiters.is_empty() {
            let waiters = std::mem::take(&mut state.idle_waiters);
            drop(state);
            for (done, waker) in waiters {
                done.store(true, Ordering::Release);
                waker.wake();
            }
            return;
        }
        match Shared::next_deadline(&state) {
            Some(deadline) if self.shared.auto_advance => {
                self.shared.fire_until(state, deadline);
            }
            _ if !state.stall_waiters.is_empty() => {
                let waiters = std::mem::take(&mut state.stall_waiters);
                drop(state);
                for (done, waker) in waiters {
                    done.store(true, Ordering::Release);
                    waker.wake();
                }
            }
            _ => self.shared.wait(state),
        }
    }
}

impl Drop for VirtualRuntime {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        let queue = std::mem::take(&mut state.queue);
        let timers = std::mem::take(&mut state.timers);
        let waiters = std::mem::take(&mut state.idle_waiters);
        let stalled = std::mem::take(&mut state.stall_waiters);
        let live = std::mem::take(&mut state.live_tasks);
        drop(state);
        // Outside the lock: dropping a task's future may wake or schedule
        // others. A woken task is scheduled on a closed runtime, which drops
        // its future; that reaches tasks whose only wakers they hold themselves.
        drop(queue);
        drop(timers);
        drop(waiters);
        drop(stalled);
        for waker in live.into_values() {
            waker.wake();
        }
    }
}

/// Wakes the main future of `block_on`.
#[derive(Debug)]
struct MainWaker {
    woken: AtomicBool,
    shared: std::sync::Weak<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(shared) = self.shared.upgrade() {
            shared.notify();
        }
    }
}
