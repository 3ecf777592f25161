//! [`MemoryBackend`]: streams and consumer groups in this process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::Event;
use flowline_core::time;
use futures::FutureExt as _;

use super::{Backend, BackendFuture, DeadLetterEntry, GroupKey, ReadFrom, Received};
use crate::{Entry, EntryId, ErrorKind, Fields};

/// Streams and consumer groups kept in memory, with Redis's semantics:
/// a pending entries list per group, delivery counts, idle times,
/// `XAUTOCLAIM`-style claims, and `WRONGTYPE`/`NOGROUP` errors.
///
/// For tests, and for one machine with no server. Cloning gives another
/// handle to the same streams.
///
/// # Examples
///
/// ```
/// use flowline_redis::MemoryBackend;
///
/// let mem = MemoryBackend::new();
/// futures::executor::block_on(mem.add_fields("jobs", [("n", "1")])).unwrap();
/// assert_eq!(mem.len("jobs"), 1);
/// assert_eq!(mem.pending("jobs", "workers"), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: Mutex<HashMap<String, Key>>,
    /// Notified on every add, for blocked reads.
    added: Event,
    /// The `COUNT` of every group read, in order.
    read_counts: Mutex<Vec<usize>>,
}

#[derive(Debug)]
enum Key {
    Stream(MemStream),
    /// A key of another type, for `WRONGTYPE`.
    Other,
}

#[derive(Debug, Default)]
struct MemStream {
    entries: BTreeMap<EntryId, Fields>,
    last: EntryId,
    groups: HashMap<String, Group>,
}

#[derive(Debug, Default)]
struct Group {
    last_delivered: EntryId,
    pel: BTreeMap<EntryId, Pending>,
}

#[derive(Debug)]
struct Pending {
    consumer: Arc<str>,
    deliveries: u64,
    at: Instant,
}

impl MemoryBackend {
    /// An empty set of streams.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> MutexGuard<'_, HashMap<String, Key>> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one entry to `stream` (creating it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WrongType`] if the key holds another type.
    pub async fn add_fields<K: Into<String>, V: AsRef<[u8]>>(
        &self,
        stream: &str,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Result<EntryId, crate::Error> {
        let fields = Entry::new(EntryId::default(), fields).fields;
        let ids = self.add(stream.into(), vec![fields].into(), None).await?;
        Ok(ids[0])
    }

    /// Makes `key` hold a value of another type than a stream.
    pub fn set_other_type(&self, key: &str) {
        self.keys().insert(key.to_owned(), Key::Other);
    }

    /// Number of entries in `stream` (`XLEN`).
    pub fn len(&self, stream: &str) -> usize {
        match self.keys().get(stream) {
            Some(Key::Stream(s)) => s.entries.len(),
            _ => 0,
        }
    }

    /// Whether `stream` has no entries.
    pub fn is_empty(&self, stream: &str) -> bool {
        self.len(stream) == 0
    }

    /// The entries of `stream`, in order (`XRANGE - +`).
    pub fn entries(&self, stream: &str) -> Vec<Entry> {
        match self.keys().get(stream) {
            Some(Key::Stream(s)) => s
                .entries
                .iter()
                .map(|(id, f)| Entry {
                    id: *id,
                    fields: f.clone(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Number of entries pending in `group` (`XPENDING` summary).
    pub fn pending(&self, stream: &str, group: &str) -> usize {
        self.with_group(stream, group, |g| g.pel.len()).unwrap_or(0)
    }

    /// The pending entries of `group`: id, consumer, delivery count.
    pub fn pending_entries(&self, stream: &str, group: &str) -> Vec<(EntryId, String, u64)> {
        self.with_group(stream, group, |g| {
            g.pel
                .iter()
                .map(|(id, p)| (*id, p.consumer.to_string(), p.deliveries))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The `COUNT` each group read (`XREADGROUP`) asked for, in order: to
    /// check how far ahead a source reads.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    /// use flowline_core::consumer;
    ///
    /// let mem = MemoryBackend::new();
    /// futures::executor::block_on(async {
    ///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     let source = source_with(mem.clone(), "jobs", "g", "c")
    ///         .max_count(10)
    ///         .stop_when_empty()
    ///         .build();
    ///     source.run(consumer::discard()).await.unwrap();
    /// });
    /// // Own pending entries first, then new ones until a read comes back empty.
    /// assert_eq!(mem.read_counts(), [10, 10, 10]);
    /// ```
    pub fn read_counts(&self) -> Vec<usize> {
        self.inner
            .read_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn with_group<R>(&self, stream: &str, group: &str, f: impl FnOnce(&Group) -> R) -> Option<R> {
        match self.keys().get(stream) {
            Some(Key::Stream(s)) => s.groups.get(group).map(f),
            _ => None,
        }
    }
}

fn stream_mut<'a>(
    keys: &'a mut HashMap<String, Key>,
    key: &GroupKey,
    op: &'static str,
) -> Result<&'a mut MemStream, crate::Error> {
    match keys.get_mut(&*key.stream) {
        Some(Key::Stream(s)) => Ok(s),
        Some(Key::Other) => Err(key.error(
            ErrorKind::WrongType,
            op,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        )),
        None => Err(no_group(key, op)),
    }
}

fn no_group(key: &GroupKey, op: &'static str) -> crate::Error {
    key.error(
        ErrorKind::NoGroup,
        op,
        "NOGROUP No such key or consumer group",
    )
}

fn group_mut<'a>(
    keys: &'a mut HashMap<String, Key>,
    key: &GroupKey,
    op: &'static str,
) -> Result<(&'a BTreeMap<EntryId, Fields>, &'a mut Group), crate::Error> {
    let s = stream_mut(keys, key, op)?;
    let group = s
        .groups
        .get_mut(&*key.group)
        .ok_or_else(|| no_group(key, op))?;
    Ok((&s.entries, group))
}

fn received(entries: &BTreeMap<EntryId, Fields>, id: EntryId, deliveries: u64) -> Received {
    Received {
        entry: Entry {
            id,
            // A deleted entry comes back without fields, as in Redis.
            fields: entries.get(&id).cloned().unwrap_or_default(),
        },
        deliveries,
    }
}

impl MemoryBackend {
    /// One non-blocking attempt at a read.
    fn try_read(
        &self,
        key: &GroupKey,
        consumer: &Arc<str>,
        from: ReadFrom,
        count: usize,
    ) -> Result<Vec<Received>, crate::Error> {
        let mut keys = self.keys();
        let (entries, group) = group_mut(&mut keys, key, "XREADGROUP")?;
        let now = time::now();
        let mut out = Vec::new();
        match from {
            ReadFrom::PendingAfter(after) => {
                for (id, p) in group.pel.range_mut(after.next()..) {
                    if out.len() == count {
                        break;
                    }
                    if p.consumer == *consumer {
                        p.deliveries += 1;
                        p.at = now;
                        out.push(received(entries, *id, p.deliveries));
                    }
                }
            }
            ReadFrom::New(_) => {
                for (id, _) in entries.range(group.last_delivered.next()..).take(count) {
                    group.pel.insert(
                        *id,
                        Pending {
                            consumer: consumer.clone(),
                            deliveries: 1,
                            at: now,
                        },
                    );
                    group.last_delivered = *id;
                    out.push(received(entries, *id, 1));
                }
            }
        }
        Ok(out)
    }
}

impl Backend for MemoryBackend {
    fn create_group(&self, key: GroupKey, create: bool) -> BackendFuture<()> {
        let mut keys = self.keys();
        let result = match keys.get_mut(&*key.stream) {
            Some(Key::Other) => Err(key.error(
                ErrorKind::WrongType,
                "XGROUP CREATE",
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            )),
            Some(Key::Stream(s)) if s.groups.contains_key(&*key.group) => Ok(()),
            Some(Key::Stream(s)) if create => {
                s.groups.insert(key.group.to_string(), Group::default());
                Ok(())
            }
            None if create => {
                let mut s = MemStream::default();
                s.groups.insert(key.group.to_string(), Group::default());
                keys.insert(key.stream.to_string(), Key::Stream(s));
                Ok(())
            }
            _ => Err(no_group(&key, "XGROUP CREATE")),
        };
        futures::future::ready(result).boxed()
    }

    fn read(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        from: ReadFrom,
        count: usize,
    ) -> BackendFuture<Vec<Received>> {
        self.inner
            .read_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(count);
        let this = self.clone();
        async move {
            let block = match from {
                ReadFrom::New(block) => block,
                ReadFrom::PendingAfter(_) => Duration::ZERO,
            };
            // The pipeline's clock: a virtual one sees the `BLOCK`.
            let deadline = time::now() + block;
            loop {
                let listener = this.inner.added.listen();
                let got = this.try_read(&key, &consumer, from, count)?;
                if !got.is_empty() || time::now() >= deadline {
                    return Ok(got);
                }
                futures::future::select(listener, time::sleep_until(deadline)).await;
            }
        }
        .boxed()
    }

    fn claim(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        min_idle: Duration,
        start: EntryId,
        count: usize,
    ) -> BackendFuture<(EntryId, Vec<Received>)> {
        let mut keys = self.keys();
        let result = group_mut(&mut keys, &key, "XAUTOCLAIM").map(|(entries, group)| {
            let now = time::now();
            let mut out = Vec::new();
            let mut cursor = EntryId::default();
            for (id, p) in group.pel.range_mut(start..) {
                if out.len() == count {
                    cursor = *id;
                    break;
                }
                if now.saturating_duration_since(p.at) >= min_idle {
                    p.consumer = consumer.clone();
                    p.deliveries += 1;
                    p.at = now;
                    out.push(received(entries, *id, p.deliveries));
                }
            }
            (cursor, out)
        });
        futures::future::ready(result).boxed()
    }

    fn ack(&self, key: GroupKey, ids: Vec<EntryId>) -> BackendFuture<u64> {
        let mut keys = self.keys();
        let result = match group_mut(&mut keys, &key, "XACK") {
            Ok((_, group)) => Ok(ids
                .iter()
                .filter(|id| group.pel.remove(id).is_some())
                .count() as u64),
            // Redis acks nothing, without an error, when the group is gone.
            Err(e) if e.kind() == ErrorKind::NoGroup => Ok(0),
            Err(e) => Err(e),
        };
        futures::future::ready(result).boxed()
    }

    fn dead_letter(
        &self,
        key: GroupKey,
        dead_stream: Arc<str>,
        letters: Vec<DeadLetterEntry>,
    ) -> BackendFuture<()> {
        let mut rows = Vec::with_capacity(letters.len());
        {
            let mut keys = self.keys();
            let (entries, group) = match group_mut(&mut keys, &key, "XACK") {
                Ok(found) => found,
                Err(e) => return futures::future::ready(Err(e)).boxed(),
            };
            for letter in letters {
                let mut fields = letter
                    .fields
                    .or_else(|| entries.get(&letter.id).cloned())
                    .unwrap_or_default();
                fields.push(("dead_letter_of".into(), letter.id.to_string().into_bytes()));
                fields.push((
                    "deliveries".into(),
                    letter.deliveries.to_string().into_bytes(),
                ));
                fields.push(("reason".into(), letter.reason.into_bytes()));
                group.pel.remove(&letter.id);
                rows.push(fields);
            }
        }
        let add = self.add(dead_stream, rows.into(), None);
        async move { add.await.map(drop) }.boxed()
    }

    fn add(
        &self,
        stream: Arc<str>,
        entries: Arc<Vec<Fields>>,
        max_len: Option<usize>,
    ) -> BackendFuture<Vec<EntryId>> {
        let result = {
            let mut keys = self.keys();
            let key = keys
                .entry(stream.to_string())
                .or_insert_with(|| Key::Stream(MemStream::default()));
            match key {
                Key::Other => Err(crate::Error::new(
                    ErrorKind::WrongType,
                    &stream,
                    None,
                    "XADD",
                    "WRONGTYPE Operation against a key holding the wrong kind of value",
                )),
                Key::Stream(s) => {
                    let now_ms = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    let ids = entries
                        .iter()
                        .cloned()
                        .map(|fields| {
                            let id = if now_ms > s.last.ms {
                                EntryId::new(now_ms, 0)
                            } else {
                                s.last.next()
                            };
                            s.last = id;
                            s.entries.insert(id, fields);
                            id
                        })
                        .collect();
                    if let Some(max) = max_len {
                        while s.entries.len() > max {
                            s.entries.pop_first();
                        }
                    }
                    Ok(ids)
                }
            }
        };
        self.inner.added.notify(usize::MAX);
        futures::future::ready(result).boxed()
    }

    fn reader(&self) -> Arc<dyn Backend> {
        Arc::new(self.clone())
    }
}
