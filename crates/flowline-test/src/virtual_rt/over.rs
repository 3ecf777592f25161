//! [`VirtualClock`]: virtual time over another runtime's executor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use flowline_core::runtime::{BlockingFn, Runtime, Sleep};
use futures::future::BoxFuture;

use super::shared::Shared;
use super::sleep::VirtualSleep;
use super::tracked::{Flags, Outstanding, TaskState, Tracked, Tracker};

/// A [`Runtime`] with a virtual clock whose tasks run on another runtime's
/// executor — smol's, tokio's, any [`Runtime`] — with their real threads and
/// scheduling, while `now` and every timer are virtual: time moves only when
/// the test calls [`advance`](Self::advance).
///
/// [`VirtualRuntime`](super::VirtualRuntime) runs tasks one at a time on the
/// test's thread, which makes outcomes deterministic; `VirtualClock` keeps
/// the executor the pipeline will run on in production (work stealing,
/// several threads, tokio's context for `tokio::spawn` and IO) and still
/// lets a test step through ten minutes of timers in no real time.
///
/// It knows when the work it started has settled: it counts its tasks while
/// they are woken or being polled, and its blocking calls
/// ([`spawn_blocking_boxed`](Runtime::spawn_blocking_boxed)) until they
/// return. [`settle`](Self::settle) waits until none is, and `advance`
/// fires the timers due on the way in deadline order, settling after each.
///
/// # Caveats
///
/// Only tasks spawned through this runtime are seen. Run the pipeline under
/// test with `spawn` (its driver is then one of these tasks), not by
/// awaiting it in the test's own future; work on other threads (the workers
/// of `map_blocking` and `from_blocking_iter`, threads pushing into a
/// `Feeder`, IO completing) is not waited for by `settle`.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use flowline_core::{consumer, producer};
/// use flowline_test::VirtualClock;
///
/// let clock = VirtualClock::over(flowline_smol::SmolRuntime::new());
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let handle = producer::iter(0..3u32)
///     .throttle((1, Duration::from_secs(60)), 1) // one a minute
///     .on(clock.clone())
///     .spawn(consumer::for_each(move |x| {
///         log.lock().unwrap().push(x);
///         async {}
///     }));
/// smol::block_on(async {
///     clock.settle().await;
///     assert_eq!(*seen.lock().unwrap(), [0]);
///     clock.advance(Duration::from_secs(60)).await;
///     assert_eq!(*seen.lock().unwrap(), [0, 1]);
///     clock.advance(Duration::from_secs(60)).await;
///     assert_eq!(handle.await.unwrap().delivered(), 3);
/// });
/// ```
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<dyn Runtime>,
    clock: Arc<Shared>,
    tracker: Arc<Tracker>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualClock")
            .field("over", &self.inner.name())
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl VirtualClock {
    /// A virtual clock (at zero) whose tasks and blocking calls go to
    /// `runtime`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::runtime::{Runtime, RuntimeExt};
    /// use flowline_test::VirtualClock;
    ///
    /// let tokio = tokio::runtime::Runtime::new().unwrap();
    /// let clock = VirtualClock::over(flowline_tokio::TokioRuntime::from_handle(tokio.handle().clone()));
    /// let timer = clock.spawn({
    ///     let clock = clock.clone();
    ///     async move { clock.sleep(Duration::from_secs(3600)).await }
    /// });
    /// tokio.block_on(async {
    ///     clock.advance(Duration::from_secs(3600)).await;
    ///     timer.await.unwrap();
    /// });
    /// assert_eq!((clock.elapsed(), clock.name()), (Duration::from_secs(3600), "virtual"));
    /// ```
    pub fn over(runtime: impl Runtime) -> Self {
        Self::with_mode(runtime, false)
    }

    /// A virtual clock over `runtime` that also moves by itself: whenever
    /// nothing it started is busy, it jumps to the next timer, as
    /// [`VirtualRuntime::new`](super::VirtualRuntime::new) does, so timers
    /// take no real time.
    ///
    /// Run the pipeline as a task of the clock (`clock.spawn(run)`, or the
    /// pipeline's own `spawn`) and await its handle: then the clock sees all
    /// of the run's work. A run awaited directly in the test's future is
    /// invisible to it, so time could jump while that future has work left.
    ///
    /// # Caveats
    ///
    /// As with `VirtualRuntime`, work it cannot see (other threads, IO) may
    /// see time jump while it runs: the clock moves when its own tasks and
    /// blocking calls are all waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    /// use flowline_core::runtime::RuntimeExt;
    /// use flowline_test::VirtualClock;
    ///
    /// let clock = VirtualClock::auto_over(flowline_smol::SmolRuntime::new());
    /// let run = clock.spawn(
    ///     producer::iter(0..3u32)
    ///         .throttle((1, Duration::from_secs(3600)), 1) // one an hour
    ///         .on(clock.clone())
    ///         .run_collect(),
    /// );
    /// let (out, report) = smol::block_on(run).unwrap().unwrap();
    /// assert_eq!((out, report.elapsed), (vec![0, 1, 2], Duration::from_secs(7200)));
    /// ```
    pub fn auto_over(runtime: impl Runtime) -> Self {
        Self::with_mode(runtime, true)
    }

    fn with_mode(runtime: impl Runtime, auto_advance: bool) -> Self {
        let clock = Arc::new(Shared::new(false));
        let tracker = Arc::new(Tracker::new(auto_advance.then(|| Arc::downgrade(&clock))));
        VirtualClock {
            inner: Arc::new(runtime),
            clock,
            tracker,
        }
    }

    /// Virtual time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Tasks spawned through this clock that have neither finished nor been
    /// dropped: zero after a clean run (once [`settle`](Self::settle)d: a
    /// task's last poll may still be returning when its result is read).
    pub fn live_tasks(&self) -> usize {
        self.tracker.lock().live
    }

    /// Waits until every task spawned through this clock waits (none is
    /// woken or being polled) and every blocking call started through it has
    /// returned. Time does not move meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use flowline_core::runtime::RuntimeExt;
    /// use flowline_test::VirtualClock;
    ///
    /// let clock = VirtualClock::over(flowline_smol::SmolRuntime::new());
    /// let hits = Arc::new(AtomicU32::new(0));
    /// for _ in 0..3 {
    ///     let hits = hits.clone();
    ///     clock.spawn_blocking(move || hits.fetch_add(1, Ordering::SeqCst)).detach();
    /// }
    /// smol::block_on(clock.settle());
    /// assert_eq!(hits.load(Ordering::SeqCst), 3);
    /// ```
    pub fn settle(&self) -> impl Future<Output = ()> + Send + 'static {
        let tracker = self.tracker.clone();
        futures::future::poll_fn(move |cx| {
            let mut state = tracker.lock();
            if state.busy == 0 {
                return Poll::Ready(());
            }
            if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Moves virtual time forward by `by`, firing the timers due on the way
    /// in deadline order and settling after each (what a timer at 1 s causes
    /// happens before a timer at 2 s fires), then settles at the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_test::VirtualClock;
    ///
    /// let clock = VirtualClock::over(flowline_smol::SmolRuntime::new());
    /// smol::block_on(clock.advance(Duration::from_millis(1500)));
    /// assert_eq!(clock.elapsed(), Duration::from_millis(1500));
    /// ```
    pub async fn advance(&self, by: Duration) {
        let target = self.clock.now() + by;
        loop {
            self.settle().await;
            let state = self.clock.lock();
            match Shared::next_deadline(&state) {
                Some(deadline) if deadline <= target => {
                    self.clock.fire_until(state, deadline);
                }
                _ => {
                    self.clock.fire_until(state, target);
                    break;
                }
            }
        }
        self.settle().await;
    }
}

impl Runtime for VirtualClock {
    fn name(&self) -> &'static str {
        "virtual"
    }

    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        let state = Arc::new(TaskState {
            flags: Mutex::new(Flags {
                // Counted busy until its first poll: the executor will poll it.
                scheduled: true,
                done: false,
            }),
            tracker: self.tracker.clone(),
        });
        {
            let mut tracker = self.tracker.lock();
            tracker.busy += 1;
            tracker.live += 1;
        }
        self.inner.spawn_boxed(Box::pin(Tracked { task, state }));
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        self.tracker.lock().busy += 1;
        let outstanding = Outstanding(self.tracker.clone());
        self.inner.spawn_blocking_boxed(Box::new(move || {
            let _outstanding = outstanding;
            f();
        }));
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let sleep = VirtualSleep {
            shared: self.clock.clone(),
            deadline,
            key: None,
        };
        if !self.tracker.auto_advances() {
            return Box::pin(sleep);
        }
        // A sleep polled outside this clock's tasks (the test's own future,
        // a pipeline awaited there) may be the only thing left to wait for.
        let tracker = self.tracker.clone();
        let mut sleep = sleep;
        Box::pin(futures::future::poll_fn(move |cx| {
            let poll = Pin::new(&mut sleep).poll(cx);
            if poll.is_pending() {
                tracker.advance_if_idle();
            }
            poll
        }))
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn enter(&self, f: &mut dyn FnMut()) {
        self.inner.enter(f)
    }

    fn has_executor(&self) -> bool {
        self.inner.has_executor()
    }
}
