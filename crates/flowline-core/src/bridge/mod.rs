//! Bridges between synchronous code and pipelines.
//!
//! - sync → async: [`feeder`] makes a [`Feeder`] — cloneable, with blocking
//!   [`push`](Feeder::push) and [`push_all`](Feeder::push_all),
//!   [`try_push`](Feeder::try_push), [`push_timeout`](Feeder::push_timeout)
//!   and async [`send`](Feeder::send) —
//!   and the pipeline it feeds. Callbacks, threads, FFI or a GUI loop hand
//!   items to async stages with backpressure; a burst of pushes between two
//!   wake-ups of the pipeline is delivered in full, at once, in order.
//! - async → sync: [`Pipeline::into_drain`](crate::Pipeline::into_drain) turns
//!   a pipeline's output into a [`Drain`], a blocking [`Iterator`].
//!
//! Inside: `shared.rs` (the queue both share: two locked lanes, batch
//! hand-off), `feeder.rs`, `feed.rs` (the pipeline's source stage),
//! `drain.rs`, `drain_sink.rs` (the consumer a drained pipeline runs into),
//! `deadline.rs` (timeouts on the pipeline's clock), `error.rs`.
//!
//! # Examples
//!
//! ```
//! use flowline_core::bridge;
//!
//! let (feeder, pipeline) = bridge::feeder(64);
//! let sensor = std::thread::spawn(move || {
//!     for reading in [20.5, 21.0, 22.5] {
//!         feeder.push(reading).unwrap();
//!     }
//! });
//! let celsius: Vec<f64> = pipeline.map(|f| f * 2.0).into_drain(16).collect();
//! sensor.join().unwrap();
//! assert_eq!(celsius, [41.0, 42.0, 45.0]);
//! ```

mod deadline;
mod drain;
mod drain_sink;
mod error;
mod feed;
mod feeder;
mod shared;

use std::sync::Arc;

pub use drain::Drain;
pub use error::{PushError, PushTimeoutError, RecvTimeoutError, TryPushError, TryRecvError};
pub use feed::Feed;
pub use feeder::Feeder;

use crate::pipeline::Pipeline;
use crate::run::{Core, StageKind};

/// A [`Feeder`] and the pipeline it feeds, whose source stage (`feeder#0`,
/// kind [`StageKind::Bridge`]) yields the pushed items in push order.
///
/// Up to `capacity` pushed items wait for the pipeline; then
/// [`push`](Feeder::push) blocks. The pipeline takes what is waiting in
/// batches (of up to `capacity`), so at most `2 × capacity` items sit between
/// the pushers and the stage after the feeder.
///
/// The pipeline ends, after delivering everything pushed, when
/// [`Feeder::close`] is called, the last `Feeder` clone is dropped, or the run
/// is shut down ([`PipelineHandle::shutdown`](crate::PipelineHandle::shutdown)):
/// shutdown closes the feeder for every clone, so pushes blocked at that
/// moment and every later push fail and hand their item back, while the items
/// accepted before are still delivered. Dropping the pipeline closes the
/// feeder too: pushes then fail and hand the item back.
///
/// # Panics
///
/// If `capacity` is 0: the feeder needs room for at least one item.
///
/// # Examples
///
/// ```
/// use flowline_core::bridge;
///
/// let (feeder, pipeline) = bridge::feeder(8);
/// let threads: Vec<_> = (0..4u32)
///     .map(|t| {
///         let feeder = feeder.clone();
///         std::thread::spawn(move || (0..10).for_each(|i| feeder.push(t * 100 + i).unwrap()))
///     })
///     .collect();
/// drop(feeder); // the clones keep it open
/// let (n, report) = futures::executor::block_on(pipeline.run_count()).unwrap();
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(n, 40);
/// assert_eq!(report.stages[0].name, "feeder#0");
/// ```
#[track_caller]
pub fn feeder<T>(capacity: usize) -> (Feeder<T>, Pipeline<Feed<T>>) {
    if capacity == 0 {
        crate::rejection::reject(format_args!(
            "feeder capacity must be at least 1, got 0; \
             pass the number of pushed items that may wait, e.g. bridge::feeder(64)"
        ));
    }
    let shared = Arc::new(shared::Shared::new(capacity));
    let (core, info) = Core::with_source_kind("feeder", StageKind::Bridge);
    // Shutting the run down stops the feeder like `close`, whoever holds it.
    core.ctx
        .lifecycle
        .register_source()
        .register(&shared.stop_waker());
    let feed = Feed::new(shared.clone(), Some(info));
    // Item by item, not as a batch source (`Pipeline::from_batched`): taking
    // whole lanes into a `run_fold` made the consumer drain the feeder
    // faster than a thread pushes, so it slept and had to be woken more
    // often: in W4 it made a third more context switches per item, which
    // cost more than the batching saved.
    (Feeder::new(shared), Pipeline::from_parts(feed, core))
}
