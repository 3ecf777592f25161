//! [`Holding`]: how a blocking stage's own thread (`from_blocking_iter`,
//! `consumer::blocking`) hands the user's code back before the run resolves.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// What a blocking stage's own thread is doing with the user's iterator or
/// closure, so that it is dropped before the run resolves. The thread drops
/// it inside a counted call (the run waits for those) or before it reports
/// the end; and the stage, when dropped (its channel to the thread already
/// gone, so a blocked send or receive ends at once), waits for the thread
/// to let go of it — unless the thread is inside user code, which may take
/// any time: then its counted call covers the drop.
#[derive(Debug, Clone)]
pub(super) struct Holding(Arc<HoldingState>);

#[derive(Debug, Default)]
struct HoldingState {
    /// One of `HOLDING`, `IN_NEXT`, `RELEASED`.
    phase: AtomicU8,
    /// The stage waits on `changed`: the thread then signals each change.
    waiting: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

/// Holds the user's iterator or closure, not inside a call of it.
const HOLDING: u8 = 0;
/// Inside a call of it.
const IN_NEXT: u8 = 1;
/// Holds nothing of the user's any more.
const RELEASED: u8 = 2;

impl Holding {
    pub(super) fn new() -> Self {
        Holding(Arc::default())
    }

    fn set(&self, phase: u8) {
        let s = &*self.0;
        s.phase.store(phase, Ordering::SeqCst);
        // Pairs with `wait`: it sets `waiting` before it looks at the phase.
        if s.waiting.load(Ordering::SeqCst) {
            let _lock = s.lock.lock().unwrap_or_else(PoisonError::into_inner);
            s.changed.notify_all();
        }
    }

    /// Marks the thread as inside user code (`true`) or out of it.
    pub(super) fn calling(&self, inside: bool) {
        self.set(if inside { IN_NEXT } else { HOLDING });
    }

    /// Runs user code `f` (`into_iter`, `next`, the consumer's closure)
    /// marked as such, catching a panic.
    pub(super) fn user<R>(&self, f: impl FnOnce() -> R) -> std::thread::Result<R> {
        self.set(IN_NEXT);
        let result = catch_unwind(AssertUnwindSafe(f));
        self.set(HOLDING);
        result
    }

    /// Waits while the thread holds the user's code outside a call of it.
    fn wait(&self) {
        let s = &*self.0;
        let mut lock = s.lock.lock().unwrap_or_else(PoisonError::into_inner);
        s.waiting.store(true, Ordering::SeqCst);
        while s.phase.load(Ordering::SeqCst) == HOLDING {
            lock = s.changed.wait(lock).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Marks the job released when it ends, or is dropped unrun with its pool.
pub(super) struct Released(pub(super) Holding);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.set(RELEASED);
    }
}

/// The stage's side: declared after its channel to the thread, so that is
/// gone (a blocked send or receive ends) before this waits.
#[derive(Debug)]
pub(super) struct WaitOnDrop(pub(super) Holding);

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        self.0.wait();
    }
}
