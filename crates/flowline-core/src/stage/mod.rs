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

mod batch;
mod batch_weighted;
mod boundary;
mod concurrent;
mod debounce;
mod elapsed;
mod filter;
mod filter_map;
mod idle_timeout;
mod inspect;
mod map;
mod map_concurrent;
mod map_concurrent_by_key;
mod map_concurrent_unordered;
mod sample;
mod then;
mod try_map;
mod try_then;

mod then_timeout;
mod throttle;

pub use batch::Batch;
pub use batch_weighted::BatchWeighted;
pub(crate) use boundary::batch_geometry;
pub use boundary::Boundary;
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
pub use sample::Sample;
pub use then::Then;
pub use then_timeout::ThenTimeout;
pub use throttle::{Rate, Throttle};
pub use try_map::TryMap;
pub use try_then::TryThen;
