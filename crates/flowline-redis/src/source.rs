//! The source: [`SourceBuilder`] and the stream of deliveries it reads.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream};

use crate::backend::{Backend, DeadLetterEntry, GroupKey, ReadFrom, Received};
use crate::link::{Counters, SourceLink};
use crate::token::{AckToken, Claim};
use crate::{Deliveries, Delivery, Entry, EntryId, Error, ErrorKind, RedisBackend};

/// Settings of a source; see [`SourceBuilder`] for each one.
#[derive(Debug, Clone)]
struct Config {
    count: usize,
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
/// `count` at a time, keeping one read in flight while it hands out the
/// previous batch. Every `reclaim_every` it takes over entries idle for
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
///     .count(500)
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
                count: 256,
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

    /// Entries asked for per read (`COUNT`, default 256): the most items the
    /// source holds ahead of downstream. Must be at least 1.
    pub fn count(mut self, count: usize) -> Self {
        self.config.count = count;
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
    /// [`count`](Self::count) of them) are delivered again too. Allow for
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
        if self.config.count == 0 {
            return bad("count must be at least 1");
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
            next_reclaim: Instant::now(),
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

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Re-reading this consumer's own pending entries after this id.
    Pending(EntryId),
    New,
}

/// The reading side of a source; moved into each read future and back.
struct Reader {
    reads: Arc<dyn Backend>,
    link: Arc<SourceLink>,
    consumer: Arc<str>,
    config: Config,
    phase: Phase,
    next_reclaim: Instant,
    claim_cursor: EntryId,
    started: bool,
    /// The last read for new entries came back empty.
    drained: bool,
    /// Since when reads have been failing with connection errors.
    failing_since: Option<Instant>,
}

type Fetch = BoxFuture<'static, (Reader, Result<Vec<Delivery<Entry>>, Error>)>;

impl Reader {
    async fn fetch(mut self) -> (Self, Result<Vec<Delivery<Entry>>, Error>) {
        loop {
            match self.fetch_once().await {
                Ok(got) => {
                    self.failing_since = None;
                    return (self, Ok(got));
                }
                Err(e) if e.is_connection() => {
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.config.reconnect_for {
                        return (self, Err(e));
                    }
                    async_io::Timer::after(Duration::from_millis(100)).await;
                }
                Err(e) => return (self, Err(e)),
            }
        }
    }

    async fn fetch_once(&mut self) -> Result<Vec<Delivery<Entry>>, Error> {
        let key = self.link.key.clone();
        if !self.started {
            self.link
                .backend
                .create_group(key.clone(), self.config.create)
                .await?;
            self.started = true;
        }
        let count = self.config.count;
        let received = match self.phase {
            Phase::Pending(after) => {
                let got = self
                    .reads
                    .read(
                        key,
                        self.consumer.clone(),
                        ReadFrom::PendingAfter(after),
                        count,
                    )
                    .await?;
                self.phase = match got.last() {
                    Some(last) => Phase::Pending(last.entry.id),
                    None => Phase::New,
                };
                got
            }
            Phase::New => match self.config.min_idle {
                Some(min_idle) if Instant::now() >= self.next_reclaim => {
                    let (cursor, got) = self
                        .link
                        .backend
                        .claim(
                            key,
                            self.consumer.clone(),
                            min_idle,
                            self.claim_cursor,
                            count,
                        )
                        .await?;
                    self.claim_cursor = cursor;
                    if cursor == EntryId::default() {
                        self.next_reclaim = Instant::now() + self.config.reclaim_every;
                    }
                    Counters::add(&self.link.counters.reclaimed, got.len() as u64);
                    got
                }
                _ => {
                    let mut block = self.config.block;
                    if self.config.min_idle.is_some() {
                        let to_reclaim =
                            self.next_reclaim.saturating_duration_since(Instant::now());
                        block = block.min(to_reclaim).max(Duration::from_millis(1));
                    }
                    let got = self
                        .reads
                        .read(key, self.consumer.clone(), ReadFrom::New(block), count)
                        .await?;
                    self.drained = got.is_empty();
                    got
                }
            },
        };
        self.deliver(received).await
    }

    /// Dead-letters the entries delivered too often; wraps the rest.
    async fn deliver(&self, received: Vec<Received>) -> Result<Vec<Delivery<Entry>>, Error> {
        let max = self.config.max_deliveries;
        let (poison, good): (Vec<_>, Vec<_>) =
            received.into_iter().partition(|r| r.deliveries > max);
        if !poison.is_empty() {
            let letters = poison
                .into_iter()
                .map(|r| DeadLetterEntry {
                    id: r.entry.id,
                    fields: Some(r.entry.fields),
                    deliveries: r.deliveries,
                    reason: format!("delivered {} times (max_deliveries {max})", r.deliveries),
                })
                .collect::<Vec<_>>();
            let n = letters.len() as u64;
            self.link
                .backend
                .dead_letter(
                    self.link.key.clone(),
                    self.link.dead_stream.clone(),
                    letters,
                )
                .await?;
            Counters::add(&self.link.counters.dead_lettered, n);
        }
        let counters = &self.link.counters;
        Counters::add(&counters.read, good.len() as u64);
        Counters::add(
            &counters.redelivered,
            good.iter().filter(|r| r.deliveries > 1).count() as u64,
        );
        Ok(good
            .into_iter()
            .map(|r| {
                let token = AckToken::new(Claim {
                    link: self.link.clone(),
                    id: r.entry.id,
                    deliveries: r.deliveries,
                });
                Delivery::new(r.entry, token)
            })
            .collect())
    }
}

/// Reads batches and hands out their deliveries one by one, the next read
/// in flight while the second half of a batch goes out.
pub(crate) struct DeliveryStream {
    reader: Option<Reader>,
    fetch: Option<Fetch>,
    buf: VecDeque<Delivery<Entry>>,
    error: Option<Error>,
}

impl fmt::Debug for DeliveryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryStream")
            .field("buffered", &self.buf.len())
            .field("reading", &self.fetch.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for DeliveryStream {
    type Item = Result<Delivery<Entry>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.fetch.is_none() && this.error.is_none() {
                if let Some(reader) = this.reader.take() {
                    if this.buf.len() <= reader.config.count / 2 {
                        this.fetch = Some(reader.fetch().boxed());
                    } else {
                        this.reader = Some(reader);
                    }
                }
            }
            if let Some(fetch) = &mut this.fetch {
                if let Poll::Ready((reader, result)) = fetch.poll_unpin(cx) {
                    this.fetch = None;
                    if !(reader.drained && reader.config.stop_when_empty) {
                        this.reader = Some(reader);
                    }
                    match result {
                        Ok(got) => this.buf.extend(got),
                        Err(e) => this.error = Some(e),
                    }
                    continue;
                }
            }
            if let Some(d) = this.buf.pop_front() {
                return Poll::Ready(Some(Ok(d)));
            }
            if let Some(e) = this.error.take() {
                this.reader = None;
                return Poll::Ready(Some(Err(e)));
            }
            if this.reader.is_none() && this.fetch.is_none() {
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
    }
}
