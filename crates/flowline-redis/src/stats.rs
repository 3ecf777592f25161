//! Per-source counts: [`SourceReport`], read from the run's report
//! ([`source_reports`], [`is_balanced`]) or live ([`Stats`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flowline_core::{RunReport, StageKind, StageReport};

use crate::link::SourceLink;

/// The names under which a source publishes its counts in the run's
/// report, in the order shown.
const NAMES: [&str; 8] = [
    "read",
    "taken",
    "settled",
    "acked",
    "pending",
    "reclaimed",
    "redelivered",
    "dead-lettered",
];

/// The counts a source publishes in its stage's report entry (see
/// [`SourceReport`] for each one; `pending` is
/// [`pending`](SourceReport::pending)).
pub(crate) fn published(link: &SourceLink) -> Vec<(&'static str, u64)> {
    let r = SourceReport::of(link);
    let values = [
        r.read,
        r.taken,
        r.settled,
        r.acked,
        r.pending(),
        r.reclaimed,
        r.redelivered,
        r.dead_lettered,
    ];
    NAMES.into_iter().zip(values).collect()
}

/// The counts of each Redis source of a run, from its report: the
/// counters each source published in its stage's entry (stage `redis
/// <stream>/<group> read`, kind source), in stage order.
///
/// # Examples
///
/// ```
/// use flowline_core::consumer;
/// use flowline_redis::{source_reports, source_with, MemoryBackend};
///
/// futures::executor::block_on(async {
///     let mem = MemoryBackend::new();
///     for n in 1..=3 {
///         mem.add_fields("jobs", [("n", n.to_string())]).await.unwrap();
///     }
///     let report = source_with(mem, "jobs", "g", "c")
///         .stop_when_empty()
///         .build()
///         .run(consumer::discard())
///         .await
///         .unwrap();
///     let source = &source_reports(&report)[0];
///     assert_eq!((source.stream.as_str(), source.group.as_str()), ("jobs", "g"));
///     assert_eq!((source.read, source.acked, source.pending()), (3, 3, 0));
///     // Shown in the report table too.
///     assert!(report.to_string().lines().next().unwrap().contains("acked  pending"));
/// });
/// ```
pub fn source_reports(report: &RunReport) -> Vec<SourceReport> {
    report
        .stages
        .iter()
        .filter_map(SourceReport::from_stage)
        .collect()
}

/// Whether every Redis source of a run balances: each one's counts do
/// ([`SourceReport::is_balanced`]), and its stage handed downstream
/// exactly the entries it read (the stage's `items_out` is `read`: core's
/// accounting of the source agrees with the connector's). Holds after a
/// successful run in which no other worker acked this worker's entries.
///
/// # Examples
///
/// ```
/// use flowline_core::consumer;
/// use flowline_redis::{is_balanced, source_with, MemoryBackend};
///
/// futures::executor::block_on(async {
///     let mem = MemoryBackend::new();
///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
///     let report = source_with(mem, "jobs", "g", "c")
///         .stop_when_empty()
///         .build()
///         .run(consumer::discard())
///         .await
///         .unwrap();
///     assert!(is_balanced(&report));
/// });
/// ```
pub fn is_balanced(report: &RunReport) -> bool {
    report.stages.iter().all(|stage| {
        SourceReport::from_stage(stage).is_none_or(|s| s.is_balanced() && stage.items_out == s.read)
    })
}

/// Live counts of a delivery pipeline's sources, from
/// [`Deliveries::stats`](crate::Deliveries::stats), to read while the run
/// is under way; once it has ended its report has the same counts
/// ([`source_reports`]).
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

/// The counts of one source: in the run's report ([`source_reports`];
/// the table shows them as the source stage's columns `read`, `taken`,
/// `settled`, `acked`, `pending`, `reclaimed`, `redelivered`,
/// `dead-lettered`), or live from [`Stats`].
///
/// Every entry the source read ([`read`](Self::read)) was taken by the
/// consumer, settled by a stage, or is [`in_flight`](Self::in_flight)
/// (inside the pipeline when the run stopped). An entry not acked is
/// [`pending`](Self::pending): it stays in the group's pending entries list
/// and is delivered again. After a successful run in which no other worker
/// acked this worker's entries, [`is_balanced`](Self::is_balanced) holds:
/// every entry taken or settled was acked exactly once, and none is
/// pending.
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
    /// acks of stage dead letters; not the source's own dead letters, which
    /// are never [`read`](Self::read)).
    pub acked: u64,
    /// Entries moved to the dead-letter stream, by the source
    /// (`max_deliveries`) or by a stage.
    pub dead_lettered: u64,
}

impl SourceReport {
    fn of(link: &SourceLink) -> Self {
        let c = &link.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
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

    /// The counts a source stage published in a run's report (`None` for
    /// any other stage); stream and group come from the stage's name,
    /// `redis <stream>/<group> read` (split at its last `/`).
    pub fn from_stage(stage: &StageReport) -> Option<Self> {
        let key = stage.name.strip_prefix("redis ")?.strip_suffix(" read")?;
        let (stream, group) = key.rsplit_once('/')?;
        if stage.kind != StageKind::Source || stage.counter("acked").is_none() {
            return None;
        }
        let get = |name| stage.counter(name).unwrap_or(0);
        Some(SourceReport {
            stream: stream.to_owned(),
            group: group.to_owned(),
            read: get("read"),
            redelivered: get("redelivered"),
            reclaimed: get("reclaimed"),
            taken: get("taken"),
            settled: get("settled"),
            acked: get("acked"),
            dead_lettered: get("dead-lettered"),
        })
    }

    /// Entries this source read whose ack was not confirmed (the report's
    /// `pending`): at the end of a run, still in this consumer's pending
    /// entries list on the server, to be delivered again (to this worker
    /// when it restarts, or to one that reclaims them). 0 after a
    /// successful run.
    ///
    /// # Caveats
    ///
    /// An `XACK` already sent when a failed or aborted run stopped may
    /// still land on the server without its reply being counted: then the
    /// server has fewer pending entries than this says, never more.
    pub fn pending(&self) -> u64 {
        self.read.saturating_sub(self.acked)
    }

    /// Entries read but neither taken nor settled: inside the pipeline when
    /// the run stopped.
    pub fn in_flight(&self) -> u64 {
        self.read.saturating_sub(self.taken + self.settled)
    }

    /// Whether every entry read is accounted for (`read = taken + settled
    /// + in_flight`) and every one taken or settled was acked once
    /// (`acked = taken + settled`).
    pub fn is_balanced(&self) -> bool {
        self.read == self.taken + self.settled + self.in_flight()
            && self.acked == self.taken + self.settled
    }
}
