use std::error::Error;
use std::fmt;

use super::RunReport;

/// A boxed error, as carried by [`PipelineError::Failed`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a pipeline run failed. Every variant but `Aborted` names the stage it
/// came from, and every variant carries the run's [`RunReport`] as it stood
/// when the run stopped (see [`report`](Self::report)).
///
/// A failed or aborted run never closes its consumer: the `Sink` is dropped
/// without `poll_close` (and without a `poll_flush` after the failure), so a
/// sink whose close means commit commits nothing.
///
/// Variants are `#[non_exhaustive]`: match them with `..`.
///
/// # Examples
///
/// ```
/// use flowline_core::{producer, PipelineError};
///
/// let result = futures::executor::block_on(
///     producer::iter(0..10u32)
///         .map(|x| if x == 3 { panic!("bad input {x}") } else { x })
///         .named("parse")
///         .run_collect(),
/// );
/// match result {
///     Err(PipelineError::Panicked { stage, message, report, .. }) => {
///         assert_eq!(stage, "parse");
///         assert_eq!(message, "bad input 3");
///         // The counts at the moment of failure: 3 items made it through.
///         assert_eq!(report.delivered(), 3);
///     }
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PipelineError {
    /// User code in `stage` panicked. The panic was caught: the pipeline shut
    /// down and the process lives on.
    #[non_exhaustive]
    Panicked {
        /// The stage whose closure, future or sink panicked.
        stage: String,
        /// The panic message.
        message: String,
        /// The counts when the run stopped.
        report: Box<RunReport>,
    },
    /// `stage` returned an error (for example the consumer's `Sink` failed).
    #[non_exhaustive]
    Failed {
        /// The stage that failed.
        stage: String,
        /// The underlying error, also available through [`Error::source`].
        source: BoxError,
        /// The counts when the run stopped.
        report: Box<RunReport>,
    },
    /// The run was cancelled before it finished: its
    /// [`PipelineHandle`](crate::PipelineHandle) was aborted, or its runtime
    /// shut down under it.
    #[non_exhaustive]
    Aborted {
        /// The counts when the run stopped.
        report: Box<RunReport>,
    },
}

impl PipelineError {
    /// The name of the stage the error came from (empty for
    /// [`Aborted`](Self::Aborted), which comes from no stage).
    pub fn stage(&self) -> &str {
        match self {
            PipelineError::Panicked { stage, .. } | PipelineError::Failed { stage, .. } => stage,
            PipelineError::Aborted { .. } => "",
        }
    }

    /// The run's counts at the moment it stopped: what each stage had taken
    /// in, let out, filtered, dropped and so on. Items still inside a stage
    /// show as `in_flight`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let err = futures::executor::block_on(
    ///     producer::iter(0..100u32)
    ///         .try_map(|x| if x == 50 { Err("bad") } else { Ok(x) })
    ///         .run_collect(),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.report().delivered(), 50);
    /// ```
    pub fn report(&self) -> &RunReport {
        match self {
            PipelineError::Panicked { report, .. }
            | PipelineError::Failed { report, .. }
            | PipelineError::Aborted { report } => report,
        }
    }

    /// `stage` returned `source` (for the crate's stages; the report is
    /// filled in when the run stops).
    pub(crate) fn failed(stage: String, source: BoxError) -> Self {
        PipelineError::Failed {
            stage,
            source,
            report: Box::default(),
        }
    }

    /// User code in `stage` panicked with `message`.
    pub(crate) fn panicked(stage: String, message: String) -> Self {
        PipelineError::Panicked {
            stage,
            message,
            report: Box::default(),
        }
    }

    /// The run was cancelled.
    pub(crate) fn aborted() -> Self {
        PipelineError::Aborted {
            report: Box::default(),
        }
    }

    /// Sets the counts the error reports.
    pub(crate) fn with_report(mut self, new: RunReport) -> Self {
        match &mut self {
            PipelineError::Panicked { report, .. }
            | PipelineError::Failed { report, .. }
            | PipelineError::Aborted { report } => **report = new,
        }
        self
    }
}

impl PipelineError {
    /// A copy for each branch of a failed fan-out. A `Failed` source is
    /// copied as its message (a boxed error cannot be cloned).
    pub(crate) fn duplicate(&self) -> PipelineError {
        match self {
            PipelineError::Panicked { stage, message, .. } => {
                PipelineError::panicked(stage.clone(), message.clone())
            }
            PipelineError::Failed { stage, source, .. } => {
                PipelineError::failed(stage.clone(), source.to_string().into())
            }
            PipelineError::Aborted { .. } => PipelineError::aborted(),
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Panicked { stage, message, .. } => {
                write!(f, "stage `{stage}` panicked: {message}")
            }
            PipelineError::Failed { stage, source, .. } => {
                write!(f, "stage `{stage}` failed: {source}")
            }
            PipelineError::Aborted { .. } => f.write_str("the run was aborted"),
        }
    }
}

impl Error for PipelineError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PipelineError::Panicked { .. } | PipelineError::Aborted { .. } => None,
            PipelineError::Failed { source, .. } => Some(&**source),
        }
    }
}
