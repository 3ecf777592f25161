//! The read loop of a source and the stream that hands out its batches.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flowline_core::time;

use flowline_core::producer::free_capacity;
use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream};

use super::Config;
use crate::backend::{Backend, DeadLetterEntry, ReadFrom, Received};
use crate::error::RETRY_PAUSE;
use crate::link::{Counters, SourceLink};
use crate::token::{AckToken, Claim};
use crate::{Delivery, Entry, EntryId, Error};

#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    /// Re-reading this consumer's own pending entries after this id.
    Pending(EntryId),
    New,
}

/// The reading side of a source; moved into each read future and back.
pub(super) struct Reader {
    pub(super) reads: Arc<dyn Backend>,
    pub(super) link: Arc<SourceLink>,
    pub(super) consumer: Arc<str>,
    pub(super) config: Config,
    pub(super) phase: Phase,
    /// When to look for idle entries next (`None`: at the first read of
    /// new entries). On the pipeline's clock, like every time here.
    pub(super) next_reclaim: Option<Instant>,
    pub(super) claim_cursor: EntryId,
    pub(super) started: bool,
    /// The last read for new entries came back empty.
    pub(super) drained: bool,
    /// Since when reads have been failing with connection errors.
    pub(super) failing_since: Option<Instant>,
}

pub(super) type Fetch = BoxFuture<'static, (Reader, Result<Vec<Delivery<Entry>>, Error>)>;

impl Reader {
    /// Reads up to `count` entries, retrying while the server is
    /// unreachable (for up to `reconnect_for`).
    async fn fetch(mut self, count: usize) -> (Self, Result<Vec<Delivery<Entry>>, Error>) {
        loop {
            match self.fetch_once(count).await {
                Ok(got) => {
                    self.failing_since = None;
                    return (self, Ok(got));
                }
                Err(e) if e.is_connection() => {
                    let now = time::now();
                    let since = *self.failing_since.get_or_insert(now);
                    if now - since >= self.config.reconnect_for {
                        return (self, Err(e));
                    }
                    time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return (self, Err(e)),
            }
        }
    }

    async fn fetch_once(&mut self, count: usize) -> Result<Vec<Delivery<Entry>>, Error> {
        let key = self.link.key.clone();
        if !self.started {
            self.link
                .backend
                .create_group(key.clone(), self.config.create)
                .await?;
            self.started = true;
        }
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
                Some(min_idle) if self.next_reclaim.is_none_or(|at| time::now() >= at) => {
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
                        self.next_reclaim = Some(time::now() + self.config.reclaim_every);
                    }
                    Counters::add(&self.link.counters.reclaimed, got.len() as u64);
                    got
                }
                _ => {
                    let mut block = self.config.block;
                    if self.config.min_idle.is_some() {
                        let to_reclaim = self.next_reclaim.map_or(Duration::ZERO, |at| {
                            at.saturating_duration_since(time::now())
                        });
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

/// How many entries to read now, holding `held`, or `None` to wait: up to
/// the room downstream ([`free_capacity`], when a boundary polls the
/// source) less what the source holds, at most `max_count`; no read while
/// the source holds more than half of `max_count`, or when downstream has
/// no room for more than it holds. A source holding nothing always reads
/// (at least one entry): whoever polls it waits for its read.
fn fetch_count(max_count: usize, held: usize) -> Option<usize> {
    if held > max_count / 2 {
        return None;
    }
    let room = free_capacity().map_or(max_count, |free| free.saturating_sub(held));
    match room.min(max_count) {
        0 if held == 0 => Some(1),
        0 => None,
        n => Some(n),
    }
}

/// Reads batches and hands out their deliveries one by one, the next read
/// in flight while the second half of a batch goes out.
pub(crate) struct DeliveryStream {
    pub(super) reader: Option<Reader>,
    pub(super) fetch: Option<Fetch>,
    pub(super) buf: VecDeque<Delivery<Entry>>,
    pub(super) error: Option<Error>,
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
            if this.fetch.is_none()
                && this.error.is_none()
                && let Some(reader) = this.reader.take()
            {
                match fetch_count(reader.config.max_count, this.buf.len()) {
                    Some(count) => this.fetch = Some(reader.fetch(count).boxed()),
                    None => this.reader = Some(reader),
                }
            }
            if let Some(fetch) = &mut this.fetch
                && let Poll::Ready((reader, result)) = fetch.poll_unpin(cx)
            {
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
