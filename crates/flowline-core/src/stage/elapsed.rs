use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The error a timing stage fails with when its time limit passed:
/// the `source` of [`PipelineError::Failed`](crate::PipelineError::Failed)
/// for [`Pipeline::idle_timeout`](crate::Pipeline::idle_timeout) and
/// [`Pipeline::then_timeout`](crate::Pipeline::then_timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::{producer, stage::Elapsed, PipelineError};
///
/// let result = futures::executor::block_on(
///     producer::iter([1u64, 200])
///         .then_timeout(Duration::from_millis(50), |ms| async move {
///             async_io::Timer::after(Duration::from_millis(ms)).await;
///             ms
///         })
///         .named("lookup")
///         .run_collect(),
/// );
/// let Err(PipelineError::Failed { stage, source, .. }) = result else { panic!() };
/// assert_eq!(stage, "lookup");
/// let elapsed = source.downcast_ref::<Elapsed>().unwrap();
/// assert_eq!(elapsed.limit(), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    limit: Duration,
    what: &'static str,
}

impl Elapsed {
    pub(crate) fn new(limit: Duration, what: &'static str) -> Self {
        Elapsed { limit, what }
    }

    /// The time limit that passed.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} took longer than {:?}", self.what, self.limit)
    }
}

impl Error for Elapsed {}
