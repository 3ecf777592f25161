//! Terminal methods: run a pipeline into a consumer (on the run engine,
//! `crate::run`) and report, or spawn it and return its handle.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use futures::{Sink, Stream};

use super::Pipeline;
use crate::consumer;
use crate::queue::Reached;
use crate::report::{Monitor, RunReport};
use crate::run::{
    drive, forward, outcome, BoxError, Join, PipelineError, PipelineHandle, StageInfo, Taken,
    BUDGET,
};
use crate::runtime::{Runtime, RuntimeExt as _};
use std::convert::Infallible;

impl<S: Stream> Pipeline<S> {
    /// Runs the pipeline to completion into `consumer` (any
    /// [`Sink`](futures::Sink), see [`crate::consumer`]) and reports.
    ///
    /// The consumer is closed once the last item is in. Dropping the returned
    /// future cancels the run and every task it spawned.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Panicked`] if user code panicked, naming the stage;
    /// [`PipelineError::Failed`] if the consumer returned an error (stage
    /// `consumer#N`). Either way the pipeline's tasks are cancelled first.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer};
    ///
    /// let mut sink = consumer::collect();
    /// let report = futures::executor::block_on(producer::iter(["a", "b"]).run(&mut sink)).unwrap();
    /// assert_eq!(sink.into_vec(), ["a", "b"]);
    /// assert_eq!(report.delivered(), 2);
    /// ```
    pub async fn run<C>(mut self, consumer: C) -> Result<RunReport, PipelineError>
    where
        C: Sink<S::Item>,
        C::Error: Into<BoxError>,
    {
        let info = self.core.add_consumer();
        self.run_into(consumer, info).await
    }

    /// [`run`](Self::run) with the consumer stage already registered (so a
    /// spawned run lists it from the start).
    pub(crate) async fn run_into<C>(
        self,
        consumer: C,
        info: Arc<StageInfo>,
    ) -> Result<RunReport, PipelineError>
    where
        C: Sink<S::Item>,
        C::Error: Into<BoxError>,
    {
        let ctx = self.core.ctx.clone();
        let lifecycle = ctx.lifecycle.clone();
        // On failure the sink is dropped here without being closed.
        let mut sink = pin!(consumer);
        let mut ended = false;
        let elapsed = drive(pin!(self), &info, |stream, cx| {
            forward(stream, sink.as_mut(), &mut ended, &info, &lifecycle, cx).map_err(Into::into)
        })
        .await;
        outcome(&ctx, elapsed)
    }

    /// Runs the pipeline, calling the async function `f` on each item in turn.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let mut seen = Vec::new();
    /// futures::executor::block_on(
    ///     producer::iter(1..=3).run_for_each(|x| { seen.push(x); async {} }),
    /// )
    /// .unwrap();
    /// assert_eq!(seen, [1, 2, 3]);
    /// ```
    pub async fn run_for_each<F, Fut>(self, f: F) -> Result<RunReport, PipelineError>
    where
        F: FnMut(S::Item) -> Fut,
        Fut: Future<Output = ()>,
    {
        self.run(consumer::for_each(f)).await
    }

    /// Runs the pipeline and collects every item, in order.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (items, report) = futures::executor::block_on(producer::iter(0..3).run_collect()).unwrap();
    /// assert_eq!(items, [0, 1, 2]);
    /// assert_eq!(report.delivered(), 3);
    /// ```
    pub async fn run_collect(self) -> Result<(Vec<S::Item>, RunReport), PipelineError> {
        self.run_fold(Vec::new(), |mut v, x| {
            v.push(x);
            v
        })
        .await
    }

    /// Runs the pipeline and counts the items that reach the end.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (n, _) = futures::executor::block_on(producer::iter(0..10).filter(|x| x % 2 == 0).run_count()).unwrap();
    /// assert_eq!(n, 5);
    /// ```
    pub async fn run_count(self) -> Result<(u64, RunReport), PipelineError> {
        self.run_fold(0, |n, _| n + 1).await
    }

    /// Runs the pipeline, folding every item into an accumulator with the
    /// synchronous function `f`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (sum, _) = futures::executor::block_on(producer::iter(1..=100u64).run_fold(0, |a, x| a + x)).unwrap();
    /// assert_eq!(sum, 5050);
    /// ```
    pub async fn run_fold<A, F>(
        mut self,
        init: A,
        mut f: F,
    ) -> Result<(A, RunReport), PipelineError>
    where
        F: FnMut(A, S::Item) -> A,
    {
        let info = self.core.add_consumer();
        let ctx = self.core.ctx.clone();
        let mut acc = Some(init);
        let batched = self.batch.clone();
        let mut items = Vec::new();
        // A loop of its own rather than a `Sink`: the accumulator and the
        // item count stay in registers for a whole poll.
        let elapsed = drive(pin!(self), &info, |mut stream, cx| {
            let Some(mut a) = acc.take() else {
                return Poll::Ready(Ok(()));
            };
            // Published when the poll ends, also by unwinding: a failed
            // run's report counts what the consumer took before the panic.
            let mut taken = Taken(0, &info);
            let poll = if let Some(batched) = &batched {
                // Whole batches from the last boundary (or source) and the
                // fused stages after it; folded item by item.
                loop {
                    let room = u64::from(BUDGET) - taken.0;
                    let polled = catch_unwind(AssertUnwindSafe(|| {
                        stream
                            .as_mut()
                            .poll_batch_driven(cx, &mut items, room as usize)
                    }));
                    let (more, failed) = match polled {
                        Ok(Poll::Ready(more)) => (more, None),
                        Ok(Poll::Pending) => break Poll::Pending,
                        // A stage failed mid-batch: the items it passed on
                        // before are delivered first, as one by one.
                        Err(payload) => (false, Some(payload)),
                    };
                    // A panic in `f` gives back the items after it.
                    let mut reached = Reached::new(batched, items.len());
                    for item in items.drain(..) {
                        a = info.guard(|| f(a, item));
                        taken.0 += 1;
                        reached.done += 1;
                    }
                    reached.finish();
                    if let Some(payload) = failed {
                        resume_unwind(payload);
                    }
                    if !more {
                        break Poll::Ready(Ok::<(), Infallible>(()));
                    }
                    if taken.0 == u64::from(BUDGET) {
                        cx.waker().wake_by_ref();
                        break Poll::Pending;
                    }
                }
            } else {
                loop {
                    match stream.as_mut().poll_next(cx) {
                        Poll::Ready(Some(item)) => {
                            a = info.guard(|| f(a, item));
                            taken.0 += 1;
                            if taken.0 == u64::from(BUDGET) {
                                cx.waker().wake_by_ref();
                                break Poll::Pending;
                            }
                        }
                        Poll::Ready(None) => break Poll::Ready(Ok::<(), Infallible>(())),
                        Poll::Pending => break Poll::Pending,
                    }
                }
            };
            acc = Some(a);
            poll
        })
        .await;
        let report = outcome(&ctx, elapsed)?;
        let acc = acc.expect("the accumulator is only lost to a panic, which is an error");
        Ok((acc, report))
    }
}

impl<S> Pipeline<S>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    /// Starts the run into `consumer` as a task of its own and returns a
    /// handle to it: [`shutdown`](PipelineHandle::shutdown) it,
    /// [`abort`](PipelineHandle::abort) it, watch it with
    /// [`snapshot`](PipelineHandle::snapshot), or await it for the report.
    ///
    /// The task runs on the pipeline's runtime ([`on`](Self::on), or the
    /// default one the enabled features provide). A runtime-free pipeline has
    /// no executor to spawn on and starts no thread for one: the run then
    /// makes progress only while the handle is awaited (awaiting
    /// [`shutdown`](PipelineHandle::shutdown) or
    /// [`abort`](PipelineHandle::abort) drives it too), and
    /// [`detach`](PipelineHandle::detach) is refused.
    ///
    /// Dropping the handle cancels the run, like a `JoinHandle`; call
    /// [`detach`](PipelineHandle::detach) to let it finish on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer};
    ///
    /// let handle = producer::iter(0..100u32).map(|x| x * 2).spawn(consumer::discard());
    /// let report = futures::executor::block_on(handle).unwrap();
    /// assert_eq!(report.delivered(), 100);
    /// ```
    pub fn spawn<C>(mut self, consumer: C) -> PipelineHandle
    where
        C: Sink<S::Item> + Send + 'static,
        C::Error: Into<BoxError>,
    {
        let ctx = self.core.ctx.clone();
        let info = self.core.add_consumer();
        let run = self.run_into(consumer, info);
        let join = match ctx.executor() {
            Some(rt) => Join::Spawned(rt.spawn(run)),
            None => Join::Inline(Box::pin(run)),
        };
        PipelineHandle::new(join, Monitor::new(ctx))
    }

    /// [`spawn`](Self::spawn) on `runtime`: shorthand for
    /// `.on(runtime).spawn(consumer)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer, runtime::RuntimeFree};
    ///
    /// let handle = producer::iter(0..10u32).spawn_on(RuntimeFree, consumer::discard());
    /// assert_eq!(futures::executor::block_on(handle).unwrap().delivered(), 10);
    /// ```
    pub fn spawn_on<C>(self, runtime: impl Runtime, consumer: C) -> PipelineHandle
    where
        C: Sink<S::Item> + Send + 'static,
        C::Error: Into<BoxError>,
    {
        self.on(runtime).spawn(consumer)
    }
}
