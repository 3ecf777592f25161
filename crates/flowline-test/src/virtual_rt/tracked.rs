//! The task and blocking-call tracking behind [`VirtualClock`](super::VirtualClock):
//! what is busy (woken, being polled, or a blocking call not returned), so
//! that `settle` and auto-advance know when nothing is.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use futures::future::BoxFuture;

use super::shared::Shared;

/// What the clock knows of the work it started.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    state: Mutex<TrackerState>,
    /// The clock, in auto-advance mode: it jumps to the next timer whenever
    /// nothing is busy.
    auto_advance: Option<Weak<Shared>>,
}

#[derive(Debug, Default)]
pub(super) struct TrackerState {
    /// Tasks woken or being polled, plus blocking calls not returned.
    pub(super) busy: usize,
    /// Tasks spawned and not yet finished or dropped.
    pub(super) live: usize,
    /// `settle` futures waiting for `busy` to reach zero.
    pub(super) waiters: Vec<Waker>,
}

impl Tracker {
    /// Tracks nothing yet; with the clock to move when idle, auto-advances.
    pub(super) fn new(auto_advance: Option<Weak<Shared>>) -> Self {
        Tracker {
            auto_advance,
            ..Tracker::default()
        }
    }

    pub(super) fn auto_advances(&self) -> bool {
        self.auto_advance.is_some()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self) {
        self.lock().busy += 1;
    }

    /// One less busy; at zero, wakes the `settle` futures (outside the lock).
    fn sub(&self) {
        let mut state = self.lock();
        state.busy -= 1;
        let waiters = if state.busy == 0 {
            std::mem::take(&mut state.waiters)
        } else {
            Vec::new()
        };
        let idle = state.busy == 0;
        drop(state);
        for waker in waiters {
            waker.wake();
        }
        if idle {
            self.advance_if_idle();
        }
    }

    /// In auto-advance mode, with nothing busy: moves the clock to the next
    /// timer and fires it (and whatever else is due then).
    pub(super) fn advance_if_idle(&self) {
        let Some(clock) = self.auto_advance.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        let state = clock.lock();
        if self.lock().busy != 0 {
            return;
        }
        if let Some(deadline) = Shared::next_deadline(&state) {
            clock.fire_until(state, deadline);
        }
    }
}

/// One task's standing: woken and not yet polled, or finished.
pub(super) struct Flags {
    pub(super) scheduled: bool,
    pub(super) done: bool,
}

pub(super) struct TaskState {
    pub(super) flags: Mutex<Flags>,
    pub(super) tracker: Arc<Tracker>,
}

impl TaskState {
    fn flags(&self) -> MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task was woken: busy until its next poll.
    fn woken(&self) {
        let mut flags = self.flags();
        if flags.scheduled || flags.done {
            return;
        }
        flags.scheduled = true;
        drop(flags);
        self.tracker.add();
    }

    /// Takes the task off the busy count if it was woken, and when it
    /// finished (or was dropped) marks it done, off the live count: later
    /// wakes count nothing.
    fn unschedule(&self, done: bool) {
        let mut flags = self.flags();
        let was = std::mem::replace(&mut flags.scheduled, false);
        let finished = done && !std::mem::replace(&mut flags.done, true);
        drop(flags);
        if finished {
            self.tracker.lock().live -= 1;
        }
        if was {
            self.tracker.sub();
        }
    }
}

/// The executor's waker, counting the wake first: the count rises before
/// the task can be polled, so `settle` never sees a gap.
struct TrackWaker {
    task: Arc<TaskState>,
    inner: Waker,
}

impl Wake for TrackWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.task.woken();
        self.inner.wake_by_ref();
    }
}

/// A spawned task's future, polled with a [`TrackWaker`].
pub(super) struct Tracked {
    pub(super) task: BoxFuture<'static, ()>,
    pub(super) state: Arc<TaskState>,
}

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // Busy while polled: counted before the wake's count is taken off.
        this.state.tracker.add();
        this.state.unschedule(false);
        let waker = Waker::from(Arc::new(TrackWaker {
            task: this.state.clone(),
            inner: cx.waker().clone(),
        }));
        let poll = this.task.as_mut().poll(&mut Context::from_waker(&waker));
        if poll.is_ready() {
            this.state.unschedule(true);
        }
        this.state.tracker.sub();
        poll
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Dropped unfinished (cancelled) while woken: no poll will come.
        self.state.unschedule(true);
    }
}

/// Counts a blocking call busy until dropped (returned or panicked).
pub(super) struct Outstanding(pub(super) Arc<Tracker>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.sub();
    }
}
