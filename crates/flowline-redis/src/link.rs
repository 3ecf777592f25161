//! [`SourceLink`]: what one source shares with the tokens it hands out and
//! with the committer — its backend, its group, tokens settled away from the
//! committer, and its counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{Backend, DeadLetterEntry, GroupKey};
use crate::EntryId;

/// What should happen to a settled entry.
#[derive(Debug)]
pub(crate) enum Settle {
    Ack(EntryId),
    DeadLetter(DeadLetterEntry),
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) read: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) reclaimed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) settled_early: AtomicU64,
    pub(crate) acked: AtomicU64,
    /// Tokens handed to the committer's consumer (taken).
    pub(crate) taken: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Shared by a source, its tokens and the committer.
#[derive(Debug)]
pub(crate) struct SourceLink {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) key: GroupKey,
    pub(crate) dead_stream: Arc<str>,
    /// Entries settled by a stage (filtered, skipped, dead-lettered): the
    /// committer carries them out with its next commit.
    settled: Mutex<Vec<Settle>>,
    pub(crate) counters: Counters,
}

impl SourceLink {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        key: GroupKey,
        dead_stream: Arc<str>,
    ) -> Arc<Self> {
        Arc::new(SourceLink {
            backend,
            key,
            dead_stream,
            settled: Mutex::default(),
            counters: Counters::default(),
        })
    }

    pub(crate) fn settle(&self, how: Settle) {
        Counters::add(&self.counters.settled_early, 1);
        self.settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(how);
    }

    pub(crate) fn take_settled(&self) -> Vec<Settle> {
        std::mem::take(&mut *self.settled.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
