//! Per-source counts: [`Stats`] and [`SourceReport`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::link::SourceLink;

/// Live counts of a delivery pipeline's sources, from
/// [`Deliveries::stats`](crate::Deliveries::stats); read them during or
/// after the run.
///
/// # Examples
///
/// ```
/// use flowline_redis::{source_with, MemoryBackend};
///
/// let source = source_with(MemoryBackend::new(), "jobs", "g", "c").build();
/// let stats = source.stats();
/// assert_eq!(stats.sources()[0].read, 0);
/// # drop(source);
/// ```
#[derive(Debug, Clone)]
pub struct Stats {
    pub(crate) links: Vec<Arc<SourceLink>>,
}

impl Stats {
    /// One report per source, in the order the sources were joined.
    pub fn sources(&self) -> Vec<SourceReport> {
        self.links.iter().map(|l| SourceReport::of(l)).collect()
    }

    /// The counts of all sources added up (stream and group of the first).
    pub fn total(&self) -> SourceReport {
        let mut all = self.sources().into_iter();
        let mut total = all.next().unwrap_or_default();
        for r in all {
            total.read += r.read;
            total.redelivered += r.redelivered;
            total.reclaimed += r.reclaimed;
            total.taken += r.taken;
            total.settled += r.settled;
            total.acked += r.acked;
            total.dead_lettered += r.dead_lettered;
        }
        total
    }
}

/// The counts of one source.
///
/// Every entry the source read ([`read`](Self::read)) was taken by the
/// consumer, settled by a stage, or is [`left_pending`](Self::left_pending)
/// (in flight when the run stopped: it stays pending and is delivered
/// again). After a successful run in which no other worker acked this
/// worker's entries, [`is_balanced`](Self::is_balanced) holds: every entry
/// taken or settled was acked exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceReport {
    /// The stream.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// Entries handed downstream.
    pub read: u64,
    /// Of those, entries delivered before (a re-read or a reclaim).
    pub redelivered: u64,
    /// Entries taken over from idle consumers (`XAUTOCLAIM`), dead-lettered
    /// ones included.
    pub reclaimed: u64,
    /// Items the committer handed to the consumer (entries, for batches).
    pub taken: u64,
    /// Entries settled by a stage: filtered, skipped or dead-lettered.
    pub settled: u64,
    /// Entries the server confirmed acked (`XACK` replies, including the
    /// acks of stage dead letters).
    pub acked: u64,
    /// Entries moved to the dead-letter stream, by the source
    /// (`max_deliveries`) or by a stage.
    pub dead_lettered: u64,
}

impl SourceReport {
    fn of(link: &SourceLink) -> Self {
        let c = &link.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::SeqCst);
        SourceReport {
            stream: link.key.stream.to_string(),
            group: link.key.group.to_string(),
            read: get(&c.read),
            redelivered: get(&c.redelivered),
            reclaimed: get(&c.reclaimed),
            taken: get(&c.taken),
            settled: get(&c.settled_early),
            acked: get(&c.acked),
            dead_lettered: get(&c.dead_lettered),
        }
    }

    /// Entries read but neither taken nor settled: still pending.
    pub fn left_pending(&self) -> u64 {
        self.read.saturating_sub(self.taken + self.settled)
    }

    /// Whether every entry read is accounted for and every one taken or
    /// settled was acked once.
    pub fn is_balanced(&self) -> bool {
        self.read == self.taken + self.settled + self.left_pending()
            && self.acked == self.taken + self.settled
    }
}
