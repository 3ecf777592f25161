//! Ack tokens and the items that carry them: [`AckToken`], [`Delivery`].
//!
//! # Why tokens cannot get lost
//!
//! A [`Delivery`] is an item read from a stream plus the [`AckToken`] of
//! the entry (or, after [`batch`](crate::Deliveries::batch), entries) it
//! came from. Neither is `Clone`, neither has a public constructor, and no
//! public method settles a token: the only ways an entry gets acked are the
//! committer (after its consumer has taken the item and flushed) and the
//! stages of [`Deliveries`](crate::Deliveries), which settle the token of
//! every item they remove (a filtered item, a skipped or dead-lettered
//! failure). `Deliveries` offers only stages that keep or settle tokens, so
//! a pipeline that could drop one does not compile; a token dropped anyway
//! (a panic, a failed run, [`Deliveries::into_pipeline`](crate::Deliveries::into_pipeline)
//! and a stage that discards items) leaves its entry pending, and it is
//! delivered again later: at least once, never lost.
//!
//! What does not compile:
//!
//! ```compile_fail
//! # use flowline_redis::{Delivery, Entry};
//! fn twice(d: Delivery<Entry>) -> (Delivery<Entry>, Delivery<Entry>) {
//!     (d.clone(), d) // a delivery is not Clone: no entry is acked twice
//! }
//! ```
//!
//! ```compile_fail
//! # use flowline_redis::{AckToken, Delivery};
//! fn forge<T>(payload: T, token: AckToken) -> Delivery<T> {
//!     Delivery::new(payload, token) // only sources make deliveries
//! }
//! ```
//!
//! ```compile_fail
//! # use flowline_redis::{Delivery, Entry};
//! fn unwrap(d: Delivery<Entry>) -> Entry {
//!     d.into_parts().0 // no public way to separate a payload from its token
//! }
//! ```
//!
//! ```compile_fail
//! # use flowline_redis::{source_with, MemoryBackend};
//! // `Deliveries` has no stage that drops items without settling them:
//! // no `take`, `skip`, `sample`, `debounce`, `buffer(…, Overflow::DropOldest)`.
//! let _ = source_with(MemoryBackend::new(), "s", "g", "c").build().take(3);
//! ```

use std::fmt;
use std::sync::Arc;

use crate::backend::DeadLetterEntry;
use crate::link::{Settle, SourceLink};
use crate::EntryId;

/// One entry a token stands for.
pub(crate) struct Claim {
    pub(crate) link: Arc<SourceLink>,
    pub(crate) id: EntryId,
    pub(crate) deliveries: u64,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}#{}",
            self.link.key.stream, self.id, self.deliveries
        )
    }
}

#[derive(Debug)]
enum Claims {
    One(Claim),
    Many(Vec<Claim>),
}

/// The right to settle (ack or dead-letter) one or more stream entries.
///
/// Not `Clone` and not constructible outside this crate; settled only by
/// the committer or by a [`Deliveries`](crate::Deliveries) stage that
/// removes its item. Dropped unsettled, its entries stay pending and are
/// delivered again (to this worker when it restarts, or to another one
/// that reclaims them).
///
/// # Examples
///
/// ```
/// use flowline_redis::{Delivery, Entry};
///
/// fn describe(d: &Delivery<Entry>) -> String {
///     let t = d.token();
///     format!("{} entries, first {}, delivered {} times", t.len(), t.ids().next().unwrap(), t.deliveries())
/// }
/// # let _ = describe;
/// ```
#[must_use = "a dropped token leaves its entry pending: it will be delivered again"]
pub struct AckToken {
    claims: Claims,
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.claims, f)
    }
}

impl AckToken {
    pub(crate) fn new(claim: Claim) -> Self {
        AckToken {
            claims: Claims::One(claim),
        }
    }

    fn claims(&self) -> &[Claim] {
        match &self.claims {
            Claims::One(c) => std::slice::from_ref(c),
            Claims::Many(cs) => cs,
        }
    }

    pub(crate) fn into_claims(self) -> impl Iterator<Item = Claim> {
        let (one, many) = match self.claims {
            Claims::One(c) => (Some(c), Vec::new()),
            Claims::Many(cs) => (None, cs),
        };
        one.into_iter().chain(many)
    }

    /// Number of entries this token settles (1, or a batch's size).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     mem.add_fields("jobs", [("n", "1")]).await.unwrap();
    ///     mem.add_fields("jobs", [("n", "2")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let batches = source.batch(10, Duration::from_secs(1)).into_pipeline().run_collect();
    ///     let (batches, _) = batches.await.unwrap();
    ///     assert_eq!(batches[0].token().len(), 2); // one token for the whole batch
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.claims().len()
    }

    /// Whether the token stands for no entry (an empty batch).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     assert!(!deliveries[0].token().is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.claims().is_empty()
    }

    /// The ids of its entries.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     let id = mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     assert_eq!(deliveries[0].token().ids().collect::<Vec<_>>(), [id]);
    /// });
    /// ```
    pub fn ids(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.claims().iter().map(|c| c.id)
    }

    /// The highest delivery count among its entries (1 on a first delivery).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let read = || source_with(mem.clone(), "jobs", "g", "c").stop_when_empty().build();
    ///     let (first, _) = read().into_pipeline().run_collect().await.unwrap();
    ///     assert_eq!(first[0].token().deliveries(), 1);
    ///     drop(first); // never committed: the entry stays pending
    ///     let (again, _) = read().into_pipeline().run_collect().await.unwrap();
    ///     assert_eq!(again[0].token().deliveries(), 2);
    /// });
    /// ```
    pub fn deliveries(&self) -> u64 {
        self.claims()
            .iter()
            .map(|c| c.deliveries)
            .max()
            .unwrap_or(0)
    }

    /// One token for the entries of all `tokens`.
    pub(crate) fn merge(tokens: impl IntoIterator<Item = AckToken>) -> AckToken {
        AckToken {
            claims: Claims::Many(tokens.into_iter().flat_map(AckToken::into_claims).collect()),
        }
    }

    pub(crate) fn links(&self) -> impl Iterator<Item = &Arc<SourceLink>> {
        self.claims().iter().map(|c| &c.link)
    }

    /// Settles the entries as processed: the committer acks them at its
    /// next commit (for an item a stage removed).
    pub(crate) fn settle_ack(self) {
        for c in self.into_claims() {
            c.link.settle(Settle::Ack(c.id));
        }
    }

    /// Settles the entries by moving them to their dead-letter stream, at
    /// the committer's next commit.
    pub(crate) fn settle_dead(self, reason: &str) {
        for c in self.into_claims() {
            c.link.settle(Settle::DeadLetter(DeadLetterEntry {
                id: c.id,
                fields: None,
                deliveries: c.deliveries,
                reason: reason.to_owned(),
            }));
        }
    }
}

/// An item read from a stream, with the [`AckToken`] of its entry.
///
/// Transform the payload with the stages of [`Deliveries`](crate::Deliveries);
/// the committer hands the payload to your consumer and acks the entry.
///
/// # Examples
///
/// ```
/// use flowline_redis::{Delivery, Entry};
///
/// fn number(d: &Delivery<Entry>) -> Option<u64> {
///     d.payload().get_str("n")?.parse().ok()
/// }
/// # let _ = number;
/// ```
#[derive(Debug)]
#[must_use = "a dropped delivery leaves its entry pending: it will be delivered again"]
pub struct Delivery<T> {
    payload: T,
    token: AckToken,
}

impl<T> Delivery<T> {
    pub(crate) fn new(payload: T, token: AckToken) -> Self {
        Delivery { payload, token }
    }

    /// The item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     let id = mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     assert_eq!(deliveries[0].payload().get_str("n"), Some("7"));
    ///     assert_eq!(deliveries[0].payload().id, id);
    /// });
    /// ```
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The item, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     let mut d = deliveries.into_iter().next().unwrap();
    ///     d.payload_mut().fields.push(("seen".into(), b"yes".to_vec()));
    ///     assert_eq!(d.payload().get_str("seen"), Some("yes"));
    /// });
    /// ```
    pub fn payload_mut(&mut self) -> &mut T {
        &mut self.payload
    }

    /// The token of the entries this item came from.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     let id = mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     let token = deliveries[0].token();
    ///     assert_eq!((token.len(), token.ids().next(), token.deliveries()), (1, Some(id), 1));
    /// });
    /// ```
    pub fn token(&self) -> &AckToken {
        &self.token
    }

    /// The same delivery with the payload mapped by `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_redis::{source_with, MemoryBackend};
    ///
    /// futures::executor::block_on(async {
    ///     let mem = MemoryBackend::new();
    ///     let id = mem.add_fields("jobs", [("n", "7")]).await.unwrap();
    ///     let source = source_with(mem, "jobs", "g", "c").stop_when_empty().build();
    ///     let (deliveries, _) = source.into_pipeline().run_collect().await.unwrap();
    ///     let d = deliveries.into_iter().next().unwrap();
    ///     let n = d.map(|e| e.get_str("n").unwrap().parse::<u32>().unwrap());
    ///     assert_eq!(*n.payload(), 7);
    ///     assert_eq!(n.token().ids().next(), Some(id)); // the token goes along
    /// });
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Delivery<U> {
        Delivery {
            payload: f(self.payload),
            token: self.token,
        }
    }

    pub(crate) fn into_parts(self) -> (T, AckToken) {
        (self.payload, self.token)
    }
}
