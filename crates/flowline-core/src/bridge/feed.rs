use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::shared::Shared;
use crate::run::StageInfo;

/// Polls that find the queue empty before the consumer sleeps.
const SPIN_POLLS: u32 = 16;

/// The source stage of a pipeline made by [`bridge::feeder`](super::feeder):
/// yields what the [`Feeder`](super::Feeder)s push, in push order.
///
/// It takes everything queued in one step and hands it out from a private
/// batch, so a busy pipeline synchronises with the pushers once per batch.
/// When it finds nothing, it yields to the executor a few times (checking a
/// lock-free hint, never taking the lock) before it sleeps, so a steady
/// pusher rarely has to pay for waking it.
/// Dropping it (with its pipeline) closes the feeder: pushes then fail and
/// hand their items back.
#[must_use = "streams do nothing unless polled"]
pub struct Feed<T> {
    shared: Arc<Shared<T>>,
    batch: VecDeque<T>,
    info: Option<Arc<StageInfo>>,
    ended: bool,
    /// Polls in a row that found the queue empty.
    idle_polls: u32,
    /// Polls that may find the queue empty before the consumer sleeps.
    spin_polls: u32,
}

impl<T> Feed<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, info: Option<Arc<StageInfo>>, spin: bool) -> Self {
        Feed {
            shared,
            batch: VecDeque::new(),
            info,
            ended: false,
            idle_polls: 0,
            spin_polls: if spin { SPIN_POLLS } else { 0 },
        }
    }

    /// Polls for the next item; shared with [`Drain`](super::Drain), which
    /// polls it with a thread-parking waker.
    pub(crate) fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                if let Some(info) = &self.info {
                    info.out.bump();
                }
                return Poll::Ready(Some(item));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            // Before sleeping, yield to the executor a few times, checking a
            // lock-free hint: a pusher in full flight refills the queue within
            // a microsecond or two, and a consumer that finds it so has spared
            // the pusher a wake-up call (a syscall) for that batch.
            if self.idle_polls > 0
                && self.idle_polls < self.spin_polls
                && !self.shared.maybe_nonempty()
            {
                self.idle_polls += 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let register = self.idle_polls >= self.spin_polls;
            match self.shared.poll_take(&mut self.batch, cx, register) {
                Poll::Ready(true) => self.idle_polls = 0,
                Poll::Ready(false) => self.ended = true,
                Poll::Pending if register => {
                    self.idle_polls = 0;
                    return Poll::Pending;
                }
                Poll::Pending => {
                    self.idle_polls += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T> Stream for Feed<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> Unpin for Feed<T> {}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        self.shared.remove_consumer();
    }
}

impl<T> fmt::Debug for Feed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("queued", &self.shared.len())
            .field("batch", &self.batch.len())
            .finish_non_exhaustive()
    }
}
