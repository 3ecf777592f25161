use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{FutureExt as _, LocalBoxFuture};
use futures::Stream;

use super::boundary::{pump_future, Boundary};
use crate::queue;
use crate::run::{RunContext, StageInfo};

/// Stream for [`Pipeline::boundary_local`](crate::Pipeline::boundary_local):
/// the downstream end of the bounded queue, whose upstream task is not
/// `Send`.
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
    /// Returns the downstream stream and the upstream task.
    pub(crate) fn new<S>(
        upstream: S,
        capacity: usize,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, LocalBoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + 'static,
    {
        let (tx, rx) = queue::bounded(capacity, ctx.clone());
        let task = pump_future(upstream, tx, info.clone(), ctx).boxed_local();
        let inner = Boundary::from_receiver(rx, info);
        let stream = BoundaryLocal {
            inner,
            _not_send: PhantomData,
        };
        (stream, task)
    }
}

impl<T> Stream for BoundaryLocal<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
