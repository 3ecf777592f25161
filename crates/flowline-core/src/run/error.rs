use std::error::Error;
use std::fmt;

/// A boxed error, as carried by [`PipelineError::Failed`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a pipeline run failed. Every variant names the stage it came from.
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
///         .collect(),
/// );
/// match result {
///     Err(PipelineError::Panicked { stage, message }) => {
///         assert_eq!(stage, "parse");
///         assert_eq!(message, "bad input 3");
///     }
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PipelineError {
    /// User code in `stage` panicked. The panic was caught: the pipeline shut
    /// down and the process lives on.
    Panicked {
        /// The stage whose closure, future or sink panicked.
        stage: String,
        /// The panic message.
        message: String,
    },
    /// `stage` returned an error (for example the consumer's `Sink` failed).
    Failed {
        /// The stage that failed.
        stage: String,
        /// The underlying error, also available through [`Error::source`].
        source: BoxError,
    },
    /// The run was cancelled before it finished: its
    /// [`PipelineHandle`](crate::PipelineHandle) was aborted, or its runtime
    /// shut down under it.
    Aborted,
}

impl PipelineError {
    /// The name of the stage the error came from (empty for
    /// [`Aborted`](Self::Aborted), which comes from no stage).
    pub fn stage(&self) -> &str {
        match self {
            PipelineError::Panicked { stage, .. } | PipelineError::Failed { stage, .. } => stage,
            PipelineError::Aborted => "",
        }
    }
}

impl PipelineError {
    /// A copy for each branch of a failed fan-out. A `Failed` source is
    /// copied as its message (a boxed error cannot be cloned).
    pub(crate) fn duplicate(&self) -> PipelineError {
        match self {
            PipelineError::Panicked { stage, message } => PipelineError::Panicked {
                stage: stage.clone(),
                message: message.clone(),
            },
            PipelineError::Failed { stage, source } => PipelineError::Failed {
                stage: stage.clone(),
                source: source.to_string().into(),
            },
            PipelineError::Aborted => PipelineError::Aborted,
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Panicked { stage, message } => {
                write!(f, "stage `{stage}` panicked: {message}")
            }
            PipelineError::Failed { stage, source } => {
                write!(f, "stage `{stage}` failed: {source}")
            }
            PipelineError::Aborted => f.write_str("the run was aborted"),
        }
    }
}

impl Error for PipelineError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PipelineError::Panicked { .. } | PipelineError::Aborted => None,
            PipelineError::Failed { source, .. } => Some(&**source),
        }
    }
}
