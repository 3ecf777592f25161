use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::shared::Shared;
use crate::run::StageInfo;

/// The source stage of a pipeline made by [`bridge::feeder`](super::feeder):
/// yields what the [`Feeder`](super::Feeder)s push, in push order.
///
/// It takes everything queued in one step and hands it out from a private
/// batch, so a busy pipeline synchronises with the pushers once per batch.
/// Dropping it (with its pipeline) closes the feeder: pushes then fail and
/// hand their items back.
///
/// # Examples
///
/// ```
/// use flowline_core::bridge;
///
/// let (feeder, pipeline) = bridge::feeder(4);
/// feeder.push(1).unwrap();
/// feeder.push(2).unwrap();
/// drop(feeder);
/// // A pipeline is a Stream; the source of this one is a `Feed`.
/// let stream = pipeline.map(|x| x * 3);
/// let items: Vec<i32> = futures::executor::block_on(futures::StreamExt::collect(stream));
/// assert_eq!(items, [3, 6]);
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Feed<T> {
    shared: Arc<Shared<T>>,
    batch: VecDeque<T>,
    info: Option<Arc<StageInfo>>,
    ended: bool,
}

impl<T> Feed<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, info: Option<Arc<StageInfo>>) -> Self {
        Feed {
            shared,
            batch: VecDeque::new(),
            info,
            ended: false,
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
            // The lanes are `Vec`s: the emptied batch goes back as one (an
            // empty deque becomes a `Vec` without moving anything), and the
            // taken lane becomes the batch without a copy.
            let mut taken = Vec::from(mem::take(&mut self.batch));
            let more = self.shared.poll_take(&mut taken, cx);
            self.batch = VecDeque::from(taken);
            if !futures::ready!(more) {
                self.ended = true;
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
