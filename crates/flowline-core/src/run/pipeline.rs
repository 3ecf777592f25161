use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt as _};
use pin_project_lite::pin_project;

use super::{Flag, RunContext, StageInfo, StageKind};
use crate::runtime::{JoinHandle, Runtime, RuntimeExt as _};
use crate::stage::{Boundary, Filter, FilterMap, Inspect, Map, Then};
use crate::time::InRuntime;

/// The tasks a pipeline's boundaries need, and how they are being run.
enum Tasks {
    /// Not started yet: started on the first poll.
    Idle(Vec<BoxFuture<'static, ()>>),
    /// No runtime: polled by the pipeline itself, inside its own poll.
    Inline(FuturesUnordered<BoxFuture<'static, ()>>),
    /// Spawned on a runtime; dropping the handles cancels the tasks.
    Spawned(Vec<JoinHandle<()>>),
}

pub(crate) struct Core {
    pub(crate) ctx: Arc<RunContext>,
    /// Index of the last stage: the input of the next one.
    last: usize,
    tasks: Tasks,
    /// Whether [`poll_tasks`](Self::poll_tasks) has work: tasks to start, or
    /// inline tasks to poll. Kept as a flag because it is read per item.
    needs_drive: bool,
    /// Fired when the run's stream has ended: stage tasks still running then
    /// feed nobody (a `zip` that stopped reading one side, say), so they stop
    /// instead of waiting for room that will never come.
    ended: Arc<Flag>,
    /// End signals of pipelines absorbed into this one (fan-in).
    linked_ends: Vec<Arc<Flag>>,
    /// The consumer stage's name, if the user gave one.
    consumer_name: Option<String>,
}

impl Core {
    pub(crate) fn new(source_name: &str) -> (Self, Arc<StageInfo>) {
        Self::with_source_kind(source_name, StageKind::Source)
    }

    /// Like [`new`](Self::new), for a first stage of another kind (a bridge).
    pub(crate) fn with_source_kind(source_name: &str, kind: StageKind) -> (Self, Arc<StageInfo>) {
        let ctx = Arc::new(RunContext::default());
        let (last, info) = ctx.add_stage(source_name, kind, Vec::new());
        let core = Core {
            ctx,
            last,
            tasks: Tasks::Idle(Vec::new()),
            needs_drive: false,
            ended: Arc::default(),
            linked_ends: Vec::new(),
            consumer_name: None,
        };
        (core, info)
    }

    pub(crate) fn add_stage(&mut self, prefix: &str, kind: StageKind) -> Arc<StageInfo> {
        let (index, info) = self.ctx.add_stage(prefix, kind, vec![self.last]);
        self.last = index;
        info
    }

    /// The core of one branch of a fan-out: its own context (see
    /// [`RunContext::branch_of`]) whose last stage is `last`, and `task`, the
    /// shared driver of the upstream.
    pub(crate) fn branch(ctx: Arc<RunContext>, last: usize, task: BoxFuture<'static, ()>) -> Self {
        Core {
            ctx,
            last,
            tasks: Tasks::Idle(vec![task]),
            needs_drive: true,
            ended: Arc::default(),
            linked_ends: Vec::new(),
            consumer_name: None,
        }
    }

    /// Registers the consumer stage, under the name given with
    /// [`Pipeline::consumer_named`] if any.
    pub(crate) fn add_consumer(&mut self) -> Arc<StageInfo> {
        let info = self.add_stage("consumer", StageKind::Consumer);
        if let Some(name) = self.consumer_name.take() {
            info.rename(name);
        }
        info
    }

    /// Index of the last stage.
    pub(crate) fn last_index(&self) -> usize {
        self.last
    }

    /// Adds a stage fed by the last stage and by the stages `others`
    /// (indices in this pipeline, as returned by [`absorb`](Self::absorb)).
    pub(crate) fn add_joining_stage(
        &mut self,
        prefix: &str,
        kind: StageKind,
        others: &[usize],
    ) -> Arc<StageInfo> {
        let mut inputs = vec![self.last];
        inputs.extend_from_slice(others);
        let (index, info) = self.ctx.add_stage(prefix, kind, inputs);
        self.last = index;
        info
    }

    /// Takes over `other` (fan-in): its stages join this pipeline's stage list,
    /// its context forwards errors and runtime choice to this one's, and its
    /// tasks become this pipeline's. Returns the index `other`'s last stage has
    /// here.
    pub(crate) fn absorb(&mut self, other: Core) -> usize {
        let map = self.ctx.absorb(&other.ctx);
        let last = map(other.last);
        // `other`'s tasks keep their own end signal (its stage tasks are
        // wrapped in it, its lasting tasks are not); ending this run fires it.
        let mut other = other;
        self.linked_ends.push(other.ended.clone());
        self.linked_ends.extend(mem::take(&mut other.linked_ends));
        match mem::replace(&mut other.tasks, Tasks::Idle(Vec::new())) {
            Tasks::Idle(tasks) => tasks.into_iter().for_each(|t| self.add_lasting_task(t)),
            Tasks::Inline(mut tasks) => {
                self.add_lasting_task(Box::pin(
                    async move { while tasks.next().await.is_some() {} },
                ))
            }
            Tasks::Spawned(handles) => self.add_lasting_task(Box::pin(async move {
                for handle in handles {
                    let _ = handle.await;
                }
            })),
        }
        last
    }

    pub(crate) fn last_stage(&self) -> Arc<StageInfo> {
        self.ctx.stage(self.last)
    }

    /// Adds a stage task: it runs until it finishes or the run's stream has
    /// ended, whichever comes first (see [`end_tasks`](Self::end_tasks)).
    pub(crate) fn add_task(&mut self, task: BoxFuture<'static, ()>) {
        let ended = self.ended.clone();
        self.add_lasting_task(Box::pin(async move {
            let ended = ended.wait();
            futures::pin_mut!(ended);
            futures::future::select(task, ended).await;
        }));
    }

    /// Tells the stage tasks that the run's stream has ended: those still
    /// running stop at their next poll; lasting tasks go on.
    pub(crate) fn end_tasks(&self) {
        self.ended.fire();
        self.linked_ends.iter().for_each(|end| {
            end.fire();
        });
    }

    /// Adds a task that runs to completion even after the run's stream has
    /// ended (the progress reporter, which reports once more at the end).
    pub(crate) fn add_lasting_task(&mut self, task: BoxFuture<'static, ()>) {
        self.needs_drive |= !matches!(self.tasks, Tasks::Spawned(_));
        match &mut self.tasks {
            Tasks::Idle(tasks) => tasks.push(task),
            Tasks::Inline(tasks) => tasks.push(task),
            Tasks::Spawned(handles) => match self.ctx.executor() {
                Some(rt) => handles.push(rt.spawn(InRuntime::new(task, rt.clone()))),
                None => unreachable!("spawned tasks imply a runtime"),
            },
        }
    }

    /// Starts the tasks if needed and, without a runtime, polls them.
    #[inline]
    pub(crate) fn poll_tasks(&mut self, cx: &mut Context<'_>) {
        if self.needs_drive {
            self.drive(cx);
        }
    }

    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Tasks::Idle(tasks) = &mut self.tasks {
            let tasks = mem::take(tasks);
            self.tasks = match self.ctx.executor() {
                Some(rt) => Tasks::Spawned(
                    tasks
                        .into_iter()
                        .map(|t| rt.spawn(InRuntime::new(t, rt.clone())))
                        .collect(),
                ),
                None => Tasks::Inline(tasks.into_iter().collect()),
            };
            // Spawned tasks run by themselves: nothing more to do per poll.
            self.needs_drive = matches!(self.tasks, Tasks::Inline(_));
        }
        if let Tasks::Inline(tasks) = &mut self.tasks {
            while let Poll::Ready(Some(())) = tasks.poll_next_unpin(cx) {}
        }
    }

    /// Cancels every task: inline ones are dropped now, spawned ones when
    /// their executor next polls them ([`poll_finish`](Self::poll_finish)
    /// then waits for that).
    pub(crate) fn cancel_tasks(&mut self) {
        match &mut self.tasks {
            Tasks::Idle(tasks) => tasks.clear(),
            Tasks::Inline(tasks) => tasks.clear(),
            Tasks::Spawned(handles) => handles.iter().for_each(JoinHandle::abort),
        }
    }

    /// Waits until every task has finished.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.tasks {
            Tasks::Idle(_) => Poll::Ready(()),
            Tasks::Inline(tasks) => {
                while futures::ready!(tasks.poll_next_unpin(cx)).is_some() {}
                Poll::Ready(())
            }
            Tasks::Spawned(handles) => {
                while let Some(handle) = handles.last_mut() {
                    // A task's own failures are recorded in the context; a join
                    // error here can only be cancellation by runtime shutdown.
                    let _ = futures::ready!(Pin::new(handle).poll(cx));
                    handles.pop();
                }
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Core {
    /// A core dropped with spawned tasks still running (a fan-out's upstream,
    /// dropped inside the fan-out task) cancels them and leaves their handles
    /// to its run, which waits for them before it returns.
    fn drop(&mut self) {
        if let Tasks::Spawned(handles) = &mut self.tasks {
            let running: Vec<_> = handles.drain(..).filter(|h| !h.is_finished()).collect();
            if !running.is_empty() {
                running.iter().for_each(JoinHandle::abort);
                self.ctx.adopt_orphans(running);
            }
        }
    }
}

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
        Pipeline { stream, core }
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
        }
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
        Pipeline {
            stream: Box::pin(self.stream),
            core: self.core,
        }
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
        self.fuse("map", |s, info| Map::new(s, f, info))
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
        self.fuse("filter", |s, info| Filter::new(s, predicate, info))
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
        self.fuse("filter_map", |s, info| FilterMap::new(s, f, info))
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
        self.fuse("inspect", |s, info| Inspect::new(s, f, info))
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
    ///
    /// # Performance
    ///
    /// A batch costs one hand-off between executor threads (a wake-up when
    /// the other side sleeps), so throughput grows with the batch size,
    /// which is a quarter of `capacity`. For a busy pipeline pick a capacity
    /// in the thousands: in `flowline-bench` W1 (three boundaries, 2 cores) a
    /// capacity of 8192 moved items at about 6 ns each, 1024 at about 33.
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
        let (stream, task) = Boundary::new(self.stream, capacity, info, self.core.ctx.clone());
        self.core.add_task(task);
        Pipeline {
            stream,
            core: self.core,
        }
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
impl<S: Stream> Stream for Pipeline<S> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        // Tasks are driven only when the stream runs dry: while it yields,
        // there is nothing they need to do for it, and polling them per item
        // would cost more than the item.
        let poll = match this.stream.as_mut().poll_next(cx) {
            Poll::Pending if this.core.needs_drive => {
                this.core.drive(cx);
                this.stream.poll_next(cx)
            }
            Poll::Pending => Poll::Pending,
            ready => return ready,
        };
        match poll {
            // A failed run's queues wait forever rather than end, so that no
            // stage mistakes a failure for a finished stream; to a plain
            // stream reader the run ends here (see `into_try_stream`).
            Poll::Pending => {
                let lifecycle = &this.core.ctx.lifecycle;
                lifecycle.register_run_waker(cx);
                if lifecycle.is_halted() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
            ready => ready,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}
