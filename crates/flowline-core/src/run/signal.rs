//! The one flag-and-listen loop every waiter in the run shares, and the
//! counters built on it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use event_listener::Event;

/// Waits on `event` until `ready()` holds.
///
/// Checks, listens, checks again, then sleeps: a notification between the
/// first check and the listener cannot be missed, because the second check
/// runs after the listener is registered.
pub(crate) async fn wait_until(event: &Event, mut ready: impl FnMut() -> bool) {
    loop {
        if ready() {
            return;
        }
        let listener = event.listen();
        if ready() {
            return;
        }
        listener.await;
    }
}

/// A one-shot signal: [`fire`](Self::fire) once, [`wait`](Self::wait) any
/// number of times.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    fired: AtomicBool,
    event: Event,
}

impl Flag {
    /// Sets the flag and wakes every waiter. Returns whether it was already set.
    pub(crate) fn fire(&self) -> bool {
        let was = self.fired.swap(true, SeqCst);
        self.event.notify(usize::MAX);
        was
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(SeqCst)
    }

    /// Resolves once the flag is set.
    pub(crate) async fn wait(&self) {
        wait_until(&self.event, || self.is_fired()).await
    }
}

/// Counts calls in progress (blocking calls of a run), so the run can wait
/// until none is left: a blocking call cannot be cancelled, only waited for.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    active: AtomicUsize,
    idle: Event,
}

/// Held while a call is in progress; dropping it (also by unwinding) ends
/// the call.
#[derive(Debug)]
pub(crate) struct CallGuard(Arc<Calls>);

impl Calls {
    /// Marks a call as started.
    pub(crate) fn enter(self: &Arc<Self>) -> CallGuard {
        self.active.fetch_add(1, SeqCst);
        CallGuard(self.clone())
    }

    pub(crate) fn active(&self) -> usize {
        self.active.load(SeqCst)
    }

    /// Resolves once no call is in progress.
    pub(crate) async fn idle(&self) {
        wait_until(&self.idle, || self.active() == 0).await
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, SeqCst) == 1 {
            self.0.idle.notify(usize::MAX);
        }
    }
}

/// How the stream between two tasks ended. A queue's sender finishes with
/// one of these; a sender dropped without finishing ends it `Aborted`.
///
/// Only `Completed` is an end of stream to the receiver. On `Failed` or
/// `Aborted` the receiver halts its run ([`RunContext::halt`]) and returns
/// `Pending`, so no stage downstream mistakes a failure for a finished
/// stream (and the consumer is never closed).
///
/// [`RunContext::halt`]: super::RunContext::halt
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Upstream ran out of items.
    Completed,
    /// A stage upstream failed; the error is recorded in the run's context.
    Failed,
    /// The run was cancelled, or the sending task was dropped.
    Aborted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_idle_waits_for_every_guard() {
        let calls = Arc::new(Calls::default());
        let a = calls.enter();
        let b = calls.enter();
        assert_eq!(calls.active(), 2);
        let waiter = std::thread::spawn({
            let calls = calls.clone();
            move || futures::executor::block_on(calls.idle())
        });
        drop(a);
        assert_eq!(calls.active(), 1);
        drop(b);
        waiter.join().unwrap();
        assert_eq!(calls.active(), 0);
    }

    #[test]
    fn flag_wait_returns_after_fire() {
        let flag = Arc::new(Flag::default());
        let waiter = std::thread::spawn({
            let flag = flag.clone();
            move || futures::executor::block_on(flag.wait())
        });
        assert!(!flag.fire());
        waiter.join().unwrap();
        assert!(flag.fire());
    }
}
