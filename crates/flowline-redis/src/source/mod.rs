//! The source: [`SourceBuilder`] and the stream of deliveries it reads.
//!
//! Inside: `reader.rs` (the read loop — own pending entries, new ones,
//! reclaims, dead letters — and the `Stream` that keeps one read in flight).

mod reader;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

use crate::backend::{Backend, GroupKey};
use crate::link::SourceLink;
use crate::{Deliveries, Delivery, Entry, EntryId, Error, ErrorKind, RedisBackend};
use reader::{Phase, Reader};

pub(crate) use reader::DeliveryStream;

/// Settings of a source; see [`SourceBuilder`] for each one.
#[derive(Debug, Clone)]
struct Config {
    max_count: usize,
    block: Duration,
    min_idle: Option<Duration>,
    reclaim_every: Duration,
    max_deliveries: u64,
    create: bool,
    reconnect_for: Duration,
    stop_when_empty: bool,
}

/// Builds a source of [`Delivery<Entry>`](Delivery) over a consumer group;
/// from [`source`](crate::source) or [`source_with`](crate::source_with).
///
/// The source first re-reads this consumer's own pending entries (left by a
/// previous run that stopped before acking them), then reads new ones,
/// as many at a time as downstream has room for (at most `max_count`),
/// keeping one read in flight while it hands out the previous batch. Every `reclaim_every` it takes over entries idle for
/// longer than `min_idle` in other consumers (`XAUTOCLAIM`): those of a dead
/// worker. An entry delivered more than `max_deliveries` times goes to the
/// dead-letter stream (`<stream>:dead`) instead of downstream.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_redis::{source_with, MemoryBackend};
///
/// let builder = source_with(MemoryBackend::new(), "jobs", "workers", "worker-1")
///     .max_count(500)
///     .block(Duration::from_millis(100))
///     .min_idle(Duration::from_secs(30))
///     .max_deliveries(5);
/// # drop(builder);
/// ```
#[must_use = "a source builder does nothing until built"]
pub struct SourceBuilder {
    backend: Result<Arc<dyn Backend>, Error>,
    key: GroupKey,
    consumer: Arc<str>,
    dead_stream: Arc<str>,
    config: Config,
}

impl fmt::Debug for SourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceBuilder")
            .field("key", &self.key)
            .field("consumer", &self.consumer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SourceBuilder {
    pub(crate) fn new(
        backend: Result<Arc<dyn Backend>, Error>,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Self {
        SourceBuilder {
            backend,
            key: GroupKey::new(stream, group),
            consumer: consumer.into(),
            dead_stream: format!("{stream}:dead").into(),
            config: Config {
                max_count: 256,
                block: Duration::from_millis(100),
                min_idle: Some(Duration::from_secs(60)),
                reclaim_every: Duration::from_secs(10),
                max_deliveries: 10,
                create: true,
                reconnect_for: Duration::from_secs(30),
                stop_when_empty: false,
            },
        }
    }

    /// The most entries asked for per read (`COUNT`, default 256).
    ///
    /// Each read asks for as many entries as downstream has room for: when
    /// a boundary follows the source (`.boundary(capacity)`), the free
    /// capacity of its queue less what the source already holds
    /// ([`flowline_core::producer::free_capacity`]), so a stalled consumer
    /// never makes the source read (and hold pending) more than the
    /// pipeline can take. `max_count` caps that; without a boundary the
    /// source reads `max_count` at a time. Must be at least 1.
    pub fn max_count(mut self, max_count: usize) -> Self {
        self.config.max_count = max_count;
        self
    }

    /// How long a read for new entries waits (`BLOCK`, default 100 ms).
    /// Short, so that a shutdown does not wait on it.
    pub fn block(mut self, block: Duration) -> Self {
        self.config.block = block;
        self
    }

    /// Take over entries other consumers have left pending for at least
    /// `min_idle` (default 60 s): set it above the longest time a live
    /// worker may hold an item.
    pub fn min_idle(mut self, min_idle: Duration) -> Self {
        self.config.min_idle = Some(min_idle);
        self
    }

    /// Never take over other consumers' entries.
    pub fn no_reclaim(mut self) -> Self {
        self.config.min_idle = None;
        self
    }

    /// How often to look for idle entries to take over (default 10 s).
    pub fn reclaim_every(mut self, period: Duration) -> Self {
        self.config.reclaim_every = period;
        self
    }

    /// Dead-letter an entry delivered more than `max` times (default 10).
    /// Must be at least 1.
    ///
    /// # Caveats
    ///
    /// Redis counts a delivery when an entry is read, not when it is
    /// processed: entries read ahead of an item that fails the run (up to
    /// [`max_count`](Self::max_count) of them) are delivered again too. Allow for
    /// that, or read fewer at a time, when a poison entry may crash runs.
    pub fn max_deliveries(mut self, max: u64) -> Self {
        self.config.max_deliveries = max;
        self
    }

    /// The stream dead letters go to (default `<stream>:dead`).
    pub fn dead_letter_stream(mut self, stream: &str) -> Self {
        self.dead_stream = stream.into();
        self
    }

    /// Whether to create the group (and the stream) when missing (default
    /// `true`). Without it a missing group is an [`ErrorKind::NoGroup`] error.
    pub fn create_group(mut self, create: bool) -> Self {
        self.config.create = create;
        self
    }

    /// How long to keep retrying while the server is unreachable before the
    /// run fails (default 30 s).
    pub fn reconnect_for(mut self, period: Duration) -> Self {
        self.config.reconnect_for = period;
        self
    }

    /// End the stream once a read for new entries comes back empty (after
    /// waiting `block`): for batch jobs and tests. By default a source runs
    /// until the run is shut down.
    pub fn stop_when_empty(mut self) -> Self {
        self.config.stop_when_empty = true;
        self
    }

    fn check(&self) -> Result<Arc<dyn Backend>, Error> {
        let backend = match &self.backend {
            Ok(b) => b.clone(),
            Err(e) => {
                return Err(self.key.error(e.kind(), "connect", &e.to_string()));
            }
        };
        let bad = |msg: &str| Err(self.key.error(ErrorKind::Config, "configure source", msg));
        if self.config.max_count == 0 {
            return bad("max_count must be at least 1");
        }
        if self.config.max_deliveries == 0 {
            return bad("max_deliveries must be at least 1");
        }
        if self.config.reclaim_every.is_zero() {
            return bad("reclaim_every must be more than zero");
        }
        Ok(backend)
    }

    /// Checks the settings and the server — reachable, the key a stream,
    /// the group there or created — and returns the source, ready to
    /// build a pipeline on. Nothing is read yet.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the stream and group: invalid settings
    /// ([`ErrorKind::Config`]), a bad URL, an unreachable server, a key of
    /// another type ([`ErrorKind::WrongType`]), a missing group with
    /// `create_group(false)` ([`ErrorKind::NoGroup`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// let mem = MemoryBackend::new();
    /// mem.set_other_type("jobs");
    /// let err = futures::executor::block_on(source_with(mem, "jobs", "g", "c").connect()).unwrap_err();
    /// assert_eq!(err.kind(), flowline_redis::ErrorKind::WrongType);
    /// assert!(err.to_string().contains("`jobs` group `g`"));
    /// ```
    pub async fn connect(self) -> Result<Deliveries<impl Stream<Item = Delivery<Entry>>>, Error> {
        let backend = self.check()?;
        backend
            .create_group(self.key.clone(), self.config.create)
            .await?;
        Ok(self.into_deliveries(Ok(backend), true))
    }

    /// The source, without checking the server first: the first read
    /// creates the group, and any error fails the run (stage `redis
    /// <stream>/<group>`). Prefer [`connect`](Self::connect), which reports
    /// errors before anything runs.
    ///
    /// # Errors
    ///
    /// Invalid settings are reported when the run starts.
    pub fn build(self) -> Deliveries<impl Stream<Item = Delivery<Entry>>> {
        let checked = self.check();
        self.into_deliveries(checked, false)
    }

    fn into_deliveries(
        self,
        checked: Result<Arc<dyn Backend>, Error>,
        started: bool,
    ) -> Deliveries<impl Stream<Item = Delivery<Entry>>> {
        // An invalid source fails its run at the first read, with this error.
        let (backend, error) = match checked {
            Ok(b) => (b, None),
            Err(e) => (
                Arc::new(crate::MemoryBackend::new()) as Arc<dyn Backend>,
                Some(e),
            ),
        };
        let link = SourceLink::new(backend.clone(), self.key.clone(), self.dead_stream);
        let reader = Reader {
            reads: backend.reader(),
            link: link.clone(),
            consumer: self.consumer,
            config: self.config,
            phase: Phase::Pending(EntryId::default()),
            next_reclaim: None,
            claim_cursor: EntryId::default(),
            started,
            drained: false,
            failing_since: None,
        };
        let stream = DeliveryStream {
            reader: error.is_none().then_some(reader),
            fetch: None,
            buf: VecDeque::new(),
            error,
        };
        let name = format!("redis {}/{}", self.key.stream, self.key.group);
        Deliveries::from_source(stream, name, link)
    }
}

/// `source(url, …)` with a Redis backend.
pub(crate) fn redis_backend(
    url: &str,
    stream: &str,
    group: &str,
) -> Result<Arc<dyn Backend>, Error> {
    RedisBackend::open(url)
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|e| Error::redis(e, stream, Some(group), "open"))
}
