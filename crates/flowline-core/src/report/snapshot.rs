//! Live observation of a run: [`Monitor`], [`Snapshot`] and
//! [`Pipeline::on_progress`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{RunReport, StageReport};
use crate::run::{RunContext, StageKind};

/// A cloneable view of one run's counters, valid during and after the run.
///
/// Get one from [`PipelineHandle::monitor`](crate::PipelineHandle::monitor)
/// or [`Pipeline::monitor`](crate::Pipeline::monitor).
#[derive(Clone)]
pub struct Monitor {
    ctx: Arc<RunContext>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Monitor {
    pub(crate) fn new(ctx: Arc<RunContext>) -> Self {
        Monitor { ctx }
    }

    pub(crate) fn ctx(&self) -> &Arc<RunContext> {
        &self.ctx
    }

    fn elapsed(&self) -> Duration {
        self.ctx
            .lifecycle
            .started()
            .map_or(Duration::ZERO, |start| {
                self.ctx
                    .runtime_or_free()
                    .now()
                    .saturating_duration_since(start)
            })
    }

    /// The counts so far, as a [`RunReport`] (`elapsed` from the run's
    /// start). After an error or an abort, this is how to read the final
    /// counts, `in_flight` included.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let pipeline = producer::iter(0..10u32).map(|x| if x == 4 { panic!() } else { x });
    /// let monitor = pipeline.monitor();
    /// assert!(futures::executor::block_on(pipeline.run_collect()).is_err());
    /// let report = monitor.report();
    /// assert_eq!((report.stages[1].items_out, report.stages[1].failed), (4, 1));
    /// ```
    pub fn report(&self) -> RunReport {
        self.ctx.report(self.elapsed())
    }

    /// The counts so far with rates: see [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        let report = self.report();
        let seconds = report.elapsed.as_secs_f64();
        let stages = report
            .stages
            .into_iter()
            .map(|stage| StageSnapshot {
                throughput: if seconds > 0.0 {
                    stage.items_out as f64 / seconds
                } else {
                    0.0
                },
                queue_depth: matches!(stage.kind, StageKind::Boundary | StageKind::Buffer)
                    .then_some(stage.in_flight),
                busy_ratio: if seconds > 0.0 {
                    (stage.busy.as_secs_f64() / seconds).min(1.0)
                } else {
                    0.0
                },
                stage,
            })
            .collect();
        Snapshot {
            stages,
            elapsed: report.elapsed,
            finished: self.ctx.lifecycle.is_finished(),
        }
    }
}

/// The state of a run at one instant.
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let handle = producer::iter(0..1000u32).boundary(16).spawn(consumer::discard());
/// let monitor = handle.monitor();
/// futures::executor::block_on(handle).unwrap();
/// let snapshot = monitor.snapshot();
/// assert!(snapshot.finished);
/// assert_eq!(snapshot.stages[1].stage.items_out, 1000);
/// assert_eq!(snapshot.stages[1].queue_depth, Some(0));
/// println!("{snapshot}");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every stage, source first.
    pub stages: Vec<StageSnapshot>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Whether the run has finished (its consumer is closed, or it failed).
    pub finished: bool,
}

/// One stage in a [`Snapshot`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StageSnapshot {
    /// The stage's counts so far (`in_flight` is what it holds now).
    pub stage: StageReport,
    /// Items out per second since the run started.
    pub throughput: f64,
    /// Items queued in the stage, for queueing stages (boundaries, buffers):
    /// what its upstream handed over and downstream has not taken yet.
    pub queue_depth: Option<u64>,
    /// Share of the run's time spent in the stage's user code, for stages
    /// that measure it (see [`StageReport::busy`]); 0 otherwise.
    pub busy_ratio: f64,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after {:.1?}:", self.elapsed)?;
        for s in &self.stages {
            write!(
                f,
                " [{} in {} out {} ({:.0}/s)",
                s.stage.name, s.stage.items_in, s.stage.items_out, s.throughput
            )?;
            if let Some(depth) = s.queue_depth {
                write!(f, " queue {depth}")?;
            }
            if s.busy_ratio > 0.0 {
                write!(f, " busy {:.0}%", s.busy_ratio * 100.0)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// Calls the progress callback; a panic in it fails the run (stage
/// `progress`) instead of unwinding through the pipeline. Returns whether the
/// callback returned normally.
pub(crate) fn report_progress<F: FnMut(&Snapshot)>(f: &mut F, monitor: &Monitor) -> bool {
    let snapshot = monitor.snapshot();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&snapshot))) {
        Ok(()) => true,
        Err(payload) => {
            monitor.ctx().fail_with_panic(&*payload, "progress");
            false
        }
    }
}
