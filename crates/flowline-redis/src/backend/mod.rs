//! Backends: where streams live. [`Backend`] is the consumer-group interface
//! the source, the committer and the sink use; [`MemoryBackend`] keeps
//! streams in this process, [`RedisBackend`] talks to a Redis server.
//!
//! Inside: `memory.rs` (the in-memory backend), `redis.rs` (the Redis one),
//! `parse.rs` (reading replies straight from `redis::Value`).

mod memory;
mod parse;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::{Entry, EntryId, Error, Fields};

pub use self::redis::RedisBackend;
pub use memory::MemoryBackend;

/// A future a [`Backend`] returns.
pub type BackendFuture<T> = BoxFuture<'static, Result<T, Error>>;

/// A stream and one of its consumer groups.
///
/// # Examples
///
/// ```
/// use flowline_redis::backend::GroupKey;
///
/// let key = GroupKey::new("jobs", "workers");
/// assert_eq!((&*key.stream, &*key.group), ("jobs", "workers"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// The stream's key.
    pub stream: Arc<str>,
    /// The consumer group.
    pub group: Arc<str>,
}

impl GroupKey {
    /// The key of `group` on `stream`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::backend::GroupKey;
    ///
    /// let key = GroupKey::new("jobs", "workers");
    /// assert_eq!(key, GroupKey::new("jobs", "workers"));
    /// assert_ne!(key, GroupKey::new("jobs", "auditors")); // same stream, another group
    /// ```
    pub fn new(stream: &str, group: &str) -> Self {
        GroupKey {
            stream: stream.into(),
            group: group.into(),
        }
    }

    pub(crate) fn error(&self, kind: crate::ErrorKind, op: &'static str, msg: &str) -> Error {
        Error::new(kind, &self.stream, Some(&self.group), op, msg)
    }
}

/// Which entries a group read asks for.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
/// use flowline_redis::{EntryId, MemoryBackend};
///
/// futures::executor::block_on(async {
///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
///     mem.create_group(key.clone(), true).await.unwrap();
///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
///     let new = mem.read(key.clone(), "c".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
///     let mine = mem.read(key, "c".into(), ReadFrom::PendingAfter(EntryId::default()), 10).await.unwrap();
///     assert_eq!(new[0].entry, mine[0].entry); // not acked: `c` gets it again
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// This consumer's own pending entries with ids after the given one
    /// (`XREADGROUP … <id>`); does not block.
    PendingAfter(EntryId),
    /// Entries never delivered to the group (`XREADGROUP … >`), waiting up to
    /// the given time for some to arrive.
    New(Duration),
}

/// An entry handed to a consumer, with how many times it has been
/// delivered (this delivery included).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
/// use flowline_redis::MemoryBackend;
///
/// futures::executor::block_on(async {
///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
///     mem.create_group(key.clone(), true).await.unwrap();
///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
///     let got = mem.read(key, "c".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
///     assert_eq!((got[0].entry.get_str("n"), got[0].deliveries), (Some("1"), 1));
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The entry.
    pub entry: Entry,
    /// Times delivered, this one included.
    pub deliveries: u64,
}

/// An entry moved to a dead-letter stream: the original fields plus
/// `dead_letter_of`, `deliveries` and `reason`.
///
/// # Examples
///
/// ```
/// use flowline_redis::backend::{Backend, DeadLetterEntry, GroupKey};
/// use flowline_redis::MemoryBackend;
///
/// futures::executor::block_on(async {
///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
///     mem.create_group(key.clone(), true).await.unwrap();
///     let id = mem.add_fields("jobs", [("n", "x")]).await.unwrap();
///     let letter = DeadLetterEntry { id, fields: None, deliveries: 3, reason: "bad n".into() };
///     mem.dead_letter(key, "jobs:dead".into(), vec![letter]).await.unwrap();
///     let dead = mem.entries("jobs:dead").remove(0); // `fields: None`: `n` copied from `jobs`
///     assert_eq!([dead.get_str("n"), dead.get_str("reason")], [Some("x"), Some("bad n")]);
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterEntry {
    /// The entry's id in its stream.
    pub id: EntryId,
    /// Its fields, when known (a stage's dead letter copies them from the
    /// stream).
    pub fields: Option<Fields>,
    /// Times delivered.
    pub deliveries: u64,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// The consumer-group operations flowline needs, with Redis semantics.
///
/// Implemented by [`MemoryBackend`] and [`RedisBackend`]; methods return
/// `'static` futures so a source can keep one in flight while it hands out
/// items.
///
/// # Examples
///
/// ```
/// use flowline_redis::backend::{Backend, GroupKey, MemoryBackend, ReadFrom};
/// use std::time::Duration;
///
/// futures::executor::block_on(async {
///     let mem = MemoryBackend::new();
///     let key = GroupKey::new("jobs", "workers");
///     mem.add(key.stream.clone(), vec![vec![("n".into(), b"1".to_vec())]].into(), None).await?;
///     mem.create_group(key.clone(), true).await?;
///     let got = mem.read(key.clone(), "w1".into(), ReadFrom::New(Duration::ZERO), 10).await?;
///     assert_eq!(got.len(), 1);
///     assert_eq!(mem.ack(key, vec![got[0].entry.id]).await?, 1);
///     Ok::<(), flowline_redis::Error>(())
/// }).unwrap();
/// ```
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Creates the group (and, with `create`, the stream: `MKSTREAM`) at id
    /// `0`, so entries added before the first worker started are read too.
    /// An existing group is fine. Without `create`, checks that the group
    /// exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::backend::{Backend, GroupKey};
    /// use flowline_redis::{ErrorKind, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     let err = mem.create_group(key.clone(), false).await.unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::NoGroup);
    ///     mem.create_group(key.clone(), true).await.unwrap(); // MKSTREAM
    ///     mem.create_group(key, false).await.unwrap(); // there now
    /// });
    /// ```
    fn create_group(&self, key: GroupKey, create: bool) -> BackendFuture<()>;

    /// `XREADGROUP GROUP <group> <consumer> COUNT <count> [BLOCK] STREAMS <stream> <from>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
    /// use flowline_redis::MemoryBackend;
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     mem.create_group(key.clone(), true).await.unwrap();
    ///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     mem.add_fields("jobs", [("n", "2")]).await.unwrap();
    ///     let got = mem.read(key, "c".into(), ReadFrom::New(Duration::ZERO), 1).await.unwrap();
    ///     assert_eq!((got.len(), mem.pending("jobs", "g")), (1, 1)); // delivered, not acked yet
    /// });
    /// ```
    fn read(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        from: ReadFrom,
        count: usize,
    ) -> BackendFuture<Vec<Received>>;

    /// `XAUTOCLAIM`: takes up to `count` entries idle for at least `min_idle`
    /// from any consumer, scanning from `start`; returns the cursor for the
    /// next call (`0-0` when the scan wrapped) and the claimed entries with
    /// their delivery counts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
    /// use flowline_redis::{EntryId, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     mem.create_group(key.clone(), true).await.unwrap();
    ///     let id = mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     mem.read(key.clone(), "gone".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
    ///     let (next, got) = mem.claim(key, "live".into(), Duration::ZERO, EntryId::default(), 10).await.unwrap();
    ///     assert_eq!((next, got[0].entry.id, got[0].deliveries), (EntryId::default(), id, 2));
    /// });
    /// ```
    fn claim(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        min_idle: Duration,
        start: EntryId,
        count: usize,
    ) -> BackendFuture<(EntryId, Vec<Received>)>;

    /// `XACK`: returns how many of `ids` were pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
    /// use flowline_redis::MemoryBackend;
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     mem.create_group(key.clone(), true).await.unwrap();
    ///     let id = mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     mem.read(key.clone(), "c".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
    ///     assert_eq!(mem.ack(key.clone(), vec![id]).await.unwrap(), 1);
    ///     assert_eq!(mem.ack(key, vec![id]).await.unwrap(), 0); // no longer pending
    /// });
    /// ```
    fn ack(&self, key: GroupKey, ids: Vec<EntryId>) -> BackendFuture<u64>;

    /// Adds each letter to `dead_stream` and acks it in `key`, in one
    /// pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::backend::{Backend, DeadLetterEntry, GroupKey, ReadFrom};
    /// use flowline_redis::MemoryBackend;
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     mem.create_group(key.clone(), true).await.unwrap();
    ///     let id = mem.add_fields("jobs", [("n", "x")]).await.unwrap();
    ///     mem.read(key.clone(), "c".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
    ///     let letter = DeadLetterEntry { id, fields: None, deliveries: 1, reason: "bad n".into() };
    ///     mem.dead_letter(key, "jobs:dead".into(), vec![letter]).await.unwrap();
    ///     assert_eq!((mem.pending("jobs", "g"), mem.len("jobs:dead")), (0, 1)); // acked, moved
    /// });
    /// ```
    fn dead_letter(
        &self,
        key: GroupKey,
        dead_stream: Arc<str>,
        letters: Vec<DeadLetterEntry>,
    ) -> BackendFuture<()>;

    /// `XADD` each entry (pipelined), trimming to about `max_len`. Shared,
    /// so a retry after a lost connection needs no copy.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowline_redis::backend::Backend;
    /// use flowline_redis::{Fields, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     let rows: Vec<Fields> = (1..=3).map(|n| vec![("n".into(), n.to_string().into_bytes())]).collect();
    ///     let ids = mem.add("jobs".into(), Arc::new(rows), Some(2)).await.unwrap();
    ///     assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    ///     assert_eq!(mem.len("jobs"), 2); // the oldest trimmed (exactly, in memory)
    /// });
    /// ```
    fn add(
        &self,
        stream: Arc<str>,
        entries: Arc<Vec<Fields>>,
        max_len: Option<usize>,
    ) -> BackendFuture<Vec<EntryId>>;

    /// A handle for one source's blocking reads: Redis gives them a
    /// connection of their own, so a `BLOCK` does not hold up acks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::backend::{Backend, GroupKey, ReadFrom};
    /// use flowline_redis::MemoryBackend;
    ///
    /// futures::executor::block_on(async {
    ///     let (mem, key) = (MemoryBackend::new(), GroupKey::new("jobs", "g"));
    ///     mem.create_group(key.clone(), true).await.unwrap();
    ///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     let reader = mem.reader(); // in memory: the same streams
    ///     let got = reader.read(key, "c".into(), ReadFrom::New(Duration::ZERO), 10).await.unwrap();
    ///     assert_eq!((got.len(), mem.pending("jobs", "g")), (1, 1));
    /// });
    /// ```
    fn reader(&self) -> Arc<dyn Backend>;
}
