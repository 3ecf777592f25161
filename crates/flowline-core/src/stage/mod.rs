//! Stage adapters: one `Stream` adapter per file, named after its method on
//! [`Pipeline`](crate::Pipeline), in one folder per family: `fused/`,
//! `concurrency/`, `timing/` (batching and time), `buffering/` (boundary,
//! buffer and overflow), [`fan`] (fan-out), `fan_in/`, `fallible/`.
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

mod buffering;
mod concurrency;
mod fallible;
pub mod fan;
mod fan_in;
mod fused;
mod timing;

// Crate paths that name a stage's module directly.
pub(crate) use buffering::overflow;

pub use buffering::boundary::Boundary;
pub use buffering::boundary_local::BoundaryLocal;
pub use buffering::buffer::Buffer;
pub use buffering::overflow::{Overflow, Overflowed};
pub use concurrency::map_concurrent::MapConcurrent;
pub use concurrency::map_concurrent_by_key::MapConcurrentByKey;
pub use concurrency::map_concurrent_unordered::MapConcurrentUnordered;
pub use fallible::try_map::TryMap;
pub use fallible::try_then::TryThen;
pub use fan_in::chain::Chain;
pub use fan_in::merge::Merge;
pub use fan_in::merge_all::{merge_all, MergeAll};
pub use fan_in::zip::Zip;
pub use fused::filter::Filter;
pub use fused::filter_map::FilterMap;
pub use fused::inspect::Inspect;
pub use fused::map::Map;
pub use fused::then::Then;
pub use timing::batch::Batch;
pub use timing::batch_weighted::BatchWeighted;
pub use timing::debounce::Debounce;
pub use timing::elapsed::Elapsed;
pub use timing::idle_timeout::IdleTimeout;
pub use timing::sample::Sample;
pub use timing::then_timeout::ThenTimeout;
pub use timing::throttle::{Rate, Throttle};
