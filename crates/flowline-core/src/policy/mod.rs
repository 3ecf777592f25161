//! Error policies for fallible stages: what happens to an item whose stage
//! returned an error or panicked.
//!
//! A fallible stage ([`Pipeline::try_map`](crate::Pipeline::try_map),
//! [`Pipeline::try_then`](crate::Pipeline::try_then)) takes an
//! [`ErrorPolicy`] with [`Pipeline::on_error`](crate::Pipeline::on_error).
//! The framework applies it the same way in every fallible stage:
//!
//! | policy | the failed item | the run | counted as |
//! |---|---|---|---|
//! | [`Stop`](ErrorPolicy::Stop) (default) | lost with the run | ends with [`PipelineError`](crate::PipelineError) naming the stage | `failed` |
//! | [`Skip`](ErrorPolicy::Skip) | dropped (a `tracing` event with the `tracing` feature) | goes on | `skipped` |
//! | [`Retry`](ErrorPolicy::Retry) | the call is made again after a backoff, up to `attempts` more times; then as `Stop` | goes on while a retry succeeds | `retried` per extra attempt |
//! | [`DeadLetter`](ErrorPolicy::DeadLetter) | handed to your consumer as a [`DeadLetter`] | goes on | `dead_lettered` |
//!
//! A panic in the stage's closure (or future) is caught and handled like an
//! error, as [`StageError::Panicked`].
//!
//! Inside: `backoff.rs` ([`Backoff`]), `handler.rs` (the crate-internal
//! `Policy` every fallible adapter holds; see its docs for how to reuse it in
//! a new fallible stage).

mod backoff;
mod handler;

use std::error::Error;
use std::fmt;
use std::pin::Pin;

use futures::{Sink, SinkExt as _};

use crate::run::BoxError;

pub use backoff::Backoff;
pub(crate) use handler::{poll_close, Policy, Verdict};

/// What a fallible stage does with an item that failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::{producer, Backoff, ErrorPolicy};
///
/// let (out, report) = futures::executor::block_on(
///     producer::iter(["1", "x", "3"])
///         .try_map(|s| s.parse::<u32>())
///         .on_error(ErrorPolicy::Skip)
///         .named("parse")
///         .run_collect(),
/// )
/// .unwrap();
/// assert_eq!(out, [1, 3]);
/// assert_eq!(report.stage("parse").unwrap().skipped, 1);
///
/// // Retry up to 3 more times, 10ms, 20ms, 40ms apart (±50% jitter).
/// let _policy: ErrorPolicy<u32> = ErrorPolicy::Retry {
///     attempts: 3,
///     backoff: Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).with_jitter(),
/// };
/// ```
#[non_exhaustive]
pub enum ErrorPolicy<T> {
    /// End the run with [`PipelineError`](crate::PipelineError) naming the
    /// stage and carrying the cause. The default.
    Stop,
    /// Drop the item, count it as `skipped`, go on.
    Skip,
    /// Call the stage again with the same item (a copy made before each
    /// call), up to `attempts` more times, sleeping `backoff` between them on
    /// the pipeline's runtime timer. When every attempt failed: as `Stop`.
    Retry {
        /// Extra attempts after the first failure (0 behaves like `Stop`).
        attempts: u32,
        /// Delay before each extra attempt.
        backoff: Backoff,
    },
    /// Hand the item and its error to a consumer as a [`DeadLetter`], count it
    /// as `dead_lettered`, go on. Build with [`ErrorPolicy::dead_letter`].
    DeadLetter(DeadLetterSink<T>),
}

impl<T> ErrorPolicy<T> {
    /// [`ErrorPolicy::DeadLetter`] with `consumer` (any `Sink` of
    /// [`DeadLetter<T>`], see [`crate::consumer`]). The consumer is closed
    /// when the stage's input ends. If it fails, the run ends with
    /// [`PipelineError::Failed`](crate::PipelineError::Failed) naming the
    /// stage with ` (dead letters)` appended, and the item counts as failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer, DeadLetter, ErrorPolicy};
    ///
    /// let (tx, rx) = futures::channel::mpsc::unbounded::<DeadLetter<&str>>();
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(["1", "x", "3"])
    ///         .try_map(|s| s.parse::<u32>())
    ///         .on_error(ErrorPolicy::dead_letter(tx))
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [1, 3]);
    /// let letters: Vec<_> = futures::executor::block_on_stream(rx).collect();
    /// assert_eq!(letters[0].item, "x");
    /// assert_eq!(letters[0].stage, "try_map#1");
    /// assert_eq!(letters[0].error.to_string(), "invalid digit found in string");
    /// ```
    pub fn dead_letter<C>(consumer: C) -> Self
    where
        C: Sink<DeadLetter<T>> + Send + 'static,
        C::Error: Into<BoxError> + 'static,
    {
        ErrorPolicy::DeadLetter(DeadLetterSink(Box::pin(consumer.sink_map_err(Into::into))))
    }

    /// Whether the policy needs a copy of each item (to call again, or to
    /// hand to the dead-letter consumer).
    pub(crate) fn needs_copy(&self) -> bool {
        matches!(self, ErrorPolicy::Retry { .. } | ErrorPolicy::DeadLetter(_))
    }
}

// Written out: a derive would require `T: Default`.
#[allow(clippy::derivable_impls)]
impl<T> Default for ErrorPolicy<T> {
    fn default() -> Self {
        ErrorPolicy::Stop
    }
}

impl<T> fmt::Debug for ErrorPolicy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorPolicy::Stop => f.write_str("Stop"),
            ErrorPolicy::Skip => f.write_str("Skip"),
            ErrorPolicy::Retry { attempts, backoff } => f
                .debug_struct("Retry")
                .field("attempts", attempts)
                .field("backoff", backoff)
                .finish(),
            ErrorPolicy::DeadLetter(_) => f.write_str("DeadLetter(..)"),
        }
    }
}

/// The consumer of an [`ErrorPolicy::DeadLetter`] policy, boxed. Build with
/// [`ErrorPolicy::dead_letter`].
///
/// # Examples
///
/// ```
/// use flowline_core::{DeadLetter, ErrorPolicy};
///
/// let (tx, _rx) = futures::channel::mpsc::unbounded::<DeadLetter<u32>>();
/// let ErrorPolicy::DeadLetter(sink) = ErrorPolicy::dead_letter(tx) else { unreachable!() };
/// assert_eq!(format!("{sink:?}"), "DeadLetterSink(..)");
/// ```
pub struct DeadLetterSink<T>(pub(crate) Pin<Box<dyn Sink<DeadLetter<T>, Error = BoxError> + Send>>);

impl<T> fmt::Debug for DeadLetterSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeadLetterSink(..)")
    }
}

/// An item that failed in a stage with an [`ErrorPolicy::DeadLetter`]
/// policy, with its error and the stage's name.
///
/// # Examples
///
/// ```
/// use flowline_core::{producer, DeadLetter, ErrorPolicy};
///
/// let (tx, rx) = futures::channel::mpsc::unbounded::<DeadLetter<u32>>();
/// let divide = producer::iter([4, 0, 2])
///     .try_map(|n| 8u32.checked_div(n).ok_or("division by zero"))
///     .on_error(ErrorPolicy::dead_letter(tx));
/// let (out, _) = futures::executor::block_on(divide.run_collect()).unwrap();
/// assert_eq!(out, [2, 4]);
/// let letter = futures::executor::block_on_stream(rx).next().unwrap();
/// assert_eq!((letter.item, letter.stage.as_str()), (0, "try_map#1"));
/// assert_eq!(letter.error.to_string(), "division by zero");
/// ```
///
/// See also [`ErrorPolicy::dead_letter`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The item, as it was handed to the stage.
    pub item: T,
    /// Why the stage failed on it.
    pub error: StageError,
    /// The stage's name.
    pub stage: String,
}

/// Why a fallible stage failed on one item.
///
/// # Examples
///
/// ```
/// use flowline_core::StageError;
///
/// let e = StageError::Panicked("boom".into());
/// assert_eq!(e.to_string(), "panicked: boom");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StageError {
    /// The closure (or its future) returned this error.
    Failed(BoxError),
    /// The closure (or its future) panicked with this message; the panic was
    /// caught.
    Panicked(String),
}

impl StageError {
    /// Whether the failure was a panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::StageError;
    ///
    /// assert!(StageError::Panicked("boom".into()).is_panic());
    /// assert!(!StageError::Failed("bad input".into()).is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, StageError::Panicked(_))
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::Failed(e) => fmt::Display::fmt(e, f),
            StageError::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

impl Error for StageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StageError::Failed(e) => Some(&**e),
            StageError::Panicked(_) => None,
        }
    }
}

/// Clones a stage's input for a policy that keeps a copy.
pub(crate) type CopyFn<T> = fn(&T) -> T;

/// A stage adapter that takes an [`ErrorPolicy`]: the bound of
/// [`Pipeline::on_error`](crate::Pipeline::on_error).
///
/// Implemented by the fallible stages' adapters; not meant to be implemented
/// outside flowline.
///
/// # Examples
///
/// ```
/// use flowline_core::policy::Fallible;
/// use flowline_core::{producer, ErrorPolicy, Pipeline};
///
/// // Any pipeline that ends in a fallible stage takes a policy.
/// fn lenient<S: futures::Stream + Fallible<Input: Clone>>(p: Pipeline<S>) -> Pipeline<S> {
///     p.on_error(ErrorPolicy::Skip)
/// }
/// let parse = producer::iter(["1", "x", "3"]).try_map(|s| s.parse::<u8>());
/// let (out, _) = futures::executor::block_on(lenient(parse).run_collect()).unwrap();
/// assert_eq!(out, [1, 3]);
/// ```
pub trait Fallible {
    /// The stage's input item: what a retry calls again with and a dead
    /// letter carries.
    type Input;

    /// Installs `policy`; `copy` clones an input when the policy needs one
    /// (`None` only for a policy that keeps no copy: `Stop`, `Skip`).
    #[doc(hidden)]
    fn set_error_policy(
        &mut self,
        policy: ErrorPolicy<Self::Input>,
        copy: Option<CopyFn<Self::Input>>,
    );
}
