//! The receiving end: a stream of items, and the outcome at its end.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;
use futures::Stream;

use super::Shared;
use crate::run::{End, RunContext};

/// Items [`Receiver::poll_batch`] gathers from small queued batches, at most.
const COALESCE: usize = 64;

/// The receiving end of a queue (see the [module docs](super)): yields the
/// items of each batch in order, then ends or halts its run as the sender
/// finished.
pub(crate) struct Receiver<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// The batch being handed out.
    current: std::vec::IntoIter<T>,
    /// Registered while waiting on an empty queue.
    listener: Option<EventListener>,
    /// The run halted when the queue ends other than `Completed`.
    ctx: Arc<RunContext>,
    pub(super) halted: bool,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .field("queued", &self.shared.queued())
            .field("in_hand", &self.current.len())
            .field("end", &self.shared.end())
            .finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    pub(super) fn new(shared: Arc<Shared<T>>, ctx: Arc<RunContext>) -> Self {
        Receiver {
            shared,
            current: Vec::new().into_iter(),
            listener: None,
            ctx,
            halted: false,
        }
    }

    /// Another receiver of the same queue, halting `ctx` (a worker of a
    /// [`balance`](crate::Pipeline::balance)): each batch goes to one of
    /// them.
    pub(crate) fn another(&self, ctx: Arc<RunContext>) -> Self {
        self.shared.receivers.fetch_add(1, SeqCst);
        Receiver::new(self.shared.clone(), ctx)
    }

    /// Items queued (not counting the batch in hand).
    pub(crate) fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// The queue's capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The slow path: the batch in hand is spent; take the next one, or
    /// wait, or end.
    #[inline(never)]
    fn poll_refill(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.poll_in_hand(cx) {
            Poll::Ready(true) => Poll::Ready(self.current.next()),
            Poll::Ready(false) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Makes sure a batch is in hand: `Ready(true)` when one is,
    /// `Ready(false)` when the queue completed, `Pending` while waiting for
    /// a batch or after a failure (see the [module docs](super)).
    fn poll_in_hand(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.current.len() > 0 {
            return Poll::Ready(true);
        }
        if self.halted {
            return Poll::Pending;
        }
        loop {
            // Read before popping: the sender queues its last batch before
            // it records the end, so an end seen here means that an empty
            // pop below is final.
            let end = self.shared.end();
            if let Some(batch) = self.shared.pop() {
                self.shared.set_starving(false);
                self.listener = None;
                self.current = batch.into_iter();
                return Poll::Ready(true);
            }
            match end {
                Some(End::Completed) => return Poll::Ready(false),
                Some(End::Failed | End::Aborted) => {
                    // The error is in the context, or comes with the end
                    // (`Sender::fail`); the driver stops the run without
                    // taking this for an end of stream.
                    self.halted = true;
                    self.listener = None;
                    match self.shared.take_error() {
                        Some(error) => self.ctx.fail(error),
                        None => self.ctx.halt(),
                    }
                    return Poll::Pending;
                }
                None => {}
            }
            match &mut self.listener {
                None => {
                    self.shared.set_starving(true);
                    self.listener = Some(self.shared.data.listen());
                }
                Some(listener) => {
                    futures::ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
    }

    /// Moves at most `max` (≥ 1) items of the batch in hand (taking the
    /// next batch first if it is spent) to `out`, as
    /// a [`PollBatch`](super::PollBatch) says:
    /// a whole batch moves as it is — its allocation handed over, no item
    /// copied — when `out` is empty and the batch fits.
    pub(crate) fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<T>,
        max: usize,
    ) -> Poll<bool> {
        if !futures::ready!(self.poll_in_hand(cx)) {
            return Poll::Ready(false);
        }
        if out.is_empty() && self.current.len() <= max {
            // Collecting an unread `vec::IntoIter` reuses its buffer.
            *out = std::mem::take(&mut self.current).collect();
        } else {
            let n = max.min(self.current.len());
            out.extend(self.current.by_ref().take(n));
        }
        // Small batches queued behind that one (a trickle, or a sender that
        // sent item by item to a receiver that was waiting, or had not
        // started yet): taken too, never waiting, so a reader that fell
        // behind catches up a batch at a time. Up to `COALESCE` items, so
        // whole batches are not copied.
        while out.len() < max.min(COALESCE) && self.current.len() == 0 {
            let Some(batch) = self.shared.pop() else {
                break;
            };
            self.current = batch.into_iter();
            let n = (max - out.len()).min(self.current.len());
            out.extend(self.current.by_ref().take(n));
        }
        Poll::Ready(true)
    }
}

// The batch in hand is never pinned: items move out of it by value.
impl<T> Unpin for Receiver<T> {}

impl<T> Stream for Receiver<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.current.next() {
            Some(item) => Poll::Ready(Some(item)),
            None => self.poll_refill(cx),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, SeqCst) == 1 {
            // A sender waiting for room must learn that nobody will make it.
            self.shared.space.notify(usize::MAX);
        }
    }
}
