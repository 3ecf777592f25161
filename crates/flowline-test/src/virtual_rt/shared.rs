use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_task::Runnable;

/// The state one virtual runtime shares between its owner, its handles, its
/// tasks' wakers and its timers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The real instant virtual time started at.
    pub(crate) base: Instant,
    /// Virtual time since `base`, in nanoseconds. Atomic so `now()` takes no
    /// lock; written only under `state`'s lock, so timers and clock agree.
    offset_nanos: AtomicU64,
    /// Whether the driver jumps to the next timer when nothing can run.
    pub(crate) auto_advance: bool,
    state: Mutex<State>,
    /// Signalled on every event the driver might be waiting for.
    changed: Condvar,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) queue: VecDeque<Runnable>,
    pub(crate) timers: BTreeMap<(Instant, u64), Waker>,
    next_timer: u64,
    /// Blocking calls started and not yet returned.
    pub(crate) blocking: usize,
    /// A waker of every task spawned and not yet finished or dropped: waking
    /// them when the owner is dropped makes each drop its future.
    pub(crate) live_tasks: std::collections::HashMap<u64, Waker>,
    pub(crate) next_task: u64,
    /// `settle()` futures waiting for quiescence.
    pub(crate) idle_waiters: Vec<(Arc<std::sync::atomic::AtomicBool>, Waker)>,
    /// `stalled()` futures waiting until nothing can happen any more.
    pub(crate) stall_waiters: Vec<(Arc<std::sync::atomic::AtomicBool>, Waker)>,
    /// Something happened since the driver last looked.
    pub(crate) notified: bool,
    /// The owner was dropped: tasks scheduled from now on are cancelled.
    pub(crate) closed: bool,
}

impl Shared {
    pub(crate) fn new(auto_advance: bool) -> Self {
        Shared {
            base: Instant::now(),
            offset_nanos: AtomicU64::new(0),
            auto_advance,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Virtual time since the runtime was created.
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::Acquire))
    }

    pub(crate) fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    /// Moves the clock to `to` (never backwards). Call with the lock held.
    fn set_now(&self, _state: &mut State, to: Instant) {
        let nanos = to.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Wakes the driver, wherever it waits.
    pub(crate) fn notify(&self) {
        let mut state = self.lock();
        state.notified = true;
        drop(state);
        self.changed.notify_all();
    }

    /// Blocks the calling thread (the driver) until something happens.
    pub(crate) fn wait(&self, mut state: MutexGuard<'_, State>) {
        while !state.notified {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.notified = false;
    }

    pub(crate) fn schedule(&self, runnable: Runnable) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            // Dropping the runnable drops the task's future: the runtime is gone.
            drop(runnable);
            return;
        }
        state.queue.push_back(runnable);
        state.notified = true;
        drop(state);
        self.changed.notify_all();
    }

    /// Registers (or refreshes) a timer and returns its key.
    pub(crate) fn register_timer(
        &self,
        key: Option<(Instant, u64)>,
        deadline: Instant,
        waker: &Waker,
    ) -> Option<(Instant, u64)> {
        let mut state = self.lock();
        if self.now() >= deadline {
            if let Some(key) = key {
                state.timers.remove(&key);
            }
            return None;
        }
        let key = match key {
            Some(key) => key,
            None => {
                state.next_timer += 1;
                // A new timer: the driver may be waiting with none to jump
                // to (the timer is a thread's, not a task's: a `Feeder` or
                // `Drain` deadline), so tell it.
                state.notified = true;
                (deadline, state.next_timer)
            }
        };
        let new = state.timers.insert(key, waker.clone()).is_none();
        drop(state);
        if new {
            self.changed.notify_all();
        }
        Some(key)
    }

    pub(crate) fn cancel_timer(&self, key: (Instant, u64)) {
        let waker = self.lock().timers.remove(&key);
        drop(waker);
    }

    /// The earliest timer's deadline, if any.
    pub(crate) fn next_deadline(state: &State) -> Option<Instant> {
        state.timers.keys().next().map(|&(at, _)| at)
    }

    /// Moves the clock to `to` and wakes every timer due by then. Returns
    /// whether any timer fired.
    pub(crate) fn fire_until(&self, mut state: MutexGuard<'_, State>, to: Instant) -> bool {
        self.set_now(&mut state, to);
        let now = self.now();
        let mut due = Vec::new();
        while let Some(entry) = state.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        drop(state);
        let fired = !due.is_empty();
        // Wake outside the lock: a waker may schedule a task, which locks.
        for waker in due {
            waker.wake();
        }
        fired
    }
}
