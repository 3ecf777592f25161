//! Blocking work off the executor: synchronous closures, iterators and
//! consumers on worker threads, with results flowing on as async items.
//!
//! - [`Pipeline::map_blocking`] / [`Pipeline::map_blocking_unordered`]: a
//!   stage running a sync closure on `parallelism` threads of its own;
//!   [`Pipeline::map_blocking_on`] / [`Pipeline::map_blocking_unordered_on`]
//!   run on a [`BlockingPool`] that several stages share.
//! - [`producer::from_blocking_iter`](crate::producer::from_blocking_iter): a
//!   producer from a blocking iterator; [`consumer::blocking`](crate::consumer::blocking):
//!   a consumer from a blocking closure.
//! - [`unblock`] / [`unblock_on`]: one blocking call from async code.
//!
//! Every thread started here is named `flowline-blk-…`, starts lazily and
//! exits when its stage ends or is dropped (a call in progress finishes;
//! nothing new starts).
//!
//! Inside: `pool.rs` (the threads), `map_blocking.rs` (the stage),
//! `from_blocking_iter.rs`, `blocking_consumer.rs`, `unblock.rs`.

mod blocking_consumer;
mod from_blocking_iter;
mod map_blocking;
mod pool;
mod unblock;

use futures::Stream;

use crate::run::{Pipeline, StageKind};

pub use blocking_consumer::{blocking, BlockingConsumer};
pub use from_blocking_iter::{from_blocking_iter, FromBlockingIter};
pub use map_blocking::MapBlocking;
pub use pool::BlockingPool;
pub use unblock::{unblock, unblock_on};

impl<S: Stream> Pipeline<S> {
    /// Runs the synchronous function `f` on each item on `parallelism`
    /// worker threads owned by this stage, emitting results in input order.
    ///
    /// For file reads, hashing, compression, sync clients: the executor is
    /// never blocked. At most `parallelism` calls run at once and at most
    /// `2 × parallelism` items are between upstream and downstream (running,
    /// queued, or finished and waiting for their turn), so a slow stage slows
    /// upstream down. Only when calls are cheap (under about 50 µs ÷
    /// `parallelism` each) does the stage let more through — two batches of
    /// at most 512 items — so that its hand-offs stay cheap. The threads (`flowline-blk-N`) start on the first item
    /// and exit when the stage ends, fails or is dropped; a call in progress
    /// finishes, no new one starts.
    ///
    /// Per-item cost is far below a `spawn_blocking` per item: queued calls
    /// wait on the pool, so a thread that finishes one starts the next at
    /// once, and cheap calls cross to the threads and back in batches.
    ///
    /// # Errors
    ///
    /// A panic in `f` ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage (`map_blocking#N`). The stage waits for the calls in progress to
    /// return, emits the results before the panicking item that are done,
    /// in order, and ends; no item is emitted twice.
    ///
    /// # Panics
    ///
    /// If `parallelism` is 0.
    ///
    /// # Caveats
    ///
    /// The stage takes new items from upstream when it is polled. Calls in
    /// progress and queued ones keep running while downstream is busy, but
    /// once `2 × parallelism` results wait for a slow consumer, the threads
    /// idle until it asks for more. Put a [`boundary`](Self::boundary) after
    /// the stage to let it run ahead in a task of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (sizes, report) = futures::executor::block_on(
    ///     producer::iter(["Cargo.toml", "no-such-file"])
    ///         .map_blocking(2, |path| std::fs::metadata(path).map(|m| m.len()).ok())
    ///         .collect(),
    /// )
    /// .unwrap();
    /// assert!(sizes[0].is_some() && sizes[1].is_none());
    /// assert_eq!(report.stage("map_blocking#1").unwrap().items_out, 2);
    /// ```
    #[track_caller]
    pub fn map_blocking<U, F>(self, parallelism: usize, f: F) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        check_parallelism("map_blocking", parallelism);
        let pool = BlockingPool::new(parallelism);
        self.blocking_stage("map_blocking", pool, parallelism, true, f)
    }

    /// Like [`map_blocking`](Self::map_blocking), but emits each result as
    /// soon as it is ready, in any order: a slow item does not hold back the
    /// ones after it.
    ///
    /// # Errors
    ///
    /// A panic in `f` ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage (`map_blocking_unordered#N`), once the calls in progress have
    /// returned. Results that finish after the panic are not emitted.
    ///
    /// # Panics
    ///
    /// If `parallelism` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (mut out, _) = futures::executor::block_on(
    ///     producer::iter(1..=8u64).map_blocking_unordered(4, |x| x * x).collect(),
    /// )
    /// .unwrap();
    /// out.sort();
    /// assert_eq!(out, [1, 4, 9, 16, 25, 36, 49, 64]);
    /// ```
    #[track_caller]
    pub fn map_blocking_unordered<U, F>(
        self,
        parallelism: usize,
        f: F,
    ) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        check_parallelism("map_blocking_unordered", parallelism);
        let pool = BlockingPool::new(parallelism);
        self.blocking_stage("map_blocking_unordered", pool, parallelism, false, f)
    }

    /// Like [`map_blocking`](Self::map_blocking) (ordered), on a shared
    /// [`BlockingPool`]: up to `pool.threads()` calls at once, and all stages
    /// on the pool together never use more threads than it has.
    ///
    /// # Errors
    ///
    /// As [`map_blocking`](Self::map_blocking) (stage `map_blocking#N`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{blocking::BlockingPool, producer};
    ///
    /// let pool = BlockingPool::new(3);
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(0..5).map_blocking_on(&pool, |x| x + 1).collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [1, 2, 3, 4, 5]);
    /// ```
    pub fn map_blocking_on<U, F>(self, pool: &BlockingPool, f: F) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        self.blocking_stage("map_blocking", pool.clone(), pool.threads(), true, f)
    }

    /// Like [`map_blocking_unordered`](Self::map_blocking_unordered), on a
    /// shared [`BlockingPool`].
    ///
    /// # Errors
    ///
    /// As [`map_blocking_unordered`](Self::map_blocking_unordered).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{blocking::BlockingPool, producer};
    ///
    /// let pool = BlockingPool::new(2);
    /// let (n, _) = futures::executor::block_on(
    ///     producer::iter(0..100).map_blocking_unordered_on(&pool, |x| x * 2).count(),
    /// )
    /// .unwrap();
    /// assert_eq!(n, 100);
    /// ```
    pub fn map_blocking_unordered_on<U, F>(
        self,
        pool: &BlockingPool,
        f: F,
    ) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        self.blocking_stage(
            "map_blocking_unordered",
            pool.clone(),
            pool.threads(),
            false,
            f,
        )
    }

    fn blocking_stage<U, F>(
        mut self,
        name: &str,
        pool: BlockingPool,
        parallelism: usize,
        ordered: bool,
        f: F,
    ) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        let info = self.core.add_stage(name, StageKind::Blocking);
        let ctx = self.core.ctx.clone();
        let stream = MapBlocking::new(self.stream, f, pool, parallelism, ordered, info, ctx);
        Pipeline::from_parts(stream, self.core)
    }
}

#[track_caller]
fn check_parallelism(method: &str, parallelism: usize) {
    if parallelism == 0 {
        crate::rejection::reject(format_args!(
            "{method} parallelism must be at least 1, got 0; \
             pass how many calls may run at once, e.g. .{method}(4, f)"
        ));
    }
}
