//! The bounded queue of micro-batches that joins a stage task to the stream
//! downstream of it. Shared by [`Boundary`](super::Boundary) and the
//! concurrent stages (`map_concurrent*`), whose tasks push results into it.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender};
use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

/// Creates a queue of `slots` batches: the sending half for a stage task and
/// the receiving stream, which counts emitted items on `info`.
pub(crate) fn batch_queue<T>(
    slots: usize,
    info: Arc<StageInfo>,
) -> (Sender<Vec<T>>, BatchQueue<T>) {
    let (tx, rx) = async_channel::bounded(slots);
    let queue = BatchQueue {
        rx,
        current: Vec::new().into_iter(),
        info,
    };
    (tx, queue)
}

pin_project! {
    /// The downstream end of a [`batch_queue`]: yields the items of each
    /// batch in order, and ends when every sender is gone.
    pub(crate) struct BatchQueue<T> {
        #[pin]
        rx: Receiver<Vec<T>>,
        current: std::vec::IntoIter<T>,
        info: Arc<StageInfo>,
    }
}

impl<T> fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchQueue")
            .field("queued_batches", &self.rx.len())
            .field("draining", &self.current.len())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for BatchQueue<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        loop {
            if let Some(item) = this.current.next() {
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
            match futures::ready!(this.rx.as_mut().poll_next(cx)) {
                Some(batch) => *this.current = batch.into_iter(),
                None => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.current.len(), None)
    }
}
