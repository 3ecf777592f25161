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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// The stream's key.
    pub stream: Arc<str>,
    /// The consumer group.
    pub group: Arc<str>,
}

impl GroupKey {
    /// The key of `group` on `stream`.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The entry.
    pub entry: Entry,
    /// Times delivered, this one included.
    pub deliveries: u64,
}

/// An entry moved to a dead-letter stream: the original fields plus
/// `dead_letter_of`, `deliveries` and `reason`.
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
    fn create_group(&self, key: GroupKey, create: bool) -> BackendFuture<()>;

    /// `XREADGROUP GROUP <group> <consumer> COUNT <count> [BLOCK] STREAMS <stream> <from>`.
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
    fn claim(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        min_idle: Duration,
        start: EntryId,
        count: usize,
    ) -> BackendFuture<(EntryId, Vec<Received>)>;

    /// `XACK`: returns how many of `ids` were pending.
    fn ack(&self, key: GroupKey, ids: Vec<EntryId>) -> BackendFuture<u64>;

    /// Adds each letter to `dead_stream` and acks it in `key`, in one
    /// pipeline.
    fn dead_letter(
        &self,
        key: GroupKey,
        dead_stream: Arc<str>,
        letters: Vec<DeadLetterEntry>,
    ) -> BackendFuture<()>;

    /// `XADD` each entry (pipelined), trimming to about `max_len`. Shared,
    /// so a retry after a lost connection needs no copy.
    fn add(
        &self,
        stream: Arc<str>,
        entries: Arc<Vec<Fields>>,
        max_len: Option<usize>,
    ) -> BackendFuture<Vec<EntryId>>;

    /// A handle for one source's blocking reads: Redis gives them a
    /// connection of their own, so a `BLOCK` does not hold up acks.
    fn reader(&self) -> Arc<dyn Backend>;
}
