//! [`Pipeline::boundary_local`] and [`Pipeline::buffer_local`]: the async
//! boundary and the buffer for upstreams and items that are not `Send`
//! (the concurrent stages' `_local` twins are in
//! `stage/concurrency/local.rs`); [`Pipeline::spawn_local`], `spawn` for
//! pipelines that are not `Send`, and its [`SpawnLocalError`].

use std::fmt;

use futures::{Sink, Stream};

use super::Pipeline;
use crate::report::Monitor;
use crate::run::{BoxError, Join, PipelineHandle, StageKind};
use crate::runtime::local_task;
use crate::stage::overflow::check_capacity;
use crate::stage::{BoundaryLocal, Overflow};

/// Returned by [`Pipeline::spawn_local`] when there is no local executor on
/// this thread to run the pipeline on.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use flowline_core::{consumer, producer};
///
/// // Runtime-free: nothing to spawn on.
/// let err = producer::iter((0..3u32).map(Rc::new))
///     .on_runtime(None)
///     .spawn_local(consumer::discard())
///     .unwrap_err();
/// assert!(err.to_string().contains("run_local"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnLocalError {
    runtime: &'static str,
}

impl fmt::Display for SpawnLocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flowline: spawn_local found no local executor on this thread (runtime: {}); \
             call it inside `SmolRuntime::run_local` (smol's LocalExecutor) or \
             `TokioRuntime::run_local` (tokio's LocalSet), or await a terminal method \
             (`run`, `run_collect`, ...) on this thread instead",
            self.runtime
        )
    }
}

impl std::error::Error for SpawnLocalError {}

impl<S: Stream> Pipeline<S> {
    /// [`boundary`](Self::boundary) for upstreams and items that are not
    /// `Send` (an `Rc`, a closure holding a `RefCell` of app state):
    /// everything upstream runs as a task of its own on this thread, joined
    /// to downstream by a bounded queue of `capacity` items, with the same
    /// batching, backpressure and outcome as `boundary`.
    ///
    /// Where the upstream task runs:
    ///
    /// - runtime-free (`futures::executor::block_on`, `.on_runtime(None)`):
    ///   polled inside the run's future, as `boundary`'s task is;
    /// - on a runtime that can spawn locally on this thread
    ///   ([`Runtime::spawn_local_boxed`](crate::runtime::Runtime::spawn_local_boxed)):
    ///   a task of its own there — smol's `LocalExecutor` inside
    ///   `SmolRuntime::run_local`, tokio's `LocalSet` inside
    ///   `TokioRuntime::run_local`;
    /// - on any other runtime: polled inside the run's future, while the
    ///   pipeline's `Send` tasks still go to the runtime.
    ///
    /// The pipeline this returns is not `Send`: run it with a terminal
    /// method (`run`, `run_collect`, …) and await it on this thread. `spawn`,
    /// `boxed`, `boundary`, `buffer` and `map_concurrent*` after it (use the
    /// `_local` ones), `map_concurrent_by_key`, fan-out (`broadcast`,
    /// `balance`, `partition`) and the blocking stages need `Send` and do not
    /// compile; fused and timed stages, fan-in and `on_progress` work.
    ///
    /// Why a method of its own rather than `boundary` accepting both: Rust
    /// cannot choose an implementation by whether a type is `Send`, and a
    /// `boundary` that always took the local path would make every pipeline
    /// `!Send`, so none could be spawned.
    ///
    /// # Rejections
    ///
    /// A `!Send` upstream before a plain `boundary` does not compile (the
    /// error names the type that "cannot be sent between threads safely"):
    ///
    /// ```compile_fail
    /// use std::rc::Rc;
    /// use flowline_core::producer;
    ///
    /// let _ = producer::iter(0..3u32).map(Rc::new).boundary(4); // use boundary_local
    /// ```
    ///
    /// nor does spawning a pipeline with a local boundary (await a terminal
    /// method on this thread instead):
    ///
    /// ```compile_fail
    /// use std::rc::Rc;
    /// use flowline_core::{consumer, producer};
    ///
    /// let _ = producer::iter(0..3u32).map(Rc::new).boundary_local(4).map(|x| *x)
    ///     .spawn(consumer::discard());
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is 0, as `boundary`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use flowline_core::producer;
    ///
    /// let seen = Rc::new(RefCell::new(Vec::new())); // app state, not `Send`
    /// let log = seen.clone();
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(1..=4u32)
    ///         .map(Rc::new)
    ///         .inspect(move |x| log.borrow_mut().push(**x))
    ///         .boundary_local(2)
    ///         .map(|x| *x * 10)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [10, 20, 30, 40]);
    /// assert_eq!(*seen.borrow(), [1, 2, 3, 4]);
    /// assert_eq!(report.stage("boundary#3").unwrap().items_out, 4);
    /// ```
    #[track_caller]
    pub fn boundary_local(mut self, capacity: usize) -> Pipeline<BoundaryLocal<S::Item>>
    where
        S: 'static,
        S::Item: 'static,
    {
        if capacity == 0 {
            crate::rejection::reject(format_args!(
                "boundary_local capacity must be at least 1, got 0; \
                 pass the number of items the queue may hold, e.g. .boundary_local(64)"
            ));
        }
        let info = self.core.add_stage("boundary", StageKind::Boundary);
        let poll_batch = self.batch.map(|b| b.poll);
        let ctx = self.core.ctx.clone();
        let (stream, task) = BoundaryLocal::new(self.stream, poll_batch, capacity, info, ctx);
        self.core.add_local_task(task);
        Pipeline::from_batched(stream, self.core, BoundaryLocal::poll_batch)
    }

    /// [`buffer`](Self::buffer) for upstreams and items that are not `Send`:
    /// a [`boundary_local`](Self::boundary_local) whose queue of `capacity`
    /// items applies `overflow` when it is full. Runs where
    /// `boundary_local`'s task runs, with the same counts as `buffer`.
    ///
    /// # Errors
    ///
    /// As `buffer`: with [`Overflow::Fail`], the run ends with
    /// [`PipelineError::Failed`](crate::PipelineError::Failed) naming this
    /// stage.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0, as `buffer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use flowline_core::{producer, Overflow};
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(0..10u32)
    ///         .map(Rc::new)
    ///         .buffer_local(4, Overflow::Backpressure)
    ///         .map(|x| *x)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, (0..10).collect::<Vec<_>>());
    /// assert_eq!(report.stage("buffer#2").unwrap().dropped, 0);
    /// ```
    #[track_caller]
    pub fn buffer_local(
        mut self,
        capacity: usize,
        overflow: Overflow,
    ) -> Pipeline<BoundaryLocal<S::Item>>
    where
        S: 'static,
        S::Item: 'static,
    {
        check_capacity("buffer_local", capacity, overflow);
        let info = self.core.add_stage("buffer", StageKind::Buffer);
        let ctx = self.core.ctx.clone();
        let poll_batch = self.batch.map(|b| b.poll);
        let (stream, task) =
            BoundaryLocal::buffered(self.stream, poll_batch, capacity, overflow, info, ctx);
        self.core.add_local_task(task);
        Pipeline::from_batched(stream, self.core, BoundaryLocal::poll_batch)
    }

    /// [`spawn`](Self::spawn) for pipelines that are not `Send`: starts the
    /// run into `consumer` as a task of the local executor this thread runs
    /// (inside `SmolRuntime::run_local` or `TokioRuntime::run_local`) and
    /// returns its [`PipelineHandle`], which is `Send` like any other:
    /// shut it down, abort it, watch it, or await it for the report.
    /// Dropping the handle cancels the run.
    ///
    /// # Errors
    ///
    /// [`SpawnLocalError`] when the pipeline's runtime cannot spawn a local
    /// task here: runtime-free, or outside those scopes. Nothing has run
    /// then; the pipeline and `consumer` are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use flowline_core::{consumer, producer, runtime::SmolRuntime};
    ///
    /// let ex = Rc::new(smol::LocalExecutor::new());
    /// let report = smol::block_on(SmolRuntime::run_local(&ex, async {
    ///     let handle = producer::iter((0..5u32).map(Rc::new))
    ///         .boundary_local(2)
    ///         .on(SmolRuntime::new())
    ///         .spawn_local(consumer::discard())
    ///         .unwrap();
    ///     handle.await
    /// }))
    /// .unwrap();
    /// assert_eq!(report.delivered(), 5);
    /// ```
    pub fn spawn_local<C>(mut self, consumer: C) -> Result<PipelineHandle, SpawnLocalError>
    where
        S: 'static,
        C: Sink<S::Item> + 'static,
        C::Error: Into<BoxError>,
    {
        let ctx = self.core.ctx.clone();
        let info = self.core.add_consumer();
        let refused = |runtime| SpawnLocalError { runtime };
        let Some(rt) = ctx.executor() else {
            return Err(refused("runtime-free"));
        };
        let (task, handle) = local_task(self.run_into(consumer, info));
        rt.spawn_local_boxed(task).map_err(|_| refused(rt.name()))?;
        Ok(PipelineHandle::new(
            Join::Spawned(handle),
            Monitor::new(ctx),
        ))
    }
}
