//! [`Committer`]: the consumer side of a delivery pipeline — hands payloads
//! to your consumer and acks their entries once it has flushed them.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flowline_core::time;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, Sink, StreamExt as _};
use pin_project_lite::pin_project;

use crate::error::retrying;
use crate::link::{Counters, Settle, SourceLink};
use crate::{AckToken, Delivery, Error};

/// When a [`Committer`] acks, and how long it retries acks while the server
/// is unreachable.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_redis::CommitPolicy;
///
/// let policy = CommitPolicy::default().max_batch(500).max_interval(Duration::from_millis(20));
/// assert_eq!(policy.batch(), 500);
/// ```
#[derive(Debug, Clone)]
pub struct CommitPolicy {
    max_batch: usize,
    max_interval: Duration,
    max_in_flight: usize,
    retry_for: Duration,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            max_batch: 1000,
            max_interval: Duration::from_millis(50),
            max_in_flight: 4,
            retry_for: Duration::from_secs(30),
        }
    }
}

impl CommitPolicy {
    /// Commit once this many taken items await their ack (default 1000).
    /// Also committed: whenever the pipeline runs dry (the run flushes its
    /// consumer), and at the end of a successful run.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn max_batch(mut self, n: usize) -> Self {
        assert!(n > 0, "flowline-redis: max_batch must be at least 1, got 0");
        self.max_batch = n;
        self
    }

    /// Commit when the oldest taken item has waited this long, checked as
    /// the next item arrives (default 50 ms), on the pipeline's clock
    /// ([`flowline_core::time::now`]: a test kit's virtual clock too).
    /// While items arrive without the committer ever waiting, the clock is
    /// read every 64 items, so a commit may come that many items late.
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }

    /// How many commits may be in flight at once before the committer
    /// stops taking items (default 4).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "flowline-redis: max_in_flight must be at least 1, got 0"
        );
        self.max_in_flight = n;
        self
    }

    /// How long to retry a commit while the server is unreachable before
    /// the run fails (default 30 s).
    pub fn retry_for(mut self, period: Duration) -> Self {
        self.retry_for = period;
        self
    }

    /// The batch size set with [`max_batch`](Self::max_batch).
    pub fn batch(&self) -> usize {
        self.max_batch
    }
}

/// A [`Committer`]'s error: its consumer failed, or a commit did.
#[derive(Debug)]
pub enum CommitError<E> {
    /// The wrapped consumer returned an error.
    Consumer(E),
    /// Acking (or dead-lettering) failed.
    Commit(Error),
}

impl<E: fmt::Display> fmt::Display for CommitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Consumer(e) => write!(f, "consumer failed: {e}"),
            CommitError::Commit(e) => write!(f, "commit failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CommitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommitError::Consumer(e) => Some(e),
            CommitError::Commit(e) => Some(e),
        }
    }
}

type Commit = BoxFuture<'static, Result<(), Error>>;

/// How many items a committer takes between two reads of the clock while
/// it never waits.
const CLOCK_EVERY: usize = 64;

pin_project! {
    /// A consumer of [`Delivery`] items: hands each payload to the wrapped
    /// consumer and keeps its token; once that consumer has flushed, acks
    /// the entries (one pipelined `XACK` per stream), along with entries
    /// stages settled (filtered, skipped, dead-lettered).
    ///
    /// Built by [`Deliveries::run`](crate::Deliveries::run) and friends, or
    /// by [`Deliveries::committer`](crate::Deliveries::committer).
    ///
    /// # At least once
    ///
    /// An entry is acked only after the consumer's `poll_flush` (or
    /// `poll_close`) returned `Ready(Ok)` with its item taken. A committer
    /// dropped without closing — a failed, aborted or panicked run, since
    /// only a successful run closes its consumer — acks nothing more:
    /// what it held stays pending and is delivered again.
    #[must_use = "sinks do nothing unless used"]
    pub struct Committer<C> {
        #[pin]
        inner: C,
        policy: CommitPolicy,
        links: Vec<Arc<SourceLink>>,
        taken: Vec<AckToken>,
        oldest: Option<Instant>,
        // Whether `poll_ready` returned `Pending` (or an error) since it
        // last returned `Ready`: time may have passed.
        waited: bool,
        commits: FuturesUnordered<Commit>,
        inner_closed: bool,
    }
}

impl<C> fmt::Debug for Committer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committer")
            .field("policy", &self.policy)
            .field("taken", &self.taken.len())
            .field("commits_in_flight", &self.commits.len())
            .finish_non_exhaustive()
    }
}

impl<C> Committer<C> {
    pub(crate) fn new(inner: C, links: Vec<Arc<SourceLink>>, policy: CommitPolicy) -> Self {
        Committer {
            inner,
            policy,
            links,
            taken: Vec::new(),
            oldest: None,
            waited: false,
            commits: FuturesUnordered::new(),
            inner_closed: false,
        }
    }

    /// The wrapped consumer.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }
}

/// Starts the commits for `taken` and for what stages settled.
fn start_commits(
    taken: &mut Vec<AckToken>,
    links: &[Arc<SourceLink>],
    commits: &FuturesUnordered<Commit>,
    retry_for: Duration,
) {
    let mut per_link: Vec<(Arc<SourceLink>, Vec<crate::EntryId>)> = Vec::new();
    for claim in taken.drain(..).flat_map(AckToken::into_claims) {
        match per_link
            .iter_mut()
            .find(|(l, _)| Arc::ptr_eq(l, &claim.link))
        {
            Some((_, ids)) => ids.push(claim.id),
            None => per_link.push((claim.link, vec![claim.id])),
        }
    }
    for link in links {
        let mut dead = Vec::new();
        let mut acks = Vec::new();
        for settled in link.take_settled() {
            match settled {
                Settle::Ack(id) => acks.push(id),
                Settle::DeadLetter(letter) => dead.push(letter),
            }
        }
        if !acks.is_empty() {
            match per_link.iter_mut().find(|(l, _)| Arc::ptr_eq(l, link)) {
                Some((_, ids)) => ids.extend(acks),
                None => per_link.push((link.clone(), acks)),
            }
        }
        if !dead.is_empty() {
            let link = link.clone();
            commits.push(
                async move {
                    let n = dead.len() as u64;
                    retrying(retry_for, || {
                        link.backend.dead_letter(
                            link.key.clone(),
                            link.dead_stream.clone(),
                            dead.clone(),
                        )
                    })
                    .await?;
                    Counters::add(&link.counters.dead_lettered, n);
                    Counters::add(&link.counters.acked, n);
                    Ok(())
                }
                .boxed(),
            );
        }
    }
    for (link, ids) in per_link {
        commits.push(
            async move {
                let n = retrying(retry_for, || {
                    link.backend.ack(link.key.clone(), ids.clone())
                })
                .await?;
                Counters::add(&link.counters.acked, n);
                Ok(())
            }
            .boxed(),
        );
    }
}

impl<C> Committer<C> {
    /// Polls the commits in flight until at most `max` remain.
    fn poll_commits<E>(
        commits: &mut FuturesUnordered<Commit>,
        max: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), CommitError<E>>> {
        while commits.len() > max {
            if let Some(Err(e)) = futures::ready!(commits.poll_next_unpin(cx)) {
                return Poll::Ready(Err(CommitError::Commit(e)));
            }
        }
        // Finished commits are collected without waiting for the others.
        while let Poll::Ready(Some(done)) = commits.poll_next_unpin(cx) {
            done.map_err(CommitError::Commit)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T, C: Sink<T>> Sink<Delivery<T>> for Committer<C> {
    type Error = CommitError<C::Error>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut this = self.project();
        // The clock is read only when time may have passed: after this
        // committer waited, or every `CLOCK_EVERY` items of a stream that
        // never waits (a clock read per item costs as much as the rest of
        // the committer).
        let check_clock = *this.waited || this.taken.len().is_multiple_of(CLOCK_EVERY);
        let due = this.taken.len() >= this.policy.max_batch
            || (check_clock
                && this
                    .oldest
                    .is_some_and(|t| time::now() - t >= this.policy.max_interval));
        *this.waited = true;
        if due {
            futures::ready!(this.inner.as_mut().poll_flush(cx)).map_err(CommitError::Consumer)?;
            start_commits(this.taken, this.links, this.commits, this.policy.retry_for);
            *this.oldest = None;
        }
        futures::ready!(Self::poll_commits(
            this.commits,
            this.policy.max_in_flight,
            cx
        ))?;
        let ready = futures::ready!(this.inner.poll_ready(cx));
        *this.waited = false;
        Poll::Ready(ready.map_err(CommitError::Consumer))
    }

    fn start_send(self: Pin<&mut Self>, item: Delivery<T>) -> Result<(), Self::Error> {
        let this = self.project();
        let (payload, token) = item.into_parts();
        this.inner
            .start_send(payload)
            .map_err(CommitError::Consumer)?;
        for link in token.links() {
            Counters::add(&link.counters.taken, 1);
        }
        this.oldest.get_or_insert_with(time::now);
        this.taken.push(token);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut this = self.project();
        futures::ready!(this.inner.as_mut().poll_flush(cx)).map_err(CommitError::Consumer)?;
        start_commits(this.taken, this.links, this.commits, this.policy.retry_for);
        *this.oldest = None;
        Self::poll_commits(this.commits, 0, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut this = self.project();
        if !*this.inner_closed {
            futures::ready!(this.inner.as_mut().poll_close(cx)).map_err(CommitError::Consumer)?;
            *this.inner_closed = true;
            start_commits(this.taken, this.links, this.commits, this.policy.retry_for);
            *this.oldest = None;
        }
        Self::poll_commits(this.commits, 0, cx)
    }
}
