//! [`Error`]: what went wrong, on which stream and group.

use std::fmt;
use std::time::Duration;

use flowline_core::time;

use futures::future::BoxFuture;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be parsed.
    InvalidUrl,
    /// The server could not be reached, or the connection was lost and did
    /// not come back within the source's `reconnect_for`.
    Connection,
    /// The stream's key holds another type (Redis `WRONGTYPE`).
    WrongType,
    /// The consumer group does not exist and the source was told not to
    /// create it (Redis `NOGROUP`).
    NoGroup,
    /// Invalid configuration, rejected before any item moves.
    Config,
    /// Any other error the server or the client reported.
    Other,
}

/// A Redis Streams error naming the stream (and group, where one applies)
/// and the operation.
///
/// # Examples
///
/// ```
/// use flowline_redis::{Error, ErrorKind};
///
/// let e = Error::new(ErrorKind::WrongType, "jobs", Some("workers"), "XGROUP CREATE", "WRONGTYPE");
/// assert_eq!(e.kind(), ErrorKind::WrongType);
/// assert_eq!(e.to_string(), "redis stream `jobs` group `workers`: XGROUP CREATE: WRONGTYPE");
/// ```
#[derive(Debug)]
pub struct Error(Box<Inner>);

// Boxed: errors travel in `Result`s on every read, keep those small.
#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    stream: String,
    group: Option<String>,
    op: &'static str,
    message: String,
    source: Option<redis::RedisError>,
}

impl Error {
    /// An error of `kind` during `op` on `stream` (and `group`).
    pub fn new(
        kind: ErrorKind,
        stream: &str,
        group: Option<&str>,
        op: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error(Box::new(Inner {
            kind,
            stream: stream.to_owned(),
            group: group.map(str::to_owned),
            op,
            message: message.into(),
            source: None,
        }))
    }

    /// An error from the `redis` client, classified.
    pub(crate) fn redis(
        e: redis::RedisError,
        stream: &str,
        group: Option<&str>,
        op: &'static str,
    ) -> Self {
        let kind = if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
        {
            ErrorKind::Connection
        } else if e.code() == Some("WRONGTYPE") || e.to_string().contains("WRONGTYPE") {
            ErrorKind::WrongType
        } else if e.code() == Some("NOGROUP") {
            ErrorKind::NoGroup
        } else if e.kind() == redis::ErrorKind::InvalidClientConfig {
            ErrorKind::InvalidUrl
        } else {
            ErrorKind::Other
        };
        // A server error reads as the server wrote it: `WRONGTYPE Operation …`.
        let message = match e.code() {
            Some(code) => format!("{code} {}", e.detail().unwrap_or_default()),
            None => e.to_string(),
        };
        let mut err = Error::new(kind, stream, group, op, message);
        err.0.source = Some(e);
        err
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The stream the operation was on.
    pub fn stream(&self) -> &str {
        &self.0.stream
    }

    /// The consumer group, for group operations.
    pub fn group(&self) -> Option<&str> {
        self.0.group.as_deref()
    }

    /// Whether retrying after a reconnect may succeed.
    pub fn is_connection(&self) -> bool {
        self.0.kind == ErrorKind::Connection
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        write!(f, "redis stream `{}`", e.stream)?;
        if let Some(group) = &e.group {
            write!(f, " group `{group}`")?;
        }
        write!(f, ": {}: {}", e.op, e.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Pause between two attempts while the server is unreachable.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Runs `op` again while it fails with a connection error, for up to
/// `period`, on the pipeline's clock (`flowline_core::time`: a test kit's
/// virtual clock sees the pauses).
pub(crate) async fn retrying<T>(
    period: Duration,
    mut op: impl FnMut() -> BoxFuture<'static, Result<T, Error>>,
) -> Result<T, Error> {
    let start = time::now();
    loop {
        match op().await {
            Err(e) if e.is_connection() && time::now() - start < period => {
                time::sleep(RETRY_PAUSE).await;
            }
            done => return done,
        }
    }
}
