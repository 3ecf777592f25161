//! Run-wide lifecycle signals: stop the sources (graceful shutdown), and
//! "the run has finished" for helper tasks such as the progress reporter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use super::Flag;
use futures::task::AtomicWaker;

/// Shared by a run's context, its sources and its handle.
///
/// Sources read `stopping` with one relaxed load per poll: a stale read only
/// delays the stop by one item, and [`stop`](Self::stop) wakes every source
/// so a source parked on a slow producer notices at once.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    stopping: AtomicBool,
    sources: Mutex<Vec<Arc<AtomicWaker>>>,
    /// Lifecycles of pipelines merged into this one (fan-in): stopped with it.
    adopted: Mutex<Vec<Arc<Lifecycle>>>,
    aborting: AtomicBool,
    /// Set when the run failed anywhere: its driver stops at the next poll.
    halted: AtomicBool,
    /// Set when the consumer has taken the run's last item with no failure
    /// before (see [`commit`](Self::commit)).
    committed: AtomicBool,
    /// Lifecycles of runs fed by this one (fan-out branches): halted with it.
    downstream: Mutex<Vec<std::sync::Weak<Lifecycle>>>,
    run_waker: AtomicWaker,
    finished: Flag,
    started: OnceLock<Instant>,
}

impl Lifecycle {
    /// A waker slot for one source, woken by [`stop`](Self::stop).
    pub(crate) fn register_source(&self) -> Arc<AtomicWaker> {
        let waker = Arc::new(AtomicWaker::new());
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waker.clone());
        waker
    }

    /// Makes [`stop`](Self::stop) reach `other`'s sources too (for a
    /// pipeline merged into this one, whose sources keep their own signal).
    pub(crate) fn adopt(&self, other: Arc<Lifecycle>) {
        if self.is_stopping() {
            other.stop();
        }
        self.adopted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(other);
    }

    #[inline(always)]
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Asks every source to stop pulling from its producer.
    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return; // already stopped (this also ends adoption cycles)
        }
        for waker in self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            waker.wake();
        }
        let adopted = self
            .adopted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for other in adopted {
            other.stop();
        }
    }

    /// Asks the run to stop now: its forwarding loop returns at its next
    /// poll (woken here), then cancels and awaits the pipeline's tasks.
    pub(crate) fn abort(&self) {
        self.aborting.store(true, Ordering::SeqCst);
        self.run_waker.wake();
    }

    /// Halts the run (a failure anywhere in it, or in a run feeding it): its
    /// driver returns at its next poll (woken here) without closing the
    /// consumer. Runs fed by this one halt too.
    pub(crate) fn halt(&self) {
        if self.halted.swap(true, Ordering::SeqCst) {
            return;
        }
        self.run_waker.wake();
        let downstream = std::mem::take(
            &mut *self
                .downstream
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for other in downstream.iter().filter_map(std::sync::Weak::upgrade) {
            other.halt();
        }
    }

    /// Whether [`halt`](Self::halt) was called.
    #[inline]
    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// Makes [`halt`](Self::halt) reach `other` too (a fan-out branch fed by
    /// this run).
    pub(crate) fn feed(&self, other: &Arc<Lifecycle>) {
        if self.halted.load(Ordering::SeqCst) {
            other.halt();
        }
        self.downstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(other));
    }

    /// Registers the task reading the run (its driver, or whoever polls the
    /// pipeline as a plain stream) to be woken by [`halt`](Self::halt) and
    /// [`abort`](Self::abort).
    #[inline]
    pub(crate) fn register_run_waker(&self, cx: &mut std::task::Context<'_>) {
        self.run_waker.register(cx.waker());
    }

    /// For the run's forwarding loop: registers its waker and tells whether
    /// the run is being aborted.
    #[inline]
    pub(crate) fn poll_abort(&self, cx: &mut std::task::Context<'_>) -> bool {
        self.run_waker.register(cx.waker());
        self.aborting.load(Ordering::SeqCst)
    }

    /// Records the start of the run at `now()` (the runtime's clock, read
    /// on the first call only; first call wins).
    pub(crate) fn start(&self, now: impl FnOnce() -> Instant) -> Instant {
        *self.started.get_or_init(now)
    }

    pub(crate) fn started(&self) -> Option<Instant> {
        self.started.get().copied()
    }

    /// Marks the run committed: its stream ended (not at a halt) and the
    /// consumer took every item, so it goes on to close the sink. A failure
    /// after that — a side a `zip` stopped reading, a final progress report
    /// — no longer halts the driver, nor makes the run look failed: the
    /// consumer's close has begun and the run has completed.
    pub(crate) fn commit(&self) {
        self.committed.store(true, Ordering::SeqCst);
    }

    /// Whether [`commit`](Self::commit) was called.
    pub(crate) fn is_committed(&self) -> bool {
        self.committed.load(Ordering::SeqCst)
    }

    /// Marks the run finished (the consumer is closed, or the run failed).
    pub(crate) fn finish(&self) {
        self.finished.fire();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.is_fired()
    }

    /// Resolves once [`finish`](Self::finish) has been called.
    pub(crate) async fn finished(&self) {
        self.finished.wait().await
    }
}
