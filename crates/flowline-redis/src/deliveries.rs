//! [`Deliveries`]: a pipeline of [`Delivery`] items whose stages keep or
//! settle every token.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flowline_core::runtime::Runtime;
use flowline_core::BlockingOptions;
use flowline_core::{Pipeline, PipelineError, PipelineHandle, ProducerExt as _, RunReport};
use futures::{Sink, Stream};

use crate::link::SourceLink;
use crate::source::DeliveryStream;
use crate::{AckToken, CommitPolicy, Committer, Delivery, Entry, Stats};

/// What a [`Deliveries::try_map`] or [`Deliveries::try_then`] stage does with an item whose function
/// failed.
///
/// # Examples
///
/// ```
/// use flowline_redis::OnError;
///
/// assert_eq!(OnError::default(), OnError::Stop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnError {
    /// End the run with the error (naming the stage); the entry stays
    /// pending and is delivered again.
    #[default]
    Stop,
    /// Drop the item and ack its entry.
    Skip,
    /// Move the entry to the source's dead-letter stream, with the error as
    /// `reason`, and ack it.
    DeadLetter,
}

/// What a fallible stage passes on: the delivery, the error that stops the
/// run, or nothing for an item whose token `on_error` settled.
#[allow(clippy::type_complexity)]
fn settle_failure<U, E: fmt::Display>(
    on_error: OnError,
    result: Result<U, E>,
    token: AckToken,
) -> Option<Result<Delivery<U>, E>> {
    match result {
        Ok(u) => Some(Ok(Delivery::new(u, token))),
        // The token goes down with the run: its entry stays pending.
        Err(e) if on_error == OnError::Stop => Some(Err(e)),
        Err(_) if on_error == OnError::Skip => {
            token.settle_ack();
            None
        }
        Err(e) => {
            token.settle_dead(&e.to_string());
            None
        }
    }
}

/// A [`Pipeline`] of [`Delivery`] items, from a source
/// ([`source`](crate::source), [`source_with`](crate::source_with)).
///
/// Its stages work on payloads and carry the tokens along: `map`, `then`,
/// `map_concurrent`, `map_blocking`, `boundary` keep each token with its
/// item; `filter`, `filter_map` and `try_map` settle the token of an item
/// they remove; `batch` gives a batch the tokens of all its items. There is
/// no stage that could drop a token (see [`crate::token`] for the design).
/// Finish with [`run`](Self::run) or [`spawn`](Self::spawn): the consumer
/// gets payloads, and a [`Committer`] acks their entries once the consumer
/// has flushed them.
///
/// # Examples
///
/// ```
/// use flowline_redis::{source_with, MemoryBackend};
/// use flowline_core::consumer;
///
/// futures::executor::block_on(async {
///     let mem = MemoryBackend::new();
///     for n in 1..=4 {
///         mem.add_fields("jobs", [("n", n.to_string())]).await.unwrap();
///     }
///     let source = source_with(mem.clone(), "jobs", "g", "c")
///         .stop_when_empty() // a batch job: end once the stream is drained
///         .connect()
///         .await
///         .unwrap();
///     let mut sink = consumer::collect();
///     let report = source
///         .map(|e| e.get_str("n").unwrap().parse::<u32>().unwrap())
///         .filter(|n| n % 2 == 0)
///         .map(|n| n * 10)
///         .run(&mut sink)
///         .await
///         .unwrap();
///     assert_eq!(sink.into_vec(), [20, 40]);
///     assert_eq!(mem.pending("jobs", "g"), 0); // all four acked
///     assert!(flowline_redis::is_balanced(&report)); // read 4 = taken 2 + settled 2 = acked
/// });
/// ```
#[must_use = "pipelines do nothing unless run"]
pub struct Deliveries<S> {
    pipeline: Pipeline<S>,
    links: Vec<Arc<SourceLink>>,
    policy: CommitPolicy,
}

impl<S> fmt::Debug for Deliveries<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliveries")
            .field("pipeline", &self.pipeline)
            .field("sources", &self.links.len())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Deliveries<()> {
    pub(crate) fn from_source(
        stream: DeliveryStream,
        name: String,
        link: Arc<SourceLink>,
    ) -> Deliveries<impl Stream<Item = Delivery<Entry>>> {
        let counts = link.clone();
        let pipeline = stream
            .into_pipeline()
            .named(format!("{name} read"))
            .with_counters(move || crate::stats::published(&counts))
            // Read errors end the run here, naming the stream and group.
            .try_map(|read| read)
            .named(name);
        Deliveries {
            pipeline,
            links: vec![link],
            policy: CommitPolicy::default(),
        }
    }
}

impl<S, T> Deliveries<S>
where
    S: Stream<Item = Delivery<T>>,
{
    fn stage<S2>(self, f: impl FnOnce(Pipeline<S>) -> Pipeline<S2>) -> Deliveries<S2> {
        let Deliveries {
            pipeline,
            links,
            policy,
        } = self;
        Deliveries {
            pipeline: f(pipeline),
            links,
            policy,
        }
    }

    /// Live counts of the sources (read, acked, redelivered, …), to read
    /// while the run is under way; the run's report has them too
    /// ([`source_reports`](crate::source_reports)).
    pub fn stats(&self) -> Stats {
        Stats {
            links: self.links.clone(),
        }
    }

    /// When the committer acks; see [`CommitPolicy`].
    pub fn commit_policy(mut self, policy: CommitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Renames the last stage ([`Pipeline::named`]).
    pub fn named(self, name: impl Into<String>) -> Self {
        self.stage(|p| p.named(name))
    }

    /// Runs on `runtime` ([`Pipeline::on`]).
    pub fn on(self, runtime: impl Runtime) -> Self {
        self.stage(|p| p.on(runtime))
    }

    /// Runs on `runtime`, or runtime-free with `None` ([`Pipeline::on_runtime`]).
    pub fn on_runtime(self, runtime: Option<Arc<dyn Runtime>>) -> Self {
        self.stage(|p| p.on_runtime(runtime))
    }

    /// Maps each payload. Fused.
    pub fn map<U, F>(self, mut f: F) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        F: FnMut(T) -> U,
    {
        self.stage(|p| p.map(move |d: Delivery<T>| d.map(&mut f)))
    }

    /// Keeps the items for which `predicate` holds; acks the others. Fused.
    pub fn filter<F>(self, mut predicate: F) -> Deliveries<impl Stream<Item = Delivery<T>>>
    where
        F: FnMut(&T) -> bool,
    {
        self.stage(|p| {
            p.filter_map(move |d: Delivery<T>| {
                if predicate(d.payload()) {
                    Some(d)
                } else {
                    d.into_parts().1.settle_ack();
                    None
                }
            })
        })
    }

    /// Maps and filters: `None` drops the item and acks its entry. Fused.
    pub fn filter_map<U, F>(self, mut f: F) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        F: FnMut(T) -> Option<U>,
    {
        self.stage(|p| {
            p.filter_map(move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                match f(payload) {
                    Some(u) => Some(Delivery::new(u, token)),
                    None => {
                        token.settle_ack();
                        None
                    }
                }
            })
        })
    }

    /// Calls `f` with each payload, passing the item on. Fused.
    pub fn inspect<F>(self, mut f: F) -> Deliveries<impl Stream<Item = Delivery<T>>>
    where
        F: FnMut(&T),
    {
        self.stage(|p| p.inspect(move |d: &Delivery<T>| f(d.payload())))
    }

    /// Maps each payload through an async function, one at a time. Fused.
    pub fn then<U, Fut, F>(self, mut f: F) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        F: FnMut(T) -> Fut,
        Fut: Future<Output = U>,
    {
        self.stage(|p| {
            p.then(move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                let fut = f(payload);
                async move { Delivery::new(fut.await, token) }
            })
        })
    }

    /// Maps each payload with the fallible `f`; a failure is handled as
    /// `on_error` says ([`OnError`]). Two fused stages: `f` runs in a
    /// `filter_map` that settles skipped and dead-lettered items, and a
    /// `try_map` after it fails the run under [`OnError::Stop`] (name it
    /// with [`named`](Self::named)). A panic in `f` ends the run naming the
    /// first stage; either way the failed entry stays pending.
    pub fn try_map<U, E, F>(
        self,
        on_error: OnError,
        mut f: F,
    ) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        F: FnMut(T) -> Result<U, E>,
        E: fmt::Display + Into<flowline_core::BoxError> + Send + 'static,
        U: Send + 'static,
    {
        self.stage(|p| {
            p.filter_map(move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                settle_failure(on_error, f(payload), token)
            })
            .try_map(|result| result)
        })
    }

    /// The async form of [`try_map`](Self::try_map): maps each payload
    /// through the fallible async function `f`, one at a time, handling a
    /// failure as `on_error` says. Three fused stages: `then`, a
    /// `filter_map` that settles skipped and dead-lettered items, and a
    /// `try_map` that fails the run under [`OnError::Stop`].
    pub fn try_then<U, E, F, Fut>(
        self,
        on_error: OnError,
        mut f: F,
    ) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        F: FnMut(T) -> Fut,
        Fut: Future<Output = Result<U, E>>,
        E: fmt::Display + Into<flowline_core::BoxError> + Send + 'static,
        U: Send + 'static,
    {
        self.stage(|p| {
            p.then(move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                let fut = f(payload);
                async move { settle_failure(on_error, fut.await, token) }
            })
            .filter_map(|kept| kept)
            .try_map(|result| result)
        })
    }

    /// Maps payloads through an async function, up to `limit` at once, in
    /// input order ([`Pipeline::map_concurrent`]).
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    pub fn map_concurrent<U, F, Fut>(
        self,
        limit: usize,
        mut f: F,
    ) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        S: Send + 'static,
        T: Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        U: Send + 'static,
    {
        self.stage(|p| {
            p.map_concurrent(limit, move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                let fut = f(payload);
                async move { Delivery::new(fut.await, token) }
            })
        })
    }

    /// [`map_concurrent`](Self::map_concurrent), emitting results as they
    /// finish ([`Pipeline::map_concurrent_unordered`]).
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    pub fn map_concurrent_unordered<U, F, Fut>(
        self,
        limit: usize,
        mut f: F,
    ) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        S: Send + 'static,
        T: Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        U: Send + 'static,
    {
        self.stage(|p| {
            p.map_concurrent_unordered(limit, move |d: Delivery<T>| {
                let (payload, token) = d.into_parts();
                let fut = f(payload);
                async move { Delivery::new(fut.await, token) }
            })
        })
    }

    /// Maps payloads with a blocking function on worker threads, in order,
    /// with the default [`BlockingOptions`] ([`Pipeline::map_blocking`]).
    pub fn map_blocking<U, F>(self, f: F) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        T: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        self.map_blocking_with(BlockingOptions::new(), f)
    }

    /// [`map_blocking`](Self::map_blocking) with options: parallelism,
    /// unordered output, a shared pool ([`Pipeline::map_blocking_with`]).
    /// Each token rides with its payload whatever the order.
    pub fn map_blocking_with<U, F>(
        self,
        options: BlockingOptions,
        f: F,
    ) -> Deliveries<impl Stream<Item = Delivery<U>>>
    where
        T: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        self.stage(|p| p.map_blocking_with(options, move |d: Delivery<T>| d.map(&f)))
    }

    /// An async boundary of `capacity` items ([`Pipeline::boundary`]).
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn boundary(self, capacity: usize) -> Deliveries<impl Stream<Item = Delivery<T>>>
    where
        S: Send + 'static,
        T: Send + 'static,
    {
        self.stage(|p| p.boundary(capacity))
    }

    /// Groups payloads into batches of up to `max_items`, emitting a partial
    /// one after `max_wait` ([`Pipeline::batch`]); a batch's token holds the
    /// tokens of all its items.
    ///
    /// # Panics
    ///
    /// If `max_items` is 0.
    pub fn batch(
        self,
        max_items: usize,
        max_wait: Duration,
    ) -> Deliveries<impl Stream<Item = Delivery<Vec<T>>>> {
        self.stage(|p| {
            p.batch(max_items, max_wait).map(|items: Vec<Delivery<T>>| {
                let mut payloads = Vec::with_capacity(items.len());
                let token = AckToken::merge(items.into_iter().map(|d| {
                    let (payload, token) = d.into_parts();
                    payloads.push(payload);
                    token
                }));
                Delivery::new(payloads, token)
            })
        })
    }

    /// Interleaves the deliveries of `other` (another source, say) with
    /// these ([`Pipeline::merge`]); the committer acks both.
    pub fn merge<S2>(mut self, other: Deliveries<S2>) -> Deliveries<impl Stream<Item = Delivery<T>>>
    where
        S2: Stream<Item = Delivery<T>>,
    {
        self.links.extend(other.links);
        self.stage(|p| p.merge(other.pipeline))
    }

    /// The committer this pipeline's [`run`](Self::run) would use, for
    /// running [`into_pipeline`](Self::into_pipeline) yourself.
    pub fn committer<C: Sink<T>>(&self, consumer: C) -> Committer<C> {
        Committer::new(consumer, self.links.clone(), self.policy.clone())
    }

    /// The underlying pipeline of deliveries, for stages this type does not
    /// offer.
    ///
    /// # Caveats
    ///
    /// Core stages do not know about tokens: an item a stage drops (a
    /// `filter`, say) leaves its entry pending until it is delivered again
    /// (after `min_idle`, or on the next start). Nothing is lost, but the
    /// work is repeated.
    pub fn into_pipeline(self) -> Pipeline<S> {
        self.pipeline
    }

    /// Runs into `consumer` through a [`Committer`]: the consumer gets the
    /// payloads, the entries are acked once it has flushed them. Only a
    /// successful run commits its last items; a failed or aborted one
    /// leaves them pending.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::run`]; a failed commit fails the run at the consumer
    /// stage with [`CommitError::Commit`](crate::CommitError::Commit).
    pub async fn run<C>(self, consumer: C) -> Result<RunReport, PipelineError>
    where
        C: Sink<T>,
        C::Error: StdError + Send + Sync + 'static,
    {
        let committer = self.committer(consumer);
        self.pipeline.run(committer).await
    }

    /// Starts the run as a task ([`Pipeline::spawn`]); shut it down with
    /// [`PipelineHandle::shutdown`], which commits what the consumer took.
    pub fn spawn<C>(self, consumer: C) -> PipelineHandle
    where
        S: Send + 'static,
        T: Send + 'static,
        C: Sink<T> + Send + 'static,
        C::Error: StdError + Send + Sync + 'static,
    {
        let committer = self.committer(consumer);
        self.pipeline.spawn(committer)
    }
}
