//! The pipeline builder: [`Pipeline`] and its stage methods. Terminal
//! methods (`terminal.rs`) hand a pipeline to the run engine (`crate::run`);
//! stage adapters live in `crate::stage`.
//!
//! Inside: `mod.rs` (the builder, fused stages, `boundary`, its `Stream`
//! impl), `fallible.rs` (`try_map`, `try_then`, `on_error`), `local.rs`
//! (`boundary_local`, for upstreams that are not `Send`), `terminal.rs`
//! (`run`, `run_collect`, …, `spawn`), `observe.rs` (`monitor`,
//! `on_progress`, `describe`), `try_stream.rs` (`into_try_stream`).

mod fallible;
mod local;
mod observe;
mod terminal;
mod try_stream;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::Stream;
use pin_project_lite::pin_project;

use crate::queue::{Batched, KeepPrefix, PollBatch};
use crate::run::{Core, Drivable, StageInfo, StageKind};
use crate::runtime::Runtime;
use crate::stage::{Boundary, Filter, FilterMap, Inspect, Map, Then};

pub use local::SpawnLocalError;
pub use try_stream::TryPipeline;

pin_project! {
    /// A pipeline under construction: a [`Stream`] plus the record of its
    /// stages and the tasks its boundaries need.
    ///
    /// Build one from a producer (see [`crate::producer`]), chain stages, then
    /// finish it with a terminal method ([`run`](Self::run),
    /// [`run_for_each`](Self::run_for_each), [`run_collect`](Self::run_collect), …) that returns
    /// a [`RunReport`](super::RunReport).
    ///
    /// Stage methods are inherent, so they win over `futures::StreamExt`'s
    /// methods of the same name when both are in scope. Fused stages (`map`,
    /// `filter`, …) run in the task that polls them, at the cost of a call;
    /// [`boundary`](Self::boundary) puts everything upstream in a task of its own.
    ///
    /// A `Pipeline` is itself a [`Stream`] (and so a
    /// [`Producer`](crate::Producer)): polling it polls its boundary tasks too
    /// when it has no runtime. Dropping it cancels every task it spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(1..=6u64)
    ///         .map(|x| x * 10)
    ///         .filter(|x| *x != 30)
    ///         .boundary(4)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [10, 20, 40, 50, 60]);
    /// assert_eq!(report.delivered(), 5);
    /// ```
    #[must_use = "pipelines do nothing unless run or polled"]
    pub struct Pipeline<S> {
        #[pin]
        pub(crate) stream: S,
        pub(crate) core: Core,
        // How the stream hands over a whole batch, when every stage since
        // the last boundary or source can (see `crate::queue::PollBatch`).
        pub(crate) batch: Option<Batched<S>>,
    }
}

impl<S> fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.core.ctx.report(Default::default()).stages)
            .field("runtime", &self.core.ctx.runtime_name())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Pipeline<S> {
    pub(crate) fn from_parts(stream: S, core: Core) -> Self {
        Pipeline {
            stream,
            core,
            batch: None,
        }
    }

    /// [`from_parts`](Self::from_parts) for a stream that can hand over
    /// whole batches.
    pub(crate) fn from_batched(stream: S, core: Core, batch: PollBatch<S>) -> Self {
        let counted_by = core.last_stage();
        Pipeline {
            stream,
            core,
            batch: Some(Batched::new(batch, counted_by)),
        }
    }

    /// Adds a fused stage named `<prefix>#<index>` wrapping the stream.
    pub(crate) fn fuse<T>(
        mut self,
        prefix: &str,
        wrap: impl FnOnce(S, Arc<StageInfo>) -> T,
    ) -> Pipeline<T> {
        let info = self.core.add_stage(prefix, StageKind::Fused);
        Pipeline {
            stream: wrap(self.stream, info),
            core: self.core,
            batch: None,
        }
    }

    /// Marks the stream as one that hands over whole batches with `batch`,
    /// its items counted by its last stage.
    fn batched(mut self, batch: PollBatch<S>) -> Self {
        self.batch = Some(Batched::new(batch, self.core.last_stage()));
        self
    }

    /// Marks the stream as one that hands over whole batches with `batch`,
    /// its items counted where `upstream`'s were (a one-to-one stage).
    fn passed_on<U>(mut self, upstream: &Batched<U>, batch: PollBatch<S>) -> Self {
        self.batch = Some(upstream.passed_to(batch));
        self
    }

    /// Renames the last stage, for reports and errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (_, report) = futures::executor::block_on(
    ///     producer::iter(0..3).named("numbers").map(|x| x + 1).named("plus one").run_collect(),
    /// )
    /// .unwrap();
    /// assert!(report.stage("numbers").is_some());
    /// assert_eq!(report.stage("plus one").unwrap().items_out, 3);
    /// ```
    pub fn named(self, name: impl Into<String>) -> Self {
        self.core.last_stage().rename(name.into());
        self
    }

    /// Publishes `counters` in the last stage's report entry
    /// ([`StageReport::counters`](crate::StageReport::counters), shown as
    /// columns of the report table): named counts the stage's own code
    /// keeps, such as a connector's acks. Read each time a report is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (_, report) = futures::executor::block_on(
    ///     producer::iter(0..3).named("numbers").with_counters(|| vec![("batches", 1)]).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(report.stage("numbers").unwrap().counter("batches"), Some(1));
    /// ```
    pub fn with_counters(self, counters: impl crate::Counters) -> Self {
        self.core
            .last_stage()
            .add_counters(std::sync::Arc::new(counters));
        self
    }

    /// Names the consumer stage this pipeline will be run into (by
    /// [`run`](Self::run), [`spawn`](Self::spawn), [`run_collect`](Self::run_collect),
    /// …), for reports and errors; unnamed it is `consumer#<index>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{consumer, producer, PipelineError};
    ///
    /// let failing = consumer::from_fn(|x: u32| async move {
    ///     if x == 2 { Err(std::io::Error::other("disk full")) } else { Ok(()) }
    /// });
    /// let err = futures::executor::block_on(
    ///     producer::iter(0..5u32).consumer_named("archive").run(failing),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.stage(), "archive");
    /// ```
    pub fn consumer_named(mut self, name: impl Into<String>) -> Self {
        self.core.consumer_name = Some(name.into());
        self
    }

    /// Runs this pipeline's tasks, timers and blocking work on `runtime`
    /// instead of inline.
    ///
    /// Without a runtime a pipeline is one future: its boundary tasks are
    /// polled inside it (concurrently, on one thread), timers come from
    /// `async-io` and blocking work from the `blocking` crate. With a runtime
    /// each boundary's upstream becomes a task of its own, which a
    /// multi-threaded executor can run in parallel.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, runtime::RuntimeFree};
    ///
    /// let (sum, _) = futures::executor::block_on(
    ///     producer::iter(1..=4u32).boundary(2).on(RuntimeFree).run_fold(0, |a, x| a + x),
    /// )
    /// .unwrap();
    /// assert_eq!(sum, 10);
    /// ```
    pub fn on(self, runtime: impl Runtime) -> Self {
        self.on_runtime(Some(Arc::new(runtime)))
    }

    /// Like [`on`](Self::on) with an optional shared runtime: `None` runs the
    /// pipeline runtime-free. Pairs with `flowline::default_runtime()`, which
    /// picks the runtime the enabled cargo features provide.
    pub fn on_runtime(self, runtime: Option<Arc<dyn Runtime>>) -> Self {
        self.core.ctx.set_runtime(runtime);
        self
    }

    /// Erases the stream's type (boxing it), keeping the stages: for
    /// pipelines built in a loop or returned from functions. Adds no stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let mut pipeline = producer::iter(0..4u32).boxed();
    /// for _ in 0..3 {
    ///     pipeline = pipeline.map(|x| x + 1).boxed();
    /// }
    /// let (out, report) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    /// assert_eq!(out, [3, 4, 5, 6]);
    /// assert_eq!(report.stages.len(), 5);
    /// ```
    pub fn boxed<'a>(self) -> Pipeline<futures::stream::BoxStream<'a, S::Item>>
    where
        S: Send + 'a,
    {
        Pipeline::from_parts(Box::pin(self.stream), self.core)
    }

    /// Maps each item with `f`. Fused: runs in the polling task.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, _) = futures::executor::block_on(producer::iter(1..=3).map(|x| x * 2).run_collect()).unwrap();
    /// assert_eq!(out, [2, 4, 6]);
    /// ```
    pub fn map<U, F>(self, f: F) -> Pipeline<Map<S, F>>
    where
        F: FnMut(S::Item) -> U,
    {
        let batch = self.batch.clone();
        let p = self.fuse("map", |s, info| Map::new(s, f, info, batch.clone()));
        match &batch {
            Some(upstream) => p.passed_on(upstream, Map::poll_batch),
            None => p,
        }
    }

    /// Keeps the items for which `predicate` returns `true`. Fused.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, _) = futures::executor::block_on(producer::iter(1..=6).filter(|x| x % 3 == 0).run_collect()).unwrap();
    /// assert_eq!(out, [3, 6]);
    /// ```
    pub fn filter<F>(self, predicate: F) -> Pipeline<Filter<S, F>>
    where
        F: FnMut(&S::Item) -> bool,
    {
        let batch = self.batch.clone();
        let batched = batch.is_some();
        let p = self.fuse("filter", |s, info| Filter::new(s, predicate, info, batch));
        if batched {
            p.batched(Filter::poll_batch)
        } else {
            p
        }
    }

    /// Maps and filters in one step: `None` drops the item. Fused.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let input = producer::iter(["1", "x", "3"]);
    /// let (out, _) = futures::executor::block_on(input.filter_map(|s| s.parse::<u8>().ok()).run_collect()).unwrap();
    /// assert_eq!(out, [1, 3]);
    /// ```
    pub fn filter_map<U, F>(self, f: F) -> Pipeline<FilterMap<S, F>>
    where
        F: FnMut(S::Item) -> Option<U>,
    {
        let batch = self.batch.clone();
        let batched = batch.is_some();
        let p = self.fuse("filter_map", |s, info| FilterMap::new(s, f, info, batch));
        if batched {
            p.batched(FilterMap::poll_batch)
        } else {
            p
        }
    }

    /// Maps each item through an async function, one item at a time, in order.
    /// Fused: the future is polled by the pipeline's task.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=3).then(|x| async move { x + 100 }).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [101, 102, 103]);
    /// ```
    pub fn then<U, Fut, F>(self, f: F) -> Pipeline<Then<S, F, Fut>>
    where
        F: FnMut(S::Item) -> Fut,
        Fut: Future<Output = U>,
    {
        self.fuse("then", |s, info| Then::new(s, f, info))
    }

    /// Calls `f` with a reference to each item, passing the item on. Fused.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let mut seen = Vec::new();
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=3).inspect(|x| seen.push(*x)).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(seen, out);
    /// ```
    pub fn inspect<F>(self, f: F) -> Pipeline<Inspect<S, F>>
    where
        F: FnMut(&S::Item),
    {
        let batch = self.batch.clone();
        let p = self.fuse("inspect", |s, info| Inspect::new(s, f, info, batch.clone()));
        match &batch {
            Some(upstream) => p.passed_on(upstream, Inspect::poll_batch),
            None => p,
        }
    }

    /// An async boundary: everything upstream runs as a task of its own,
    /// joined to downstream by a bounded queue of `capacity` items.
    ///
    /// Items cross in adaptive micro-batches: upstream sends what it has as
    /// soon as it would wait, so a trickle crosses item by item with no added
    /// latency, while a busy pipeline pays the queue's synchronisation once
    /// per batch. Batches hold up to `max(1, capacity / 4)` items (at most
    /// 2048); an upstream that never waits (CPU-bound work fused before the
    /// boundary) still hands a starving downstream its items within about a
    /// millisecond. Backpressure: the queue holds at most `capacity` items
    /// (queued batches plus the one being filled), so upstream never gets
    /// more than `capacity` items plus one batch (the one downstream is
    /// taking items from) ahead of a stalled downstream; once the queue is
    /// full, upstream sleeps until downstream has drained it to half, so a
    /// producer that outruns its consumer is woken once per `capacity / 2`
    /// items. Memory is bounded the same way whatever the producer's rhythm:
    /// a batch holds only its items' memory, so a trickle of one-item batches
    /// allocates no more item slots than `capacity`.
    ///
    /// With a runtime ([`on`](Self::on)) the upstream task is spawned on it on
    /// the first poll; without one it is polled inside this pipeline.
    /// Upstream and items must be `Send`; for an `Rc` or a `RefCell` of app
    /// state use [`boundary_local`](Self::boundary_local).
    ///
    /// # Performance
    ///
    /// A batch costs one hand-off between executor threads (a wake-up when
    /// the other side sleeps), so throughput grows with the batch size,
    /// which is a quarter of `capacity`. For a busy pipeline pick a capacity
    /// in the thousands: in `flowline-bench` W1 (three boundaries, 2 cores) a
    /// capacity of 8192 moved items at about 3–4 ns each, 1024 at about
    /// 20–40.
    ///
    /// When every stage since the source or the previous boundary is a
    /// `map`, `filter`, `filter_map` or `inspect`, the upstream task moves whole batches
    /// through them (a `map` transforms a batch at once, the queue hands its
    /// batches over whole) instead of polling each stage once per item;
    /// after any other stage it moves items one by one.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: a boundary needs room for at least one item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(0..1000u32).map(|x| x + 1).boundary(64).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out.len(), 1000);
    /// assert_eq!(report.delivered(), 1000);
    /// ```
    #[track_caller]
    pub fn boundary(mut self, capacity: usize) -> Pipeline<Boundary<S::Item>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
    {
        if capacity == 0 {
            crate::rejection::reject(format_args!(
                "boundary capacity must be at least 1, got 0; \
                 pass the number of items the queue may hold, e.g. .boundary(64)"
            ));
        }
        let info = self.core.add_stage("boundary", StageKind::Boundary);
        let (stream, task) = Boundary::new(
            self.stream,
            self.batch.map(|b| b.poll),
            capacity,
            info,
            self.core.ctx.clone(),
        );
        self.core.add_task(task);
        Pipeline::from_batched(stream, self.core, Boundary::poll_batch)
    }
}

/// A pipeline read as a plain stream yields its items; its boundary tasks
/// are driven by whoever polls it when it has no runtime.
///
/// A failure ends the stream early: the items before it come out, then
/// `None`, with no error to tell it from the end (a panic in a fused stage
/// unwinds into the poller). To see failures, read it with
/// [`into_try_stream`](Pipeline::into_try_stream), or run it with a
/// terminal method.
impl<S: Stream> Drivable for Pipeline<S> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(self: Pin<&mut Self>) -> &mut Core {
        self.project().core
    }
}

impl<S: Stream> Pipeline<S> {
    /// [`poll_next`](Stream::poll_next) a batch at a time, for a stream that
    /// hands over batches (`batch` is set): appends at most `max` items to
    /// `out` as [`PollBatch`] says, driving the boundary tasks and ending at
    /// a halt just as `poll_next` does.
    pub(crate) fn poll_batch_driven(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut Vec<S::Item>,
        max: usize,
    ) -> Poll<bool> {
        let batch = self
            .batch
            .as_ref()
            .expect("flowline: a batch asked of a pipeline that moves items one by one")
            .poll;
        // What the stages passed on before a failure is delivered.
        let out = &mut KeepPrefix(out);
        self.poll_driven(cx, false, |stream, cx| batch(stream, cx, out, max))
    }

    /// Polls the stream with `poll`, driving the run's tasks and polling
    /// again when it would wait. Tasks are driven only when the stream runs
    /// dry: while it yields, there is nothing they need to do for it, and
    /// polling them per item would cost more than the item. A failed run's
    /// queues wait forever rather than end, so that no stage mistakes a
    /// failure for a finished stream; to a reader of this pipeline the run
    /// ends (`halted`) once it halted (see `into_try_stream`).
    #[inline(always)]
    fn poll_driven<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        halted: R,
        mut poll: impl FnMut(Pin<&mut S>, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let mut this = self.project();
        let polled = match poll(this.stream.as_mut(), cx) {
            Poll::Pending if this.core.needs_drive => {
                this.core.drive(cx);
                poll(this.stream, cx)
            }
            Poll::Pending => Poll::Pending,
            ready => return ready,
        };
        match polled {
            Poll::Pending => {
                let lifecycle = &this.core.ctx.lifecycle;
                lifecycle.register_run_waker(cx);
                if lifecycle.is_halted() {
                    Poll::Ready(halted)
                } else {
                    Poll::Pending
                }
            }
            ready => ready,
        }
    }
}

impl<S: Stream> Stream for Pipeline<S> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_driven(cx, None, |stream, cx| stream.poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}
