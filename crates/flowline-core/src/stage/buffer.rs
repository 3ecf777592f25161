use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::Receiver;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use pin_project_lite::pin_project;

use super::overflow::{
    check_capacity, offer, yield_every, yield_now, Offered, Overflow, Overflowed,
};
use crate::run::{PipelineError, RunContext, StageInfo, StageKind};
use crate::Pipeline;

pin_project! {
    /// Stream for [`Pipeline::buffer`]: the downstream end of the queue.
    #[must_use = "streams do nothing unless polled"]
    pub struct Buffer<T> {
        #[pin]
        rx: Receiver<T>,
        info: Arc<StageInfo>,
    }
}

impl<T> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("queued", &self.rx.len())
            .field("capacity", &self.rx.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for Buffer<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.project();
        let item = futures::ready!(this.rx.poll_next(cx));
        Poll::Ready(this.info.emit(item))
    }
}

impl<S: Stream> Pipeline<S> {
    /// An async boundary whose queue of `capacity` items applies `overflow`
    /// when it is full: wait ([`Overflow::Backpressure`]), drop the oldest
    /// queued item, drop the new item, or fail the run.
    ///
    /// Everything upstream runs as a task of its own (spawned on the
    /// pipeline's runtime, or polled inside the pipeline without one) that
    /// keeps pulling items while downstream is busy. Dropped items are counted
    /// in the stage's [`StageReport::dropped`](crate::StageReport::dropped),
    /// so `items_in == items_out + dropped` for a completed run. Unlike
    /// [`boundary`](Self::boundary), items cross one at a time, which is what
    /// lets the policy apply per item.
    ///
    /// # Errors
    ///
    /// With [`Overflow::Fail`], the run ends with
    /// [`PipelineError::Failed`] naming this stage, whose source is
    /// [`Overflowed`]; the item that did not fit counts as `failed`.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: the queue needs room for at least one item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, stage::Overflow};
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(0..10u32).buffer(4, Overflow::Backpressure).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, (0..10).collect::<Vec<_>>());
    /// assert_eq!(report.stages[1].dropped, 0);
    /// ```
    #[track_caller]
    pub fn buffer(mut self, capacity: usize, overflow: Overflow) -> Pipeline<Buffer<S::Item>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
    {
        check_capacity(capacity, overflow);
        let info = self.core.add_stage("buffer", StageKind::Buffer);
        let (tx, rx) = async_channel::bounded(capacity);
        let task = pump(
            self.stream,
            tx,
            overflow,
            info.clone(),
            self.core.ctx.clone(),
        );
        self.core.add_task(task);
        Pipeline::from_parts(Buffer { rx, info }, self.core)
    }
}

fn pump<S>(
    upstream: S,
    tx: async_channel::Sender<S::Item>,
    overflow: Overflow,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> BoxFuture<'static, ()>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    let capacity = tx.capacity().unwrap_or(usize::MAX);
    async move {
        let run = async {
            let mut upstream = pin!(upstream);
            let every = yield_every(capacity, overflow);
            let mut budget = every;
            while let Some(item) = upstream.next().await {
                match offer(&tx, item, overflow, &info).await {
                    Offered::Done => {}
                    Offered::Closed => return,
                    Offered::Overflowed => {
                        ctx.fail(PipelineError::failed(
                            info.name(),
                            Box::new(Overflowed { capacity }),
                        ));
                        tx.close();
                        return;
                    }
                }
                budget -= 1;
                if budget == 0 {
                    budget = every;
                    yield_now().await;
                }
            }
        };
        if let Err(payload) = AssertUnwindSafe(run).catch_unwind().await {
            ctx.fail_with_panic(&*payload, &info.name());
        }
    }
    .boxed()
}
