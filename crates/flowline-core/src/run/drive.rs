//! Terminal methods: run a pipeline into a consumer and report.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};

use super::{BoxError, Lifecycle, Pipeline, PipelineError, RunContext, RunReport, StageInfo};
use std::convert::Infallible;

use crate::consumer;

/// Items a run forwards before yielding to its executor, so one busy pipeline
/// cannot starve the other tasks of a thread.
const BUDGET: u32 = 4096;

/// Why the driving loop returned before the stream completed.
enum Stop {
    /// The run's handle aborted it.
    Aborted,
    /// A stage failed (its error is recorded in the context), or a queue
    /// ended without completing.
    Halted,
    /// The consumer returned an error.
    Sink(BoxError),
    /// User code panicked in the driving task.
    Panic(Box<dyn std::any::Any + Send>),
}

/// Forwards items from `stream` into `sink` until the stream ends (then closes
/// the sink), either side waits, or the budget runs out.
///
/// The sink is flushed and closed only while the run is not halted: after a
/// failure anywhere in the run, nothing reaches `poll_flush` or `poll_close`
/// (the driver sees the halt at its next poll, woken here).
fn forward<S, C>(
    mut stream: Pin<&mut S>,
    mut sink: Pin<&mut C>,
    ended: &mut bool,
    consumer: &StageInfo,
    lifecycle: &Lifecycle,
    cx: &mut Context<'_>,
) -> Poll<Result<(), C::Error>>
where
    S: Stream,
    C: Sink<S::Item>,
{
    let mut budget = BUDGET;
    loop {
        if *ended {
            if lifecycle.is_halted() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return sink.as_mut().poll_close(cx);
        }
        futures::ready!(sink.as_mut().poll_ready(cx))?;
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                // Counted as delivered once `start_send` accepted it; an item
                // it refused is counted as failed at the consumer.
                if let Err(e) = sink.as_mut().start_send(item) {
                    consumer.failed.add(1);
                    return Poll::Ready(Err(e));
                }
                consumer.out.bump();
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            Poll::Ready(None) => *ended = true,
            Poll::Pending => {
                if lifecycle.is_halted() {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                futures::ready!(sink.as_mut().poll_flush(cx))?;
                return Poll::Pending;
            }
        }
    }
}

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
        // A loop of its own rather than a `Sink`: the accumulator and the
        // item count stay in registers for a whole poll.
        let elapsed = drive(pin!(self), &info, |mut stream, cx| {
            let Some(mut a) = acc.take() else {
                return Poll::Ready(Ok(()));
            };
            // Published when the poll ends, also by unwinding: a failed
            // run's report counts what the consumer took before the panic.
            let mut taken = Taken(0, &info);
            let poll = loop {
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

/// Items a consumer took during one poll, added to its count when dropped.
struct Taken<'a>(u64, &'a StageInfo);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.1.out.add(self.0);
    }
}

/// The result of a finished run: its first error (a halt with no error
/// recorded is an abort), or its report. Either way with the counts as they
/// stand now.
fn outcome(ctx: &RunContext, elapsed: Duration) -> Result<RunReport, PipelineError> {
    let error = ctx
        .take_error()
        .or_else(|| ctx.lifecycle.is_halted().then(PipelineError::aborted));
    #[cfg(feature = "tracing")]
    super::trace::run_finished(ctx, elapsed, error.as_ref());
    let report = ctx.report(elapsed);
    match error {
        Some(error) => Err(error.with_report(report)),
        None => Ok(report),
    }
}

/// Drives `pipeline` with `step` until it returns `Ready`: catches panics,
/// polls the pipeline's tasks alongside, and stops at once when the run is
/// aborted or halted (a failure anywhere). Records a failure in the context,
/// then, on every path, waits until every task of the run has finished (after
/// a failure: cancelled) and no blocking call of it is in progress. Returns
/// the time it took.
async fn drive<S, E>(
    mut pipeline: Pin<&mut Pipeline<S>>,
    info: &StageInfo,
    mut step: impl FnMut(Pin<&mut Pipeline<S>>, &mut Context<'_>) -> Poll<Result<(), E>>,
) -> Duration
where
    S: Stream,
    E: Into<BoxError>,
{
    let ctx = pipeline.core.ctx.clone();
    let start = ctx.lifecycle.start(|| ctx.runtime_or_free().now());
    // User code polled here (fused stages, the consumer) sees the run's
    // runtime as `time::current_runtime`.
    let runtime = ctx.runtime();
    let stopped = poll_fn(|cx| {
        crate::time::enter(runtime.as_ref(), || {
            poll_step(&ctx, pipeline.as_mut(), &mut step, cx)
        })
    })
    .await;
    finish_run(ctx, pipeline, info, stopped, start).await
}

/// One poll of the driving loop (see [`drive`]).
fn poll_step<S: Stream, E: Into<BoxError>>(
    ctx: &Arc<RunContext>,
    mut pipeline: Pin<&mut Pipeline<S>>,
    step: &mut impl FnMut(Pin<&mut Pipeline<S>>, &mut Context<'_>) -> Poll<Result<(), E>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Stop>> {
    {
        if ctx.lifecycle.poll_abort(cx) {
            return Poll::Ready(Err(Stop::Aborted));
        }
        if ctx.lifecycle.is_halted() {
            return Poll::Ready(Err(Stop::Halted));
        }
        let step = catch_unwind(AssertUnwindSafe(|| {
            // Upstream tasks run while the consumer is busy, not only when it
            // asks for the next item (this matters without a runtime).
            pipeline.as_mut().project().core.poll_tasks(cx);
            // A blocking consumer learns its run here (its calls are the run's).
            crate::blocking::run_scope::scope(ctx, || step(pipeline.as_mut(), cx))
        }));
        match step {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Stop::Sink(e.into()))),
            Err(payload) => Poll::Ready(Err(Stop::Panic(payload))),
        }
    }
}

/// Records how the run stopped, then waits until everything it started has
/// stopped (see [`drive`]). Returns the time the run took.
async fn finish_run<S: Stream>(
    ctx: Arc<RunContext>,
    mut pipeline: Pin<&mut Pipeline<S>>,
    info: &StageInfo,
    stopped: Result<(), Stop>,
    start: std::time::Instant,
) -> Duration {
    match stopped {
        Ok(()) => {}
        Err(Stop::Aborted) => ctx.fail(PipelineError::aborted()),
        // The failing stage recorded its error (in this run or upstream).
        Err(Stop::Halted) => {}
        Err(Stop::Sink(e)) => ctx.fail(PipelineError::failed(info.name(), e)),
        Err(Stop::Panic(payload)) => ctx.fail_with_panic(&*payload, &info.name()),
    }
    // Lets helper tasks (progress reporting) finish before we wait for them.
    ctx.lifecycle.finish();
    let core = &mut pipeline.as_mut().project().core;
    if ctx.has_failed() || ctx.lifecycle.is_halted() {
        core.cancel_tasks();
    } else {
        ctx.mark_completed();
        // The stream has ended: a stage task still running feeds nobody.
        core.end_tasks();
    }
    // Nothing the run started outlives it, and the counts are final.
    poll_fn(|cx| core.poll_finish(cx)).await;
    ctx.orphans_gone().await;
    ctx.calls_idle().await;
    ctx.runtime_or_free().now().saturating_duration_since(start)
}
