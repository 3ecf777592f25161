use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use event_listener::{Event, EventListener};
use futures::task::{ArcWake, AtomicWaker};

use super::TryPushError;
use crate::runtime::Runtime;

/// The queue between the pushing side (any number of [`Feeder`](super::Feeder)s)
/// and the one consuming side ([`Feed`](super::Feed), or a
/// [`Drain`](super::Drain)).
///
/// # Why a burst can never strand an item
///
/// Everything — the items, the closed flag, the consumer's waker — lives under
/// one mutex. A push appends and takes the consumer's waker in the same
/// critical section; the consumer either finds items (and takes *all* of
/// them) or stores its waker, also in one critical section. So there is no
/// window in which an item is queued while the consumer sleeps with no waker
/// to call: the set/clear race of an asyncio `Event` paired with a queue
/// cannot happen, however many pushes land between two wake-ups.
///
/// # Why it is fast
///
/// A push is an uncontended lock, a `push_back` and an unlock; it wakes the
/// consumer only when the consumer is actually asleep, i.e. once per burst. The
/// consumer swaps the whole queue out in one lock, so a busy consumer pays the
/// synchronisation once per batch, not once per item. A blocking push that
/// finds the queue full yields its thread a few times before it parks: the
/// consumer is usually microseconds from taking the whole queue, and a
/// park/wake pair costs syscalls and a scheduling delay. (A consumer that
/// yields to its executor before sleeping was tried too: no robust gain, and
/// it interferes with work-stealing schedulers, so it sleeps at once.)
#[derive(Debug)]
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Pushers waiting for room, and the run's shutdown signal.
    gate: Arc<Gate>,
    capacity: usize,
    /// The consuming pipeline's runtime, for `push_timeout`'s deadline: set
    /// when the consumer first looks (the run has started); `None` inside
    /// when it has no executor of its own (runtime-free: the real clock).
    clock: OnceLock<Option<Arc<dyn Runtime>>>,
}

/// The part of a queue that does not depend on the item type, so the run's
/// shutdown can reach it through a plain [`Waker`]: woken (by
/// `Lifecycle::stop`), it refuses further pushes, wakes every blocked pusher
/// (they fail and hand their items back) and wakes the consumer, which
/// delivers what was accepted before and then ends.
///
/// # Why no accepted item is stranded
///
/// A push checks `stopped` under the queue's lock. One that saw it clear has
/// queued its item before the consumer's next look under that lock, and the
/// consumer only ends on an *empty* stopped queue.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    stopped: AtomicBool,
    /// Pushers waiting for room (or for the queue to close).
    space: Event,
    /// The consumer, woken on stop (it may be asleep on an empty queue).
    consumer: AtomicWaker,
}

impl Gate {
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

impl ArcWake for Gate {
    fn wake_by_ref(arc: &Arc<Self>) {
        arc.stopped.store(true, Ordering::SeqCst);
        arc.space.notify(usize::MAX);
        arc.consumer.wake();
    }
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    /// No more pushes are accepted: closed by a feeder, by the last feeder's
    /// drop, or by the consumer's drop.
    closed: bool,
    /// Live `Feeder` handles.
    feeders: usize,
    /// The consumer, when it found the queue empty and went to sleep.
    consumer: Option<Waker>,
}

impl<T> Shared<T> {
    /// A queue with one feeder handle counted.
    pub(crate) fn new(capacity: usize) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                feeders: 1,
                consumer: None,
            }),
            gate: Arc::default(),
            capacity,
            clock: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The clock `push_timeout` times on: the consuming pipeline's runtime,
    /// once its run has started and if it has an executor; else `None`, the
    /// real clock.
    pub(crate) fn clock(&self) -> Option<Arc<dyn Runtime>> {
        self.clock.get().cloned().flatten()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed || self.gate.is_stopped()
    }

    /// A waker that stops this queue as a run's shutdown does (see [`Gate`]),
    /// for `Lifecycle::register_source`.
    pub(crate) fn stop_waker(&self) -> Waker {
        futures::task::waker(self.gate.clone())
    }

    pub(crate) fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        let mut state = self.lock();
        if state.closed || self.gate.is_stopped() {
            return Err(TryPushError::Closed(item));
        }
        if state.queue.len() >= self.capacity {
            return Err(TryPushError::Full(item));
        }
        state.queue.push_back(item);
        let consumer = state.consumer.take();
        drop(state);
        if let Some(waker) = consumer {
            waker.wake();
        }
        Ok(())
    }

    /// A listener for the next time room is made or the queue closes. Create
    /// it *before* re-checking with [`try_push`](Self::try_push), so a swap
    /// between the check and the wait is not missed.
    pub(crate) fn listen_for_space(&self) -> EventListener {
        self.gate.space.listen()
    }

    /// Moves every queued item into `batch` (which must be empty), or registers
    /// the consumer's waker. `Ready(false)` means the queue is closed and empty:
    /// the stream has ended.
    pub(crate) fn poll_take(&self, batch: &mut VecDeque<T>, cx: &mut Context<'_>) -> Poll<bool> {
        debug_assert!(batch.is_empty());
        if self.clock.get().is_none() {
            // The first look of the consumer: its pipeline's runtime is
            // current now (none when runtime-free, or for a `Drain`'s reader).
            let runtime = crate::time::pipeline_runtime().filter(|rt| rt.has_executor());
            let _ = self.clock.set(runtime);
        }
        let mut state = self.lock();
        if !state.queue.is_empty() {
            // Pushers block only on a full queue, and only the consumer makes
            // room, so a taken batch shorter than capacity means nobody waits.
            let was_full = state.queue.len() >= self.capacity;
            // The emptied buffer goes back, keeping its allocation.
            mem::swap(batch, &mut state.queue);
            drop(state);
            if was_full {
                // Room for `capacity` items: wake that many pushers, not a
                // herd. A notified listener dropped unused passes its
                // notification on, so none is lost.
                self.gate.space.notify(self.capacity);
            }
            return Poll::Ready(true);
        }
        if state.closed || self.gate.is_stopped() {
            return Poll::Ready(false);
        }
        match &mut state.consumer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        drop(state);
        // A stop after the look above wakes this registration.
        self.gate.consumer.register(cx.waker());
        if self.gate.is_stopped() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Refuses further pushes; what is queued is still delivered.
    pub(crate) fn close(&self) -> bool {
        let mut state = self.lock();
        let was_open = !mem::replace(&mut state.closed, true);
        let consumer = state.consumer.take();
        drop(state);
        self.wake_all(consumer);
        was_open
    }

    pub(crate) fn add_feeder(&self) {
        self.lock().feeders += 1;
    }

    /// Drops a feeder handle; the last one closes the queue.
    pub(crate) fn remove_feeder(&self) {
        let mut state = self.lock();
        state.feeders -= 1;
        if state.feeders == 0 {
            state.closed = true;
            let consumer = state.consumer.take();
            drop(state);
            self.wake_all(consumer);
        }
    }

    /// The consumer is gone: close, and drop what nobody will read.
    pub(crate) fn remove_consumer(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.consumer = None;
        let orphans = mem::take(&mut state.queue);
        drop(state);
        drop(orphans); // outside the lock: an item's Drop may do anything
        self.gate.space.notify(usize::MAX);
    }

    fn wake_all(&self, consumer: Option<Waker>) {
        if let Some(waker) = consumer {
            waker.wake();
        }
        self.gate.space.notify(usize::MAX);
    }
}
