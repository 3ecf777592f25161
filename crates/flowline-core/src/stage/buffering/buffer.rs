use std::fmt;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};

use super::boundary::{self, Boundary};
use super::overflow::{
    check_capacity, offer, queue_batch, yield_every, Offered, Overflow, Overflowed,
};
use crate::queue::{self, yield_now, BatchOut, Feeding, Resume, Sender};
use crate::run::{End, PipelineError, RunContext, StageInfo, StageKind};
use crate::Pipeline;

/// Stream for [`Pipeline::buffer`]: the downstream end of the queue (a
/// boundary's, whose queue applies the overflow policy).
#[must_use = "streams do nothing unless polled"]
pub struct Buffer<T> {
    inner: Boundary<T>,
}

impl<T> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Buffer").field(&self.inner).finish()
    }
}

impl<T> Stream for Buffer<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<T> Buffer<T> {
    /// The queue's batch in hand, handed over whole where it fits (see
    /// [`PollBatch`](crate::queue::PollBatch)).
    pub(crate) fn poll_batch(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        self.inner.received_batch(cx, out.items(), max)
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
    /// so `items_in == items_out + dropped` for a completed run. The queue is
    /// the one [`boundary`](Self::boundary) uses: items cross in batches sent
    /// as soon as upstream would wait, and the policy applies per item when
    /// the queue holds `capacity` items. With [`Overflow::DropOldest`] the
    /// batches are at most 64 items, as dropping the oldest item shifts its
    /// batch.
    ///
    /// Like a boundary, its downstream end hands whole batches to a `map`,
    /// `filter`, `filter_map`, `inspect`, the next boundary or `run_fold`;
    /// with [`Overflow::Backpressure`] its upstream task also takes whole
    /// batches from such stages (the other policies act item by item).
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
        check_capacity("buffer", capacity, overflow);
        let info = self.core.add_stage("buffer", StageKind::Buffer);
        let ctx = self.core.ctx.clone();
        let batch = queue_batch(capacity, overflow);
        let (tx, rx) = queue::bounded_with(capacity, batch, Resume::HalfEmpty, ctx.clone());
        let task = match overflow {
            Overflow::Backpressure => {
                let poll_batch = self.batch.map(|b| b.poll);
                boundary::pump(self.stream, poll_batch, tx, info.clone(), ctx)
            }
            // The policy acts per item.
            _ => pump_with_policy(self.stream, tx, overflow, info.clone(), ctx),
        };
        self.core.add_task(task);
        let inner = Boundary::from_receiver(rx, info);
        Pipeline::from_batched(Buffer { inner }, self.core, Buffer::poll_batch)
    }
}

/// How a policy pump stopped.
enum Stopped {
    /// Upstream ran out.
    Ended,
    /// Every receiver is gone.
    Closed,
    /// The queue was full under [`Overflow::Fail`] (the error is recorded).
    Overflowed,
}

/// The upstream task of a buffer whose policy acts per item (every policy
/// but backpressure): items still cross in batches, sent as soon as
/// upstream would wait.
fn pump_with_policy<S>(
    upstream: S,
    tx: Sender<S::Item>,
    overflow: Overflow,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> BoxFuture<'static, ()>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    pump_with_policy_future(upstream, tx, overflow, info, ctx).boxed()
}

/// [`pump_with_policy`] unboxed, with no `Send` bound (`buffer_local` boxes
/// it local).
pub(crate) async fn pump_with_policy_future<S: Stream>(
    upstream: S,
    mut tx: Sender<S::Item>,
    overflow: Overflow,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) {
    let capacity = tx.capacity();
    let run = async {
        let mut upstream = pin!(upstream);
        let every = yield_every(capacity, overflow);
        let mut budget = every;
        let mut feeding = Feeding::default();
        loop {
            let next = poll_fn(|cx| {
                let next = upstream.as_mut().poll_next(cx);
                if next.is_pending() {
                    // Upstream would wait: what is batched goes now.
                    let _ = tx.flush();
                }
                next
            })
            .await;
            let Some(item) = next else {
                return Stopped::Ended;
            };
            match offer(&mut tx, item, overflow, &info).await {
                // An idle receiver gets the item now, not with its batch.
                Offered::Done => feeding.fed(&mut tx),
                Offered::Closed => return Stopped::Closed,
                Offered::Overflowed => {
                    ctx.fail(PipelineError::failed(
                        info.name(),
                        Box::new(Overflowed { capacity }),
                    ));
                    return Stopped::Overflowed;
                }
            }
            budget -= 1;
            if budget == 0 || feeding.should_yield() {
                budget = every;
                let _ = tx.flush();
                yield_now().await;
            }
        }
    };
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Stopped::Ended) if ctx.has_failed() => tx.finish(End::Failed),
        Ok(Stopped::Ended) => tx.finish(End::Completed),
        Ok(Stopped::Closed) => {}
        Ok(Stopped::Overflowed) => tx.finish(End::Failed),
        Err(payload) => {
            ctx.fail_with_panic(&*payload, &info.name());
            tx.finish(End::Failed);
        }
    }
}
