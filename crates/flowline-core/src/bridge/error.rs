//! The bridges' error types. Every push error hands the item back.

use std::error::Error;
use std::fmt;

/// [`Feeder::push`](super::Feeder::push) or [`send`](super::Feeder::send)
/// failed because the feeder is closed (by [`close`](super::Feeder::close) or
/// because the pipeline reading it was dropped). The item is handed back.
///
/// # Examples
///
/// ```
/// use flowline_core::bridge::{self, PushError};
///
/// let (feeder, pipeline) = bridge::feeder::<u32>(4);
/// drop(pipeline);
/// assert_eq!(feeder.push(7), Err(PushError(7)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PushError<T>(pub T);

impl<T> PushError<T> {
    /// The item that was not pushed.
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder(1);
    /// drop(pipeline);
    /// assert_eq!(feeder.push("lost?").unwrap_err().into_inner(), "lost?");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushError(..)")
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pushing into a closed feeder")
    }
}

impl<T> Error for PushError<T> {}

/// [`Feeder::try_push`](super::Feeder::try_push) failed; the item is handed back.
///
/// # Examples
///
/// ```
/// use flowline_core::bridge::{self, TryPushError};
///
/// let (feeder, _pipeline) = bridge::feeder(1);
/// feeder.try_push(1).unwrap();
/// assert_eq!(feeder.try_push(2), Err(TryPushError::Full(2)));
/// feeder.close();
/// assert_eq!(feeder.try_push(3), Err(TryPushError::Closed(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPushError<T> {
    /// The feeder holds `capacity` items already.
    Full(T),
    /// The feeder is closed.
    Closed(T),
}

impl<T> TryPushError<T> {
    /// The item that was not pushed.
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, _pipeline) = bridge::feeder(1);
    /// feeder.push(1).unwrap();
    /// let err = feeder.try_push(2).unwrap_err();
    /// assert!(err.is_full() && !err.is_closed());
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPushError::Full(t) | TryPushError::Closed(t) => t,
        }
    }

    /// Whether the feeder was full (rather than closed); see
    /// [`into_inner`](Self::into_inner) for an example.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPushError::Full(_))
    }

    /// Whether the feeder was closed; see [`into_inner`](Self::into_inner)
    /// for an example.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPushError::Closed(_))
    }
}

impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Full(_) => f.write_str("Full(..)"),
            TryPushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Full(_) => f.write_str("pushing into a full feeder"),
            TryPushError::Closed(_) => f.write_str("pushing into a closed feeder"),
        }
    }
}

impl<T> Error for TryPushError<T> {}

/// [`Feeder::push_timeout`](super::Feeder::push_timeout) failed; the item is
/// handed back.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::bridge::{self, PushTimeoutError};
///
/// let (feeder, _pipeline) = bridge::feeder(1);
/// feeder.push(1).unwrap();
/// let err = feeder.push_timeout(2, Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err, PushTimeoutError::Timeout(2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushTimeoutError<T> {
    /// The feeder stayed full for the whole timeout.
    Timeout(T),
    /// The feeder is closed.
    Closed(T),
}

impl<T> PushTimeoutError<T> {
    /// The item that was not pushed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::bridge;
    ///
    /// let (feeder, _pipeline) = bridge::feeder(1);
    /// feeder.close();
    /// let err = feeder.push_timeout('x', Duration::from_secs(1)).unwrap_err();
    /// assert_eq!(err.into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushTimeoutError::Timeout(t) | PushTimeoutError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PushTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => f.write_str("timed out pushing into a full feeder"),
            PushTimeoutError::Closed(_) => f.write_str("pushing into a closed feeder"),
        }
    }
}

impl<T> Error for PushTimeoutError<T> {}

/// [`Drain::try_recv`](super::Drain::try_recv) found no item.
///
/// # Examples
///
/// ```
/// use flowline_core::{bridge::TryRecvError, producer};
///
/// let mut drain = producer::iter(Vec::<u8>::new()).into_drain(4);
/// while drain.try_recv() == Err(TryRecvError::Empty) {
///     std::thread::yield_now();
/// }
/// assert_eq!(drain.try_recv(), Err(TryRecvError::Ended));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// No item is ready yet; the pipeline is still running.
    Empty,
    /// The pipeline has delivered its last item.
    Ended,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no item ready"),
            TryRecvError::Ended => f.write_str("the pipeline has ended"),
        }
    }
}

impl Error for TryRecvError {}

/// [`Drain::recv_timeout`](super::Drain::recv_timeout) got no item.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::{bridge::{self, RecvTimeoutError}, ProducerExt};
///
/// let (feeder, pipeline) = bridge::feeder::<u8>(4);
/// let mut drain = pipeline.into_drain(4);
/// assert_eq!(drain.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
/// drop(feeder);
/// assert_eq!(drain.recv_timeout(Duration::from_secs(10)), Err(RecvTimeoutError::Ended));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// No item arrived in time; the pipeline is still running.
    Timeout,
    /// The pipeline has delivered its last item.
    Ended,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for an item"),
            RecvTimeoutError::Ended => f.write_str("the pipeline has ended"),
        }
    }
}

impl Error for RecvTimeoutError {}
