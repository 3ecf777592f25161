//! The sending end: an open batch and the moves that send it.

use std::fmt;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use super::Shared;
use crate::run::End;

/// Why an item was not queued; the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError<T> {
    /// The queue holds `capacity` items.
    Full(T),
    /// Every receiver is gone.
    Closed(T),
}

/// The sending end of a queue (see the [module docs](super)): items go into
/// an open batch, which is sent when it reaches its limit, when the caller
/// flushes it (because upstream would wait), or when the sender finishes.
pub(crate) struct Sender<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// The batch being filled; counted against the capacity, not queued yet.
    pub(super) open: Vec<T>,
    /// How many items the open batch may hold: the room there was when it
    /// was opened, at most a batch. Zero when no batch is open.
    pub(super) limit: usize,
    /// Capacity to allocate for the next batch: the size of the last one
    /// sent, so a busy queue allocates each batch once and a trickle one
    /// item at a time.
    pub(super) hint: usize,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .field("queued", &self.shared.queued())
            .field("open", &self.open.len())
            .finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        Sender {
            shared,
            open: Vec::new(),
            limit: 0,
            hint: 1,
        }
    }

    /// The queue's capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether every receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.receivers.load(SeqCst) == 0
    }

    /// Items the queue can take now without waiting.
    pub(super) fn room(&self) -> usize {
        self.shared.capacity - self.shared.queued() - self.open.len()
    }

    /// Opens a batch as large as the room allows (at most a batch).
    /// Returns `false` when the queue is full. The open batch must be empty.
    pub(super) fn open_batch(&mut self) -> bool {
        debug_assert!(self.open.is_empty());
        self.limit = self.room().min(self.shared.batch);
        self.limit > 0
    }

    /// Appends to the open batch (which has room, `open.len() < limit`),
    /// growing it only up to its limit.
    #[inline(always)]
    fn push_open(&mut self, item: T) {
        if self.open.len() == self.open.capacity() {
            self.grow();
        }
        self.open.push(item);
    }

    /// Makes the open batch's capacity at least `items` (at most its limit).
    pub(super) fn reserve_to(&mut self, items: usize) {
        let want = items.min(self.limit);
        if self.open.capacity() < want {
            self.open.reserve_exact(want - self.open.len());
        }
    }

    #[cold]
    fn grow(&mut self) {
        let (len, cap) = (self.open.len(), self.open.capacity());
        let extra = cap.max(self.hint).min(self.limit - len).max(1);
        self.open.reserve_exact(extra);
    }

    /// Sends the open batch now, if it holds anything. Never waits: the
    /// batch's items were already counted against the capacity.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] (with nothing) when every receiver is gone; the
    /// open batch is dropped.
    pub(crate) fn flush(&mut self) -> Result<(), PushError<()>> {
        self.limit = 0;
        if self.open.is_empty() {
            return Ok(());
        }
        if self.is_closed() {
            self.open.clear();
            return Err(PushError::Closed(()));
        }
        let mut batch = std::mem::take(&mut self.open);
        // A part-full batch gives back its spare slots before it is queued
        // (in place for most allocators), so queued memory is items only.
        batch.shrink_to_fit();
        self.hint = batch.len();
        self.shared.push(batch);
        Ok(())
    }

    /// Sends the open batch now if the receiver is waiting for items: for
    /// callers that push item by item and have no pump to notice that.
    pub(crate) fn flush_if_starving(&mut self) {
        if self.shared.starves() {
            let _ = self.flush();
        }
    }

    /// Adds `item` without waiting: to the open batch, or to a new one when
    /// there is room. A batch that reaches its limit is sent at once.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when the queue holds `capacity` items (the open
    /// batch is sent first), [`PushError::Closed`] when every receiver is
    /// gone.
    pub(crate) fn try_push(&mut self, item: T) -> Result<(), PushError<T>> {
        if self.open.len() == self.limit {
            if self.flush().is_err() || self.is_closed() {
                return Err(PushError::Closed(item));
            }
            if !self.open_batch() {
                return Err(PushError::Full(item));
            }
        }
        self.push_open(item);
        if self.open.len() == self.limit && self.flush().is_err() {
            // The receivers went away: the batch is gone with them.
            return Ok(());
        }
        Ok(())
    }

    /// Adds `item`, waiting for room while the queue is full
    /// (backpressure).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone.
    pub(crate) async fn send(&mut self, mut item: T) -> Result<(), PushError<T>> {
        loop {
            match self.try_push(item) {
                Err(PushError::Full(back)) => item = back,
                done => return done,
            }
            self.shared.wait_for_space().await;
        }
    }

    /// Adds `item`, making room by dropping the oldest queued item when the
    /// queue is full. Returns the dropped item, if any.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone.
    pub(crate) fn push_displacing(&mut self, item: T) -> Result<Option<T>, PushError<T>> {
        let item = match self.try_push(item) {
            Err(PushError::Full(item)) => item,
            other => return other.map(|()| None),
        };
        // The open batch was just sent: the oldest item is in the queue,
        // unless a receiver took everything meanwhile.
        let displaced = self.shared.pop_oldest_item();
        self.try_push(item).map(|()| displaced)
    }

    /// Ends the queue with `end`. On [`End::Completed`] the open batch is
    /// sent first; on a failure it is dropped (the run is halting).
    pub(crate) fn finish(mut self, end: End) {
        self.end(end);
    }

    /// [`finish`](Self::finish) for a sender kept in a collection. Only the
    /// first end counts: a later one changes nothing.
    pub(crate) fn end(&mut self, end: End) {
        if self.shared.end().is_some() {
            return;
        }
        if end == End::Completed {
            let _ = self.flush();
        } else {
            self.open.clear();
            self.limit = 0;
        }
        self.shared.finish(end);
    }

    /// Item slots allocated by the queued batches and the open batch.
    #[cfg(test)]
    pub(super) fn allocated_slots(&self) -> usize {
        self.shared.queued_slots() + self.open.capacity()
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // A no-op after `finish`: the first end recorded wins.
        self.shared.finish(End::Aborted);
    }
}
