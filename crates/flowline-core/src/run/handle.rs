//! Spawned runs: [`Pipeline::spawn`] and [`PipelineHandle`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use super::{PipelineError, RunContext};
use crate::report::{Monitor, RunReport, Snapshot};
use crate::runtime::{JoinError, JoinHandle};

type RunResult = Result<RunReport, PipelineError>;

/// A running pipeline, from [`Pipeline::spawn`](crate::Pipeline::spawn) (or
/// [`spawn_local`](crate::Pipeline::spawn_local) for one that is not `Send`).
///
/// Await it for the run's result. Dropping it cancels the run and every task
/// the run spawned (call [`detach`](Self::detach) to let it run on).
///
/// # Delivery on cancellation
///
/// An item counts as delivered once it has been handed to the consumer's
/// `Sink::start_send`; cancellation (abort, drop) between two items never
/// loses one without a trace: everything the sources produced is either
/// delivered, in one of the report's removal columns, or in its `in_flight`
/// column. A cancelled consumer is dropped without `poll_close`.
#[must_use = "dropping a PipelineHandle cancels the run; call .detach() to let it run"]
pub struct PipelineHandle {
    join: Option<Join>,
    monitor: Monitor,
}

/// A spawned run, or (runtime-free) the run itself, driven by whoever polls
/// the handle.
pub(crate) enum Join {
    Spawned(JoinHandle<RunResult>),
    Inline(BoxFuture<'static, RunResult>),
}

impl Future for Join {
    type Output = Result<RunResult, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Join::Spawned(join) => Pin::new(join).poll(cx),
            Join::Inline(run) => run.as_mut().poll(cx).map(Ok),
        }
    }
}

impl fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl PipelineHandle {
    /// A handle to `join`, the run, watched by `monitor`.
    pub(crate) fn new(join: Join, monitor: Monitor) -> Self {
        PipelineHandle {
            join: Some(join),
            monitor,
        }
    }

    fn ctx(&self) -> &Arc<RunContext> {
        self.monitor.ctx()
    }

    /// Stops the run gracefully: the sources stop pulling from their
    /// producers, every item already produced flows through to the consumer,
    /// the consumer is closed (flushed), and the future resolves to the
    /// report. Items a producer had not handed over yet are never taken.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::run`](crate::Pipeline::run), if a stage fails while draining.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer};
    ///
    /// let ticks = producer::generator(|out| async move {
    ///     for i in 0u64.. {
    ///         out.emit(i).await;
    ///     }
    /// });
    /// let handle = ticks.boundary(8).spawn(consumer::discard());
    /// let report = futures::executor::block_on(handle.shutdown()).unwrap();
    /// // Everything produced before the stop was delivered.
    /// assert_eq!(report.delivered(), report.stages[0].items_out);
    /// ```
    pub async fn shutdown(mut self) -> RunResult {
        self.ctx().lifecycle.stop();
        let join = self.join.take().expect("a live handle has its task");
        flatten(join.await)
    }

    /// Stops the run now, dropping what is in flight, and reports: the
    /// report's `in_flight` column says how many items each stage held. The
    /// consumer is dropped without being closed. When this resolves, every
    /// task of the run has been dropped, so the counts are final.
    ///
    /// The run notices the abort the next time its executor polls it: a
    /// consumer or stage blocking its thread delays it.
    ///
    /// If the run had already finished, this is its report (an error's
    /// counts are reported too).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer};
    ///
    /// let forever = producer::generator(|out| async move {
    ///     loop {
    ///         out.emit(1u8).await;
    ///     }
    /// });
    /// let handle = forever.boundary(4).spawn(consumer::discard());
    /// let report = futures::executor::block_on(handle.abort());
    /// let source = &report.stages[0];
    /// assert_eq!(source.items_out, report.delivered() + report.in_flight());
    /// ```
    pub async fn abort(mut self) -> RunReport {
        let join = self.join.take().expect("a live handle has its task");
        self.ctx().lifecycle.abort();
        // The run returns at its next poll, after cancelling its tasks and
        // waiting for them to be dropped: the counts are final, and no task
        // of the run is left.
        let _ = join.await;
        self.monitor.report()
    }

    /// Lets the run go on without anyone awaiting it. Its result is lost;
    /// keep a [`monitor`](Self::monitor) to watch it.
    ///
    /// # Panics
    ///
    /// If the run is runtime-free: it has no executor to go on without
    /// its handle. Await the handle instead, or run the pipeline on a runtime
    /// (`.on(..)`).
    pub fn detach(mut self) {
        match self.join.take() {
            Some(Join::Spawned(join)) => join.detach(),
            Some(Join::Inline(_)) => crate::rejection::reject(format_args!(
                "a runtime-free run cannot be detached: it has no executor to run on \
                 without its handle; await the handle instead, or spawn it on a runtime, \
                 e.g. .on(SmolRuntime::new()).spawn(consumer)"
            )),
            None => {}
        }
    }

    /// Whether the run has finished (completed, failed or was cancelled).
    pub fn is_finished(&self) -> bool {
        match &self.join {
            None => true,
            Some(Join::Spawned(join)) => join.is_finished(),
            Some(Join::Inline(_)) => false,
        }
    }

    /// The live counts of the run: per stage, items in and out so far,
    /// throughput, queue depth and busy share. See [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.monitor.snapshot()
    }

    /// A cloneable handle that can ask the run to stop while something else
    /// awaits the [`PipelineHandle`] (for a runtime-free run, which only
    /// progresses while its handle is awaited, or for a supervisor that only
    /// signals).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer};
    ///
    /// let forever = producer::generator(|out| async move {
    ///     for i in 0u64.. {
    ///         out.emit(i).await;
    ///     }
    /// });
    /// let handle = forever.spawn(consumer::discard());
    /// let stop = handle.stop_handle();
    /// let (result, ()) = futures::executor::block_on(async {
    ///     futures::join!(handle, async move { stop.shutdown() })
    /// });
    /// let report = result.unwrap();
    /// assert_eq!(report.delivered(), report.stages[0].items_out);
    /// ```
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            ctx: self.ctx().clone(),
        }
    }

    /// A cloneable view of the run's counts that outlives the handle (for a
    /// dashboard, or to read the final counts after a failed run).
    pub fn monitor(&self) -> Monitor {
        self.monitor.clone()
    }
}

/// Asks a run to stop, from anywhere: made by
/// [`PipelineHandle::stop_handle`]. The run's result still comes from
/// awaiting its [`PipelineHandle`].
#[derive(Clone)]
pub struct StopHandle {
    ctx: Arc<RunContext>,
}

impl fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopHandle")
            .field("finished", &self.ctx.lifecycle.is_finished())
            .finish_non_exhaustive()
    }
}

impl StopHandle {
    /// Graceful stop, as [`PipelineHandle::shutdown`]: the sources stop,
    /// what is in flight is delivered, the consumer is closed.
    pub fn shutdown(&self) {
        self.ctx.lifecycle.stop();
    }

    /// Stops now, as [`PipelineHandle::abort`]: what is in flight is
    /// dropped and the consumer is not closed; the run ends with
    /// [`PipelineError::Aborted`].
    pub fn abort(&self) {
        self.ctx.lifecycle.abort();
    }
}

impl Future for PipelineHandle {
    type Output = RunResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RunResult> {
        let join = self
            .join
            .as_mut()
            .expect("flowline: PipelineHandle polled after it completed");
        let result = futures::ready!(Pin::new(join).poll(cx));
        self.join = None;
        Poll::Ready(flatten(result))
    }
}

fn flatten(result: Result<RunResult, JoinError>) -> RunResult {
    match result {
        Ok(result) => result,
        // `run` catches panics itself; this is a bug or a panicking Drop.
        Err(JoinError::Panicked(message)) => Err(PipelineError::Panicked {
            stage: "run".to_string(),
            message,
            report: Box::default(),
        }),
        Err(_) => Err(PipelineError::aborted()),
    }
}
