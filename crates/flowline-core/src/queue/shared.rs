//! The state both ends of a queue share, and the geometry that comes from
//! the capacity.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

use event_listener::{Event, Listener as _};

use crate::run::{wait_until, End};
use crate::PipelineError;

/// Largest batch a queue moves at once.
const MAX_BATCH: usize = 2048;

/// The largest batch for a queue of `capacity` items: a quarter of it,
/// between 1 and 2048. Four batches in flight let both ends work while a
/// batch crosses; larger batches than 2048 gain nothing measurable and cost
/// cache.
pub(crate) fn batch_size(capacity: usize) -> usize {
    (capacity / 4).clamp(1, MAX_BATCH)
}

/// When a sender that found the queue full may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Once the queue is down to half (and has room for a whole batch): a
    /// producer that outruns its consumer is woken once per half queue.
    HalfEmpty,
    /// As soon as there is room for an item. For a sender feeding several
    /// queues whose receivers may wait on one another (the branches of a
    /// fan-out read by one `zip`): a receiver that takes less than half a
    /// queue before it waits for another branch must still let the sender
    /// go on to that branch's items.
    AnyRoom,
}

/// What a queue's sender and receivers share.
///
/// Batches sit in a `Mutex<VecDeque>`: every operation on it moves a whole
/// batch, so the lock is taken once per batch (not per item) and is almost
/// never contended; it is what lets [`Overflow::DropOldest`] take a single
/// item off the oldest batch.
///
/// [`Overflow::DropOldest`]: crate::stage::Overflow::DropOldest
pub(super) struct Shared<T> {
    pub(super) capacity: usize,
    pub(super) batch: usize,
    /// The sender waits for room until `queued` is at or below this (see
    /// [`Resume`]).
    low_water: usize,
    /// Items in queued batches (the sender's open batch is not counted).
    /// Changed only under the `batches` lock, read without it.
    queued: AtomicUsize,
    batches: Mutex<VecDeque<Vec<T>>>,
    /// Notified when a batch is queued or the queue ends.
    pub(super) data: Event,
    /// Notified when `queued` falls to `low_water` or the last receiver goes.
    pub(super) space: Event,
    /// 0 while open, else the [`End`] (see [`code`]).
    end: AtomicU8,
    pub(super) receivers: AtomicUsize,
    /// Whether a receiver waits on an empty queue: [`FED`], [`STARVING`] or,
    /// until a receiver first polls, [`NOT_POLLED`] (see
    /// [`may_starve`](Self::may_starve) and [`starves`](Self::starves)).
    appetite: AtomicU8,
    /// The error a failed end brings its receiver's run (`Sender::fail`).
    error: Mutex<Option<PipelineError>>,
}

/// [`Shared::appetite`]: the receiver took a batch and has not found the
/// queue empty since.
const FED: u8 = 0;
/// [`Shared::appetite`]: a receiver waits on an empty queue.
const STARVING: u8 = 1;
/// [`Shared::appetite`]: no receiver has polled yet.
const NOT_POLLED: u8 = 2;

fn code(end: End) -> u8 {
    match end {
        End::Completed => 1,
        End::Failed => 2,
        End::Aborted => 3,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize, batch: usize, resume: Resume) -> Self {
        let low_water = match resume {
            Resume::HalfEmpty => (capacity / 2).min(capacity - batch),
            Resume::AnyRoom => capacity - 1,
        };
        Shared {
            capacity,
            batch,
            low_water,
            queued: AtomicUsize::new(0),
            batches: Mutex::new(VecDeque::new()),
            data: Event::new(),
            space: Event::new(),
            end: AtomicU8::new(0),
            receivers: AtomicUsize::new(1),
            appetite: AtomicU8::new(NOT_POLLED),
            error: Mutex::new(None),
        }
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.load(SeqCst)
    }

    /// Whether the sender may stop waiting for room.
    pub(super) fn has_space(&self) -> bool {
        self.queued() <= self.low_water || self.receivers.load(SeqCst) == 0
    }

    /// Waits until the queue has room for a whole batch, or every receiver
    /// is gone.
    pub(super) async fn wait_for_space(&self) {
        wait_until(&self.space, || self.has_space()).await
    }

    /// Waits, blocking the thread, until the queue has room for a whole
    /// batch, or every receiver is gone (for a sender on a plain thread).
    pub(super) fn wait_for_space_blocking(&self) {
        while !self.has_space() {
            let listener = self.space.listen();
            if self.has_space() {
                return;
            }
            listener.wait();
        }
    }

    /// Keeps `error` for the receiver that finds the queue ended
    /// [`End::Failed`].
    pub(super) fn set_error(&self, error: PipelineError) {
        lock(&self.error).get_or_insert(error);
    }

    /// The error a failed end brings, taken once.
    pub(super) fn take_error(&self) -> Option<PipelineError> {
        lock(&self.error).take()
    }

    /// Queues a non-empty batch and wakes a receiver.
    pub(super) fn push(&self, batch: Vec<T>) {
        {
            let mut batches = lock(&self.batches);
            // Counted under the lock, before a receiver can take the batch
            // and subtract it.
            self.queued.fetch_add(batch.len(), SeqCst);
            batches.push_back(batch);
        }
        self.data.notify_additional(1);
    }

    /// Takes the oldest batch, waking the sender if that made room.
    pub(super) fn pop(&self) -> Option<Vec<T>> {
        let (batch, before) = {
            let mut batches = lock(&self.batches);
            let batch = batches.pop_front()?;
            let before = self.queued.fetch_sub(batch.len(), SeqCst);
            (batch, before)
        };
        if before > self.low_water && before - batch.len() <= self.low_water {
            self.space.notify(1);
        }
        Some(batch)
    }

    /// Takes the oldest queued item out of the queue (for
    /// [`Overflow::DropOldest`](crate::stage::Overflow::DropOldest)).
    pub(super) fn pop_oldest_item(&self) -> Option<T> {
        let mut batches = lock(&self.batches);
        let front = batches.front_mut()?;
        // A batch of a drop policy's queue is small (see `Sender`'s users),
        // so shifting it costs little.
        let item = front.remove(0);
        if front.is_empty() {
            batches.pop_front();
        }
        self.queued.fetch_sub(1, SeqCst);
        Some(item)
    }

    /// Records how the queue ended (the first call wins) and wakes every
    /// receiver.
    pub(super) fn finish(&self, end: End) {
        let _ = self.end.compare_exchange(0, code(end), SeqCst, SeqCst);
        self.data.notify(usize::MAX);
    }

    /// How the queue ended, if it has.
    pub(super) fn end(&self) -> Option<End> {
        match self.end.load(SeqCst) {
            0 => None,
            1 => Some(End::Completed),
            2 => Some(End::Failed),
            _ => Some(End::Aborted),
        }
    }

    /// Marks the receiver as waiting (or not) for a batch; written only on
    /// a change, so a busy receiver does not touch the sender's cache line.
    pub(super) fn set_starving(&self, starving: bool) {
        let appetite = if starving { STARVING } else { FED };
        if self.appetite.load(Relaxed) != appetite {
            self.appetite.store(appetite, Relaxed);
        }
    }

    /// Whether a receiver waits on an empty queue, or may (it has not
    /// polled yet; it usually is about to). For a sender that sends a held
    /// batch early once it has held it for a while (the pumps): at most
    /// one early batch per hold time, so presuming a new receiver hungry
    /// costs little, and a pump polled before its receiver (as without a
    /// runtime) still hands over its first items promptly.
    pub(super) fn may_starve(&self) -> bool {
        self.appetite.load(Relaxed) != FED
    }

    /// Whether a receiver waits on an empty queue, known from its poll. For
    /// a sender that sends its open batch at once for a starving receiver
    /// (a fan-out after each item): a receiver that has not polled yet (a
    /// branch whose consumer starts late) would otherwise be sent an item
    /// per batch.
    pub(super) fn starves(&self) -> bool {
        self.appetite.load(Relaxed) == STARVING
    }

    /// Item slots allocated by the queued batches.
    #[cfg(test)]
    pub(super) fn queued_slots(&self) -> usize {
        lock(&self.batches).iter().map(Vec::capacity).sum()
    }
}
