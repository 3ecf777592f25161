use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};

use crate::queue::{self, BatchOut, PollBatch, Receiver, Sender};
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
    /// Returns the downstream stream and the upstream task, which moves
    /// whole batches when upstream's stages can hand them over
    /// (`poll_batch`), else item by item.
    pub(crate) fn new<S>(
        upstream: S,
        poll_batch: Option<PollBatch<S>>,
        capacity: usize,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, BoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let (tx, rx) = queue::bounded(capacity, ctx.clone());
        let task = pump(upstream, poll_batch, tx, info.clone(), ctx);
        (Boundary { rx, info }, task)
    }
}

/// The upstream task of a queue: moves `upstream` into `tx` — a batch at a
/// time when its stages hand over whole batches (`poll_batch`), else item
/// by item — then finishes the queue with the outcome: `Completed` when
/// upstream ran out, `Failed` when the run has failed meanwhile or upstream
/// panicked (recorded in `ctx`, naming the stage that marked itself, else
/// `info`'s).
pub(crate) fn pump<S>(
    upstream: S,
    poll_batch: Option<PollBatch<S>>,
    tx: Sender<S::Item>,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> BoxFuture<'static, ()>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    pump_future(upstream, poll_batch, tx, info, ctx).boxed()
}

/// [`pump`] unboxed, with no `Send` bound (`boundary_local` boxes it local).
pub(crate) async fn pump_future<S: Stream>(
    upstream: S,
    poll_batch: Option<PollBatch<S>>,
    mut tx: Sender<S::Item>,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) {
    let pumped = {
        let upstream = pin!(upstream);
        AssertUnwindSafe(tx.pump_with(upstream, poll_batch))
            .catch_unwind()
            .await
    };
    finish(tx, pumped, &info, &ctx);
}

impl<T> Boundary<T> {
    /// The downstream end of the queue `rx` (`buffer`, `boundary_local`).
    pub(crate) fn from_receiver(rx: Receiver<T>, info: Arc<StageInfo>) -> Self {
        Boundary { rx, info }
    }
}

/// Ends a pump's queue with its outcome.
fn finish<T>(
    tx: Sender<T>,
    pumped: std::thread::Result<Result<(), queue::PushError<()>>>,
    info: &StageInfo,
    ctx: &RunContext,
) {
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

impl<T> Boundary<T> {
    /// The queue's batch in hand, handed over whole where it fits (see
    /// [`PollBatch`]).
    pub(crate) fn poll_batch(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        self.received_batch(cx, out.items(), max)
    }

    /// [`poll_batch`](Self::poll_batch) into a plain `Vec`: the queue's
    /// batch in hand appended to `out` (at most `max` items) and counted as
    /// this stage's output — also the [`PollBatch`] of a buffer's and a
    /// local boundary's downstream end.
    pub(crate) fn received_batch(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<T>,
        max: usize,
    ) -> Poll<bool> {
        let before = out.len();
        let more = futures::ready!(self.rx.poll_batch(cx, out, max));
        self.info.out.bump_by((out.len() - before) as u64);
        Poll::Ready(more)
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
