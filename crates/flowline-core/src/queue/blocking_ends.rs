//! Ends that are not async tasks: a plain thread that sends or receives
//! (the threads of `from_blocking_iter` and `consumer::blocking`), a `Sink`
//! that must wait for room in `poll_ready`, and a failure that reaches the
//! receiver's run only after the items queued before it.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::EventListener;

use super::{PushError, Receiver, Sender};
use crate::run::End;
use crate::PipelineError;

impl<T> Sender<T> {
    /// [`send`](Self::send) for a plain thread: adds `item`, blocking the
    /// thread while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone (a receiver that
    /// goes away wakes a blocked sender).
    pub(crate) fn send_blocking(&mut self, mut item: T) -> Result<(), PushError<T>> {
        loop {
            match self.try_push(item) {
                Err(PushError::Full(back)) => item = back,
                done => return done,
            }
            self.shared.wait_for_space_blocking();
        }
    }

    /// `Ready` once [`try_push`](Self::try_push) would take an item (or
    /// every receiver is gone); else registers `cx` to be woken when the
    /// queue lets a full sender go on (see [`Resume`](super::Resume)).
    /// `listener` is the caller's, kept between polls.
    pub(crate) fn poll_room(
        &self,
        cx: &mut Context<'_>,
        listener: &mut Option<EventListener>,
    ) -> Poll<()> {
        loop {
            // A batch reaching its limit is sent at once, so a full queue
            // never leaves items waiting in the open batch.
            if self.open.len() < self.limit || self.room() > 0 || self.is_closed() {
                *listener = None;
                return Poll::Ready(());
            }
            match listener {
                None => *listener = Some(self.shared.space.listen()),
                Some(waiting) => {
                    futures::ready!(Pin::new(waiting).poll(cx));
                    *listener = None;
                }
            }
        }
    }

    /// Items in the open batch (sent at the next [`flush`](Self::flush)).
    pub(crate) fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Whether the receiver waits on an empty queue, or has not polled yet
    /// (it usually is about to): an item held in the open batch may delay
    /// it.
    pub(crate) fn receiver_waiting(&self) -> bool {
        self.shared.may_starve()
    }

    /// Sends the open batch, then ends the queue [`End::Failed`] with
    /// `error`: the receiver yields every item queued before, then records
    /// `error` in its run (as `RunContext::fail`) and halts it. For an
    /// upstream whose failure should not overtake its earlier items (a
    /// blocking iterator that panicked). A no-op if the queue has ended.
    pub(crate) fn fail(mut self, error: PipelineError) {
        if self.shared.end().is_some() {
            return;
        }
        let _ = self.flush();
        self.shared.set_error(error);
        self.shared.finish(End::Failed);
    }
}

impl<T> Receiver<T> {
    /// The next batch, whole, blocking the thread while the queue is empty
    /// (for a plain thread). `None` at the end of the queue, whatever the
    /// outcome: on [`End::Failed`] / [`End::Aborted`] the receiver's run is
    /// halted first, as when polled.
    pub(crate) fn recv_batch_blocking(&mut self) -> Option<Vec<T>> {
        let mut batch = Vec::new();
        let more = futures::executor::block_on(poll_fn(|cx| {
            match self.poll_batch(cx, &mut batch, usize::MAX) {
                Poll::Pending if self.halted => Poll::Ready(false),
                polled => polled,
            }
        }));
        more.then_some(batch)
    }
}
