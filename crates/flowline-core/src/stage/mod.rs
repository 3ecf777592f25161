//! Stage adapters: one `Stream` adapter per file, named after its method on
//! [`Pipeline`](crate::Pipeline).
//!
//! Fused stages (`map`, `filter`, `filter_map`, `then`, `inspect`) run inside
//! the task that polls them. [`Boundary`] is the receiving end of an async
//! boundary; its upstream runs as a separate task.
//!
//! Concurrent stages (`map_concurrent`, `map_concurrent_unordered`,
//! `map_concurrent_by_key`) share one engine (`concurrent.rs`) that a task
//! of their own keeps moving while downstream is busy, and that downstream
//! drives too when it waits for results. Batching (`batch`,
//! `batch_weighted`) and timing stages (`throttle`, `idle_timeout`,
//! `then_timeout`, `debounce`, `sample`) are pull-based adapters that take
//! their timers from the pipeline's runtime when first polled.
//! [`Buffer`] is a boundary whose queue applies an [`Overflow`] policy.
//! [`fan`] splits a pipeline into branches (`broadcast`, `balance`,
//! `partition`); [`Merge`], [`Zip`] and [`Chain`] join two pipelines.

mod batch;
mod batch_weighted;
mod boundary;
mod buffer;
mod chain;
mod concurrent;
mod debounce;
mod elapsed;
pub mod fan;
mod filter;
mod filter_map;
mod idle_timeout;
mod inspect;
mod map;
mod map_concurrent;
mod map_concurrent_by_key;
mod map_concurrent_unordered;
mod merge;
mod merge_all;
mod overflow;
mod sample;
mod then;
mod then_timeout;
mod throttle;
mod try_map;
mod try_then;
mod zip;

pub(crate) use crate::queue::batch_geometry;
pub use batch::Batch;
pub use batch_weighted::BatchWeighted;
pub use boundary::Boundary;
pub use buffer::Buffer;
pub use chain::Chain;
pub use debounce::Debounce;
pub use elapsed::Elapsed;
pub use filter::Filter;
pub use filter_map::FilterMap;
pub use idle_timeout::IdleTimeout;
pub use inspect::Inspect;
pub use map::Map;
pub use map_concurrent::MapConcurrent;
pub use map_concurrent_by_key::MapConcurrentByKey;
pub use map_concurrent_unordered::MapConcurrentUnordered;
pub use merge::Merge;
pub use merge_all::{merge_all, MergeAll};
pub use overflow::{Overflow, Overflowed};
pub use sample::Sample;
pub use then::Then;
pub use then_timeout::ThenTimeout;
pub use throttle::{Rate, Throttle};
pub use try_map::TryMap;
pub use try_then::TryThen;
pub use zip::Zip;
