//! [`StreamSink`]: a consumer that appends items to a stream with pipelined
//! `XADD`s.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, Sink, StreamExt as _};

use crate::backend::{Backend, BackendFuture};
use crate::{EntryId, Error, Fields};

/// A consumer of field lists (`Vec<(String, Vec<u8>)>`) that `XADD`s them
/// to a stream in order, up to `batch` per pipelined round trip, with one
/// round trip under way while the next batch fills; from
/// [`sink`](crate::sink) or [`sink_with`](crate::sink_with).
///
/// Backpressure: `poll_ready` waits while a full batch is waiting and the
/// previous one is still under way. `poll_flush` and `poll_close` return
/// once every item is in the stream.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
/// use flowline_redis::{sink_with, MemoryBackend};
///
/// let mem = MemoryBackend::new();
/// futures::executor::block_on(
///     producer::iter(0..5)
///         .map(|n: u32| vec![("n".to_string(), n.to_string().into_bytes())])
///         .run(sink_with(mem.clone(), "jobs")),
/// )
/// .unwrap();
/// assert_eq!(mem.len("jobs"), 5);
/// assert_eq!(mem.entries("jobs")[4].get_str("n"), Some("4"));
/// ```
#[must_use = "sinks do nothing unless used"]
pub struct StreamSink {
    backend: Result<Arc<dyn Backend>, Option<Error>>,
    stream: Arc<str>,
    max_len: Option<usize>,
    batch: usize,
    retry_for: std::time::Duration,
    filling: Vec<Fields>,
    max_in_flight: usize,
    in_flight: FuturesUnordered<BackendFuture<Vec<EntryId>>>,
    added: u64,
}

impl fmt::Debug for StreamSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSink")
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("batch", &self.batch)
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl StreamSink {
    pub(crate) fn new(backend: Result<Arc<dyn Backend>, Error>, stream: &str) -> Self {
        StreamSink {
            backend: backend.map_err(Some),
            stream: stream.into(),
            max_len: None,
            batch: 1000,
            retry_for: std::time::Duration::from_secs(30),
            filling: Vec::new(),
            max_in_flight: 1,
            in_flight: FuturesUnordered::new(),
            added: 0,
        }
    }

    /// Trim the stream to about `max_len` entries (`MAXLEN ~`).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// Entries per pipelined round trip (default 1000).
    ///
    /// # Panics
    ///
    /// If `batch` is 0.
    pub fn batch(mut self, batch: usize) -> Self {
        assert!(
            batch > 0,
            "flowline-redis: sink batch must be at least 1, got 0"
        );
        self.batch = batch;
        self
    }

    /// How long to retry a round trip while the server is unreachable
    /// before the run fails (default 30 s). A retried round trip whose
    /// first attempt reached the server adds its entries twice: at least
    /// once, like the rest of the connector.
    pub fn retry_for(mut self, period: std::time::Duration) -> Self {
        self.retry_for = period;
        self
    }

    /// Round trips under way at once (default 1).
    ///
    /// # Caveats
    ///
    /// With more than one, batches under way at the same time may land in
    /// either order: use it only when the order of entries does not matter.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "flowline-redis: sink max_in_flight must be at least 1, got 0"
        );
        self.max_in_flight = n;
        self
    }

    /// Entries added so far (confirmed by the server).
    pub fn added(&self) -> u64 {
        self.added
    }

    fn backend(&mut self) -> Result<&Arc<dyn Backend>, Error> {
        match &mut self.backend {
            Ok(b) => Ok(b),
            Err(e) => Err(e.take().unwrap_or_else(|| {
                Error::new(
                    crate::ErrorKind::Connection,
                    &self.stream,
                    None,
                    "XADD",
                    "failed before",
                )
            })),
        }
    }

    /// Collects finished round trips until at most `max` are under way.
    fn poll_in_flight(&mut self, max: usize, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match self.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some(ids)) => self.added += ids?.len() as u64,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending if self.in_flight.len() > max => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Ok(())),
            }
        }
    }

    fn send_filling(&mut self) -> Result<(), Error> {
        if !self.filling.is_empty() {
            let batch = Arc::new(std::mem::take(&mut self.filling));
            let (stream, max_len, period) = (self.stream.clone(), self.max_len, self.retry_for);
            let backend = self.backend()?.clone();
            let fut = async move {
                crate::error::retrying(period, || {
                    backend.add(stream.clone(), batch.clone(), max_len)
                })
                .await
            };
            self.in_flight.push(fut.boxed());
        }
        Ok(())
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.send_filling()?;
        self.poll_in_flight(0, cx)
    }
}

impl Sink<Fields> for StreamSink {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.filling.len() >= this.batch {
            futures::ready!(this.poll_in_flight(this.max_in_flight - 1, cx))?;
            this.send_filling()?;
        }
        // Collects finished round trips without waiting for the others.
        this.poll_in_flight(usize::MAX, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Fields) -> Result<(), Error> {
        self.get_mut().filling.push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_drain(cx)
    }
}
