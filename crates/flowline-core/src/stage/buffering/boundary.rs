use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};

use crate::queue::{self, Receiver, Sender};
use crate::run::{End, RunContext, StageInfo};

/// Stream for [`Pipeline::boundary`](crate::Pipeline::boundary): the
/// downstream end of the bounded queue.
#[must_use = "streams do nothing unless polled"]
pub struct Boundary<T> {
    rx: Receiver<T>,
    info: Arc<StageInfo>,
}

impl<T> fmt::Debug for Boundary<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boundary")
            .field("capacity", &self.rx.capacity())
            .field("queued", &self.rx.queued())
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
        let (tx, rx) = queue::bounded(capacity, ctx.clone());
        let task = pump(upstream, tx, info.clone(), ctx);
        (Boundary { rx, info }, task)
    }
}

/// The upstream task of a queue: moves `upstream` into `tx`, then finishes
/// the queue with the outcome — `Completed` when upstream ran out, `Failed`
/// when the run has failed meanwhile or upstream panicked (recorded in `ctx`,
/// naming the stage that marked itself, else `info`'s).
pub(crate) fn pump<S>(
    upstream: S,
    tx: Sender<S::Item>,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> BoxFuture<'static, ()>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    pump_future(upstream, tx, info, ctx).boxed()
}

/// [`pump`] unboxed, with no `Send` bound (`boundary_local` boxes it local).
// An async block rather than an `async fn`: the body keeps the indentation
// it had inside `pump`, so concurrent edits to it merge.
#[allow(clippy::manual_async_fn)]
pub(crate) fn pump_future<S: Stream>(
    upstream: S,
    mut tx: Sender<S::Item>,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> impl std::future::Future<Output = ()> {
    async move {
        let pumped = {
            let upstream = pin!(upstream);
            AssertUnwindSafe(tx.pump(upstream)).catch_unwind().await
        };
        match pumped {
            Ok(Ok(())) if ctx.has_failed() => tx.finish(End::Failed),
            Ok(Ok(())) => tx.finish(End::Completed),
            // Nobody is listening.
            Ok(Err(_closed)) => {}
            Err(payload) => {
                ctx.fail_with_panic(&*payload, &info.name());
                tx.finish(End::Failed);
            }
        }
    }
}

impl<T> Boundary<T> {
    /// The downstream end of the queue `rx` (`boundary_local`).
    pub(crate) fn from_receiver(rx: Receiver<T>, info: Arc<StageInfo>) -> Self {
        Boundary { rx, info }
    }
}

impl<T> Stream for Boundary<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let item = futures::ready!(Pin::new(&mut this.rx).poll_next(cx));
        Poll::Ready(this.info.emit(item))
    }
}
