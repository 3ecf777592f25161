use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt as _};
use futures::Stream;
use pin_project_lite::pin_project;

use super::concurrent::{concurrent_stage, ConcurrentOutput, Lanes};
use crate::run::{Pipeline, StageInfo, StageKind};

/// Rejects a zero concurrency limit with a message naming the stage;
/// `rest` is the method's other arguments, as the suggested call spells them.
#[track_caller]
pub(crate) fn check_limit(limit: usize, method: &str, rest: &str) {
    if limit == 0 {
        crate::rejection::reject(format_args!(
            "{method} limit must be at least 1, got 0; \
             pass how many futures may run at once, e.g. .{method}(16, {rest})"
        ));
    }
}

pin_project! {
    /// Stream for [`Pipeline::map_concurrent`]: results in input order.
    #[must_use = "streams do nothing unless polled"]
    pub struct MapConcurrent<T> {
        #[pin]
        queue: ConcurrentOutput<T>,
    }
}

impl<T> fmt::Debug for MapConcurrent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapConcurrent").field(&self.queue).finish()
    }
}

impl<T> Stream for MapConcurrent<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.project().queue.poll_next(cx)
    }
}

/// The futures a [`MapLanes`] has in flight, and the order their results
/// come out in: `FuturesOrdered` (the order they were started) or
/// `FuturesUnordered` (as they finish).
pub(crate) trait Running<Fut: Future>:
    Stream<Item = Fut::Output> + Unpin + Send + 'static
{
    /// An empty set.
    fn empty() -> Self;

    /// Adds `fut` to the set.
    fn add(&mut self, fut: Fut);

    /// How many futures are in flight.
    fn in_flight(&self) -> usize;

    /// Whether none is.
    fn is_idle(&self) -> bool;
}

impl<Fut: Future + Send + 'static> Running<Fut> for FuturesOrdered<Fut>
where
    Fut::Output: Send,
{
    fn empty() -> Self {
        FuturesOrdered::new()
    }

    fn add(&mut self, fut: Fut) {
        self.push_back(fut);
    }

    fn in_flight(&self) -> usize {
        self.len()
    }

    fn is_idle(&self) -> bool {
        self.is_empty()
    }
}

impl<Fut: Future + Send + 'static> Running<Fut> for FuturesUnordered<Fut> {
    fn empty() -> Self {
        FuturesUnordered::new()
    }

    fn add(&mut self, fut: Fut) {
        self.push(fut);
    }

    fn in_flight(&self) -> usize {
        self.len()
    }

    fn is_idle(&self) -> bool {
        self.is_empty()
    }
}

/// Futures of `f` run concurrently, up to `limit` at once, results taken in
/// the order `R` gives them.
pub(crate) struct MapLanes<F, R> {
    f: F,
    running: R,
    limit: usize,
}

impl<F, R> MapLanes<F, R> {
    /// Lanes for `f`, nothing in flight yet.
    pub(crate) fn new<Fut>(f: F, limit: usize) -> Self
    where
        Fut: Future,
        R: Running<Fut>,
    {
        MapLanes {
            f,
            running: R::empty(),
            limit,
        }
    }
}

impl<T, F, Fut, R> Lanes<T> for MapLanes<F, R>
where
    T: Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    R: Running<Fut>,
{
    type Out = Fut::Output;

    fn has_room(&self, ready: usize) -> bool {
        // Finished results have room of their own, so a downstream that is
        // a moment late to take a batch does not cut concurrency.
        self.running.in_flight() < self.limit && ready < self.limit
    }

    fn start(&mut self, item: T, info: &StageInfo) {
        let fut = info.guard(|| (self.f)(item));
        self.running.add(fut);
    }

    fn poll_done(&mut self, cx: &mut Context<'_>, info: &StageInfo) -> Poll<Option<Fut::Output>> {
        info.guard(|| self.running.poll_next_unpin(cx))
    }

    fn is_idle(&self) -> bool {
        self.running.is_idle()
    }
}

impl<S: Stream> Pipeline<S> {
    /// Maps each item through the async function `f`, running up to `limit`
    /// futures at once, and emits the results **in input order**.
    ///
    /// The stage runs eagerly as a task of its own (spawned on the pipeline's
    /// runtime, or polled inside the pipeline when it has none): it pulls
    /// upstream, keeps up to `limit` futures in flight and hands results on
    /// through a small queue, in adaptive micro-batches. In-flight futures
    /// keep making progress while downstream is busy — unlike
    /// `futures::StreamExt::buffered`, whose futures stall while its consumer
    /// awaits something else.
    ///
    /// At most `limit` futures are in flight (a result that finishes early
    /// waits among them for the ones started before it); at most `limit`
    /// more finished results wait to be handed on, plus one batch queued for
    /// downstream. When those are full the stage stops pulling upstream, so a
    /// slow consumer slows the producer and memory stays bounded.
    ///
    /// Because it runs as a task, `upstream`, `f` and its futures must be
    /// `Send + 'static`. Without a runtime the task is polled inside the
    /// pipeline's own future: run the pipeline with a terminal method
    /// ([`run_for_each`](Self::run_for_each), [`run`](Self::run), …), which polls it
    /// while the consumer works; a pipeline polled as a plain `Stream` by code
    /// that awaits other things between items needs a runtime for that. Use [`map_concurrent_unordered`](Self::map_concurrent_unordered)
    /// when order does not matter, [`map_concurrent_by_key`](Self::map_concurrent_by_key)
    /// when it matters only per key.
    ///
    /// # Panics
    ///
    /// If `limit` is 0. A panic in `f` or in one of its futures does not
    /// unwind into the caller: the run ends with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::{producer, runtime::{RuntimeExt, RuntimeFree}};
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=8u64)
    ///         .map_concurrent(4, |x| async move {
    ///             // later items finish first, yet come out in input order
    ///             RuntimeFree.sleep(Duration::from_millis(10 - x)).await;
    ///             x * 10
    ///         })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [10, 20, 30, 40, 50, 60, 70, 80]);
    /// ```
    #[track_caller]
    pub fn map_concurrent<F, Fut>(
        mut self,
        limit: usize,
        f: F,
    ) -> Pipeline<MapConcurrent<Fut::Output>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
        F: FnMut(S::Item) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        check_limit(limit, "map_concurrent", "f");
        let info = self.core.add_stage("map_concurrent", StageKind::Concurrent);
        // Futures run concurrently, results taken in the order they were started.
        let lanes = MapLanes::<_, FuturesOrdered<Fut>>::new(f, limit);
        let (queue, task) = concurrent_stage(self.stream, lanes, info, self.core.ctx.clone());
        self.core.add_task(task);
        Pipeline::from_parts(MapConcurrent { queue }, self.core)
    }
}
