use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{FutureExt as _, LocalBoxFuture};
use futures::Stream;

use super::boundary::{pump_future, Boundary};
use super::buffer::pump_with_policy_future;
use super::overflow::{queue_batch, Overflow};
use crate::queue::{self, BatchOut, PollBatch, Resume};
use crate::run::{RunContext, StageInfo};

/// Stream for [`Pipeline::boundary_local`](crate::Pipeline::boundary_local)
/// and [`Pipeline::buffer_local`](crate::Pipeline::buffer_local): the
/// downstream end of the bounded queue, whose upstream task is not `Send`.
///
/// Never `Send` itself, whatever its items: the pipeline holding it keeps a
/// task that must stay on this thread.
#[must_use = "streams do nothing unless polled"]
pub struct BoundaryLocal<T> {
    inner: Boundary<T>,
    _not_send: PhantomData<Rc<()>>,
}

impl<T> fmt::Debug for BoundaryLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoundaryLocal").field(&self.inner).finish()
    }
}

impl<T: 'static> BoundaryLocal<T> {
    /// Returns the downstream stream and the upstream task, which moves
    /// whole batches when upstream's stages can hand them over
    /// (`poll_batch`), else item by item.
    pub(crate) fn new<S>(
        upstream: S,
        poll_batch: Option<PollBatch<S>>,
        capacity: usize,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, LocalBoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + 'static,
    {
        let (tx, rx) = queue::bounded(capacity, ctx.clone());
        let task = pump_future(upstream, poll_batch, tx, info.clone(), ctx).boxed_local();
        (Self::from_receiver(rx, info), task)
    }

    /// [`new`](Self::new) for `buffer_local`: the queue applies `overflow`.
    pub(crate) fn buffered<S>(
        upstream: S,
        poll_batch: Option<PollBatch<S>>,
        capacity: usize,
        overflow: Overflow,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, LocalBoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + 'static,
    {
        let batch = queue_batch(capacity, overflow);
        let (tx, rx) = queue::bounded_with(capacity, batch, Resume::HalfEmpty, ctx.clone());
        let task = match overflow {
            Overflow::Backpressure => {
                pump_future(upstream, poll_batch, tx, info.clone(), ctx).boxed_local()
            }
            _ => pump_with_policy_future(upstream, tx, overflow, info.clone(), ctx).boxed_local(),
        };
        (Self::from_receiver(rx, info), task)
    }

    fn from_receiver(rx: queue::Receiver<T>, info: Arc<StageInfo>) -> Self {
        BoundaryLocal {
            inner: Boundary::from_receiver(rx, info),
            _not_send: PhantomData,
        }
    }
}

impl<T> BoundaryLocal<T> {
    /// The queue's batch in hand, handed over whole where it fits (see
    /// [`PollBatch`]).
    pub(crate) fn poll_batch(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        self.inner.received_batch(cx, out.items(), max)
    }
}

impl<T> Stream for BoundaryLocal<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
