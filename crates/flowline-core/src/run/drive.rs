//! The driving loop every terminal method shares, and how a run ends.

use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};

use super::{BoxError, Core, Lifecycle, PipelineError, RunContext, StageInfo};
use crate::report::RunReport;

/// Items a run forwards before yielding to its executor, so one busy pipeline
/// cannot starve the other tasks of a thread.
pub(crate) const BUDGET: u32 = 4096;

/// What the engine drives: a stream with its [`Core`] (the builder's
/// `Pipeline` is one). The engine knows no more of the builder than this.
pub(crate) trait Drivable: Stream {
    /// The run's context and tasks.
    fn core(&self) -> &Core;

    /// The same, to start, poll, end or cancel the tasks.
    fn core_mut(self: Pin<&mut Self>) -> &mut Core;
}

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
pub(crate) fn forward<S, C>(
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
            // A pipeline's stream also ends at a halt: only an end with no
            // failure before it commits the run and closes the consumer.
            Poll::Ready(None) if lifecycle.is_halted() => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(None) => {
                lifecycle.commit();
                *ended = true;
            }
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

/// Items a consumer took during one poll, added to its count when dropped.
pub(crate) struct Taken<'a>(pub(crate) u64, pub(crate) &'a StageInfo);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.1.out.add(self.0);
    }
}

/// The result of a finished run: its first error (a halt with no error
/// recorded is an abort), or its report. Either way with the counts as they
/// stand now.
pub(crate) fn outcome(ctx: &RunContext, elapsed: Duration) -> Result<RunReport, PipelineError> {
    // A completed run's consumer is closed: a task torn down after that (a
    // side a `zip` stopped reading) may halt, but the run has completed.
    let error = if ctx.is_completed() {
        None
    } else {
        ctx.take_error()
            .or_else(|| ctx.lifecycle.is_halted().then(PipelineError::aborted))
    };
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
pub(crate) async fn drive<P, E>(
    mut pipeline: Pin<&mut P>,
    info: &StageInfo,
    mut step: impl FnMut(Pin<&mut P>, &mut Context<'_>) -> Poll<Result<(), E>>,
) -> Duration
where
    P: Drivable + ?Sized,
    E: Into<BoxError>,
{
    let ctx = pipeline.core().ctx.clone();
    let start = ctx.lifecycle.start(|| ctx.runtime_or_free().now());
    // User code polled here (fused stages, the consumer) sees the run's
    // runtime as `time::current_runtime`.
    // Moved into the thread's current runtime and run at each poll, not
    // cloned (see `time::enter_in`, `scope::scope_in`).
    let mut runtime = ctx.runtime();
    let mut current = Some(ctx.clone());
    let stopped = poll_fn(|cx| {
        crate::time::enter_in(&mut runtime, || {
            poll_step(&ctx, &mut current, pipeline.as_mut(), &mut step, cx)
        })
    })
    .await;
    finish_run(ctx, pipeline, info, stopped, start).await
}

/// One poll of the driving loop (see [`drive`]).
fn poll_step<P: Drivable + ?Sized, E: Into<BoxError>>(
    ctx: &Arc<RunContext>,
    current: &mut Option<Arc<RunContext>>,
    mut pipeline: Pin<&mut P>,
    step: &mut impl FnMut(Pin<&mut P>, &mut Context<'_>) -> Poll<Result<(), E>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Stop>> {
    {
        if ctx.lifecycle.poll_abort(cx) {
            return Poll::Ready(Err(Stop::Aborted));
        }
        if ctx.lifecycle.is_halted() && !ctx.lifecycle.is_committed() {
            return Poll::Ready(Err(Stop::Halted));
        }
        let step = catch_unwind(AssertUnwindSafe(|| {
            // A blocking consumer, and `unblock` calls in tasks polled
            // inline, learn their run here (their calls are the run's).
            super::scope::scope_in(current, || {
                // Upstream tasks run while the consumer is busy, not only
                // when it asks for the next item (this matters without a
                // runtime).
                pipeline.as_mut().core_mut().poll_tasks(cx);
                step(pipeline.as_mut(), cx)
            })
        }));
        match step {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => {
                // A consumer that ends without a sink to close (`run_fold`)
                // commits here, unless its stream ended at a halt.
                if !ctx.lifecycle.is_halted() {
                    ctx.lifecycle.commit();
                }
                Poll::Ready(Ok(()))
            }
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Stop::Sink(e.into()))),
            Err(payload) => Poll::Ready(Err(Stop::Panic(payload))),
        }
    }
}

/// Records how the run stopped, then waits until everything it started has
/// stopped (see [`drive`]). Returns the time the run took.
async fn finish_run<P: Drivable + ?Sized>(
    ctx: Arc<RunContext>,
    mut pipeline: Pin<&mut P>,
    info: &StageInfo,
    stopped: Result<(), Stop>,
    start: std::time::Instant,
) -> Duration {
    // A committed run has completed, whatever fails after its commit; one
    // that stopped with an error of its own (its sink's close failed) has not.
    let completed = stopped.is_ok() && ctx.lifecycle.is_committed();
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
    let core = pipeline.as_mut().core_mut();
    if !completed && (ctx.has_failed() || ctx.lifecycle.is_halted()) {
        core.cancel_tasks();
    } else {
        ctx.mark_completed();
        // The stream has ended: a stage task still running feeds nobody.
        core.end_tasks();
    }
    // Nothing the run started outlives it, and the counts are final. A
    // lasting task (a fan-out's upstream) may still fail after the stream
    // ended; a failed stage then waits forever rather than end, so a halt
    // (or an abort) while we wait cancels what is left.
    poll_fn(|cx| {
        if ctx.lifecycle.poll_abort(cx) || ctx.lifecycle.is_halted() {
            core.cancel_tasks();
        }
        core.poll_finish(cx)
    })
    .await;
    ctx.orphans_gone().await;
    ctx.calls_idle().await;
    ctx.runtime_or_free().now().saturating_duration_since(start)
}
