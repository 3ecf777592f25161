use std::fmt;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use pin_project_lite::pin_project;

use crate::run::{RunContext, StageInfo};

/// Largest micro-batch a boundary moves at once.
const MAX_BATCH: usize = 256;

/// Batch size and queue slots for a boundary of `capacity` items.
///
/// The queue holds `slots` batches of up to `batch` items, and the upstream
/// task fills one more batch while the queue is full, so at most
/// `slots * batch + batch` items are between upstream and downstream, plus the
/// batch downstream is draining. `slots = capacity / batch - 1` keeps that at
/// `capacity + batch` (for capacity 1 the floor of one slot allows 2 more).
pub(crate) fn batch_geometry(capacity: usize) -> (usize, usize) {
    let batch = (capacity / 4).clamp(1, MAX_BATCH);
    let slots = (capacity / batch).saturating_sub(1).max(1);
    (batch, slots)
}

pin_project! {
    /// Stream for [`Pipeline::boundary`](crate::Pipeline::boundary): the
    /// downstream end of the bounded queue.
    #[must_use = "streams do nothing unless polled"]
    pub struct Boundary<T> {
        #[pin]
        rx: Receiver<Vec<T>>,
        current: std::vec::IntoIter<T>,
        info: Arc<StageInfo>,
    }
}

impl<T> fmt::Debug for Boundary<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boundary")
            .field("queued_batches", &self.rx.len())
            .field("draining", &self.current.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Boundary<T> {
    /// Returns the downstream stream and the upstream task.
    pub(crate) fn new<S>(
        upstream: S,
        capacity: usize,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, BoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let (batch, slots) = batch_geometry(capacity);
        let (tx, rx) = async_channel::bounded(slots);
        let fallback = info.clone();
        let task = async move {
            if let Err(payload) = AssertUnwindSafe(pump(upstream, tx, batch))
                .catch_unwind()
                .await
            {
                ctx.fail_with_panic(&*payload, &fallback.name());
            }
        }
        .boxed();
        let stream = Boundary {
            rx,
            current: Vec::new().into_iter(),
            info,
        };
        (stream, task)
    }
}

/// Moves items from `upstream` into `tx` in adaptive batches: a batch is sent
/// when it is full, or as soon as upstream would wait, so a trickle is never
/// held back waiting for a batch to fill.
async fn pump<S: Stream>(upstream: S, tx: Sender<Vec<S::Item>>, max_batch: usize) {
    let mut upstream = pin!(upstream);
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        let ended = poll_fn(|cx| loop {
            match upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    batch.push(item);
                    if batch.len() == max_batch {
                        return Poll::Ready(false);
                    }
                }
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Pending if batch.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(false),
            }
        })
        .await;
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return; // downstream is gone
        }
        if ended {
            return;
        }
    }
}

impl<T> Stream for Boundary<T> {
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
}

#[cfg(test)]
mod tests {
    use super::batch_geometry;

    #[test]
    fn geometry_bounds_items_to_capacity_plus_one_batch() {
        for capacity in 2..5000 {
            let (batch, slots) = batch_geometry(capacity);
            assert!(batch >= 1 && slots >= 1);
            assert!(
                slots * batch + batch <= capacity + batch,
                "capacity {capacity}: {slots} slots of {batch}"
            );
        }
        assert_eq!(batch_geometry(1), (1, 1));
        assert_eq!(batch_geometry(1024), (256, 3));
    }
}
