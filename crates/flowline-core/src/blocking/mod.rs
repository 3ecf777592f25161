//! Blocking work off the executor: synchronous closures, iterators and
//! consumers on worker threads, with results flowing on as async items.
//!
//! - [`Pipeline::map_blocking`] / [`Pipeline::map_blocking_with`]: a stage
//!   running a sync closure on worker threads, configured with
//!   [`BlockingOptions`] (parallelism, ordered or not, a shared
//!   [`BlockingPool`]).
//! - [`producer::from_blocking_iter`](crate::producer::from_blocking_iter): a
//!   producer from a blocking iterator; [`consumer::blocking`](crate::consumer::blocking):
//!   a consumer from a blocking closure. Both run on a [`BlockingPool`]
//!   thread of their own.
//! - [`unblock`] / [`unblock_on`]: one blocking call from async code (counted
//!   among the run's blocking calls when awaited in the run's own task).
//!
//! Workers take items from the stage's inbound queue and put results on its
//! outbound queue themselves; the stage restores the order by sequence
//! number. No task dispatches calls, so workers keep going while the task
//! that reads the results is busy elsewhere. Every user call is counted in
//! the run's blocking calls, so the run can wait until none is in progress;
//! once the run halts, no new call starts. Workers run inside the pipeline's
//! runtime context ([`Runtime::enter`](crate::runtime::Runtime::enter)): on
//! tokio, `Handle::current()` and `tokio::spawn` work in the closure.
//!
//! Every thread started here is named `flowline-blk-…`, starts when work
//! arrives and exits after half a second without work, or when its stage
//! ends or is dropped (a call in progress finishes; nothing new starts).
//!
//! Inside: `options.rs` (the builder), `pool.rs` (the threads), `worker.rs`
//! (the worker loop and the queues), `map_blocking.rs` (the stage),
//! `from_blocking_iter.rs`, `blocking_consumer.rs`, `holding.rs` (their
//! threads hand the user's code back before the run resolves), `unblock.rs`.
//! Which run a call belongs to comes from `run::scope`.

mod blocking_consumer;
mod from_blocking_iter;
mod holding;
mod map_blocking;
mod options;
mod pool;
mod unblock;
mod worker;

use futures::Stream;

use crate::pipeline::Pipeline;
use crate::run::StageKind;

pub use blocking_consumer::{blocking, BlockingConsumer};
pub use from_blocking_iter::{from_blocking_iter, FromBlockingIter};
pub use map_blocking::MapBlocking;
pub use options::BlockingOptions;
pub use pool::BlockingPool;
pub use unblock::{unblock, unblock_on};

impl<S: Stream> Pipeline<S> {
    /// Runs the synchronous function `f` on each item on worker threads
    /// owned by this stage, one call per core at once, emitting results in
    /// input order. [`map_blocking_with`](Self::map_blocking_with) chooses the
    /// parallelism, unordered output or a shared pool.
    ///
    /// For file reads, hashing, compression, sync clients: the executor is
    /// never blocked. Workers take items and hand back results themselves,
    /// so calls keep running while downstream is busy, up to the stage's
    /// bound: at most `2 × parallelism` items between upstream and
    /// downstream (queued, running, or finished and waiting for their turn),
    /// so a slow consumer slows upstream down. Only when calls are cheap
    /// (under about 50 µs ÷ 2 each) do workers take them in chunks — up to
    /// 512 items, about 50 µs of work — and the bound becomes two chunks, so
    /// that hand-offs stay cheap. The threads (`flowline-blk-N`) start with
    /// the first items, exit after 500 ms without work, and exit at once
    /// when the stage ends, fails or is dropped; a call in progress
    /// finishes, no new one starts.
    ///
    /// # Errors
    ///
    /// A panic in `f` ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage (`map_blocking#N`). The results before the panicking item are
    /// emitted first, in order and once each (the stage waits for their
    /// calls); no later item is called or emitted. The stream then never
    /// ends: the run stops on the failure, and nothing downstream mistakes
    /// it for a completed stream. After a failure elsewhere in the run no
    /// new call starts. However the run ends early, the error's report
    /// counts the items the stage had taken in and not emitted (not yet
    /// called, or called with the result not emitted) as the stage's
    /// `in_flight`, and a panicking item as its `failed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (sizes, report) = futures::executor::block_on(
    ///     producer::iter(["Cargo.toml", "no-such-file"])
    ///         .map_blocking(|path| std::fs::metadata(path).map(|m| m.len()).ok())
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert!(sizes[0].is_some() && sizes[1].is_none());
    /// assert_eq!(report.stage("map_blocking#1").unwrap().items_out, 2);
    /// ```
    pub fn map_blocking<U, F>(self, f: F) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        self.map_blocking_with(BlockingOptions::new(), f)
    }

    /// Like [`map_blocking`](Self::map_blocking), configured by `options`:
    /// how many calls at once ([`parallelism`](BlockingOptions::parallelism)),
    /// results in any order ([`unordered`](BlockingOptions::unordered)), on a
    /// shared [`BlockingPool`] ([`pool`](BlockingOptions::pool)).
    ///
    /// # Errors
    ///
    /// As [`map_blocking`](Self::map_blocking). Unordered (stage
    /// `map_blocking_unordered#N`), the results that arrived before the
    /// panicking one are emitted; results finishing after it are not.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{blocking::BlockingOptions, producer};
    ///
    /// let (mut out, _) = futures::executor::block_on(
    ///     producer::iter(1..=8u64)
    ///         .map_blocking_with(BlockingOptions::new().parallelism(4).unordered(), |x| x * x)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// out.sort();
    /// assert_eq!(out, [1, 4, 9, 16, 25, 36, 49, 64]);
    /// ```
    pub fn map_blocking_with<U, F>(
        mut self,
        options: BlockingOptions,
        f: F,
    ) -> Pipeline<MapBlocking<S, F, U>>
    where
        S::Item: Send + 'static,
        F: Fn(S::Item) -> U + Send + Sync + 'static,
        U: Send + 'static,
    {
        let ordered = options.is_ordered();
        let name = if ordered {
            "map_blocking"
        } else {
            "map_blocking_unordered"
        };
        let (pool, parallelism) = options.resolve();
        let info = self.core.add_stage(name, StageKind::Blocking);
        let ctx = self.core.ctx.clone();
        let stream = MapBlocking::new(self.stream, f, pool, parallelism, ordered, info, ctx);
        Pipeline::from_parts(stream, self.core)
    }
}
