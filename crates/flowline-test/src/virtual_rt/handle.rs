use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flowline_core::runtime::{BlockingFn, Runtime, Sleep};
use futures::future::BoxFuture;

use super::shared::Shared;
use super::sleep::VirtualSleep;

/// A cloneable handle to a [`VirtualRuntime`](super::VirtualRuntime): the
/// [`Runtime`] a pipeline under test runs on, and the test's remote control
/// for time.
///
/// Tasks spawned through it run only while the owning runtime's
/// [`block_on`](super::VirtualRuntime::block_on) runs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::runtime::{Runtime, RuntimeExt};
/// use flowline_test::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let h = rt.handle();
/// let start = h.now();
/// let answer = rt.block_on(async {
///     h.sleep(Duration::from_secs(60)).await;
///     h.spawn(async { 42 }).await.unwrap()
/// });
/// assert_eq!((answer, h.now() - start), (42, Duration::from_secs(60)));
/// assert_eq!(h.name(), "virtual");
/// ```
#[derive(Clone)]
pub struct VirtualHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for VirtualHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualHandle")
            .field("elapsed", &self.elapsed())
            .field("auto_advance", &self.shared.auto_advance)
            .finish_non_exhaustive()
    }
}

impl VirtualHandle {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        VirtualHandle { shared }
    }

    /// Virtual time since the runtime was created.
    pub fn elapsed(&self) -> Duration {
        self.shared.elapsed()
    }

    /// Whether the clock jumps to the next timer by itself
    /// ([`VirtualRuntime::new`](super::VirtualRuntime::new)), rather than
    /// only in [`advance`](Self::advance) ([`VirtualRuntime::manual`](super::VirtualRuntime::manual)).
    pub fn auto_advances(&self) -> bool {
        self.shared.auto_advance
    }

    /// Tasks spawned on this runtime that have neither finished nor been
    /// dropped: zero after a clean run.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let h = rt.handle();
    /// rt.block_on(producer::iter(0..100).boundary(8).on(h.clone()).run_count()).unwrap();
    /// assert_eq!(h.live_tasks(), 0);
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.shared.lock().live_tasks.len()
    }

    /// Blocking calls started on this runtime that have not returned.
    pub fn blocking_calls(&self) -> usize {
        self.shared.lock().blocking
    }

    /// Waits until the runtime is quiescent: no task can run and no blocking
    /// call is outstanding. Time does not move while it waits (in either
    /// mode), so after `settle` every effect of the current instant is
    /// visible.
    ///
    /// Must be awaited inside the owning runtime's `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use flowline_core::runtime::RuntimeExt;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::manual();
    /// let h = rt.handle();
    /// let hits = Arc::new(AtomicU32::new(0));
    /// rt.block_on(async {
    ///     for _ in 0..3 {
    ///         let hits = hits.clone();
    ///         h.spawn(async move { hits.fetch_add(1, Ordering::SeqCst) }).detach();
    ///     }
    ///     h.settle().await;
    ///     assert_eq!(hits.load(Ordering::SeqCst), 3);
    /// });
    /// ```
    pub fn settle(&self) -> Settle {
        Settle {
            shared: Arc::downgrade(&self.shared),
            done: Arc::new(AtomicBool::new(false)),
            until_stalled: false,
        }
    }

    /// Waits until nothing can happen any more without another thread's
    /// help: the runtime is quiescent and no timer will fire (in manual mode:
    /// quiescent, since only [`advance`](Self::advance) fires timers).
    ///
    /// Probes race it against the event they expect, to fail with a message
    /// instead of hanging when a pipeline is stuck.
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
    /// let (_tx, rx) = futures::channel::oneshot::channel::<()>();
    /// let waiting = h.spawn(rx); // waits for a message nobody sends
    /// rt.block_on(async {
    ///     h.sleep(Duration::from_secs(5)).await;
    ///     h.stalled().await;
    /// });
    /// assert_eq!((rt.elapsed(), h.live_tasks()), (Duration::from_secs(5), 1));
    /// # drop(waiting);
    /// ```
    pub fn stalled(&self) -> Settle {
        Settle {
            shared: Arc::downgrade(&self.shared),
            done: Arc::new(AtomicBool::new(false)),
            until_stalled: true,
        }
    }

    /// Moves virtual time forward by `by`, firing the timers due on the way
    /// in deadline order and settling after each (so what a timer at 1 s
    /// causes happens before a timer at 2 s fires), then settles at the end.
    ///
    /// Works in both modes; in auto-advance mode, awaiting a sleep does the
    /// same.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_test::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::manual();
    /// let h = rt.handle();
    /// rt.block_on(h.advance(Duration::from_millis(1500)));
    /// assert_eq!(rt.elapsed(), Duration::from_millis(1500));
    /// ```
    pub async fn advance(&self, by: Duration) {
        let target = self.shared.now() + by;
        loop {
            self.settle().await;
            let state = self.shared.lock();
            match Shared::next_deadline(&state) {
                Some(deadline) if deadline <= target => {
                    self.shared.fire_until(state, deadline);
                }
                _ => {
                    self.shared.fire_until(state, target);
                    break;
                }
            }
        }
        self.settle().await;
    }
}

impl Runtime for VirtualHandle {
    fn name(&self) -> &'static str {
        "virtual"
    }

    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        let id = {
            let mut state = self.shared.lock();
            state.next_task += 1;
            state.next_task
        };
        let counted = Counted {
            task,
            _live: LiveTask(Arc::downgrade(&self.shared), id),
        };
        let weak = Arc::downgrade(&self.shared);
        let schedule = move |runnable| match weak.upgrade() {
            Some(shared) => shared.schedule(runnable),
            None => drop(runnable),
        };
        let (runnable, task) = async_task::spawn(counted, schedule);
        task.detach();
        self.shared.lock().live_tasks.insert(id, runnable.waker());
        runnable.schedule();
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        self.shared.lock().blocking += 1;
        let outstanding = Outstanding(self.shared.clone());
        blocking::unblock(move || {
            let _outstanding = outstanding;
            f();
        })
        .detach();
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(VirtualSleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
        })
    }

    fn now(&self) -> Instant {
        self.shared.now()
    }
}

/// The future returned by [`VirtualHandle::settle`] and
/// [`VirtualHandle::stalled`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Settle {
    shared: Weak<Shared>,
    done: Arc<AtomicBool>,
    until_stalled: bool,
}

impl Future for Settle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.load(std::sync::atomic::Ordering::Acquire) {
            return Poll::Ready(());
        }
        let Some(shared) = self.shared.upgrade() else {
            return Poll::Ready(());
        };
        let mut state = shared.lock();
        let waiters = if self.until_stalled {
            &mut state.stall_waiters
        } else {
            &mut state.idle_waiters
        };
        // One registration per future: polled again, it refreshes its waker.
        match waiters.iter_mut().find(|(d, _)| Arc::ptr_eq(d, &self.done)) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => waiters.push((self.done.clone(), cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// A spawned task's future with a guard that counts it live until dropped.
struct Counted {
    task: BoxFuture<'static, ()>,
    _live: LiveTask,
}

impl Future for Counted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.task.as_mut().poll(cx)
    }
}

struct LiveTask(Weak<Shared>, u64);

impl Drop for LiveTask {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            let waker = shared.lock().live_tasks.remove(&self.1);
            drop(waker);
        }
    }
}

/// Counts a blocking call outstanding until dropped (returned or panicked).
struct Outstanding(Arc<Shared>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.lock().blocking -= 1;
        self.0.notify();
    }
}
