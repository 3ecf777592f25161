//! Stage adapters: one `Stream` adapter per file, named after its method on
//! [`Pipeline`](crate::Pipeline).
//!
//! Fused stages (`map`, `filter`, `filter_map`, `then`, `inspect`) run inside
//! the task that polls them. [`Boundary`] is the receiving end of an async
//! boundary; its upstream runs as a separate task.

mod batch;
mod batch_queue;
mod batch_weighted;
mod boundary;
mod concurrent;
mod filter;
mod filter_map;
mod inspect;
mod map;
mod map_concurrent;
mod map_concurrent_by_key;
mod map_concurrent_unordered;
mod then;

pub use batch::Batch;
pub use batch_weighted::BatchWeighted;
pub use boundary::Boundary;
pub use filter::Filter;
pub use filter_map::FilterMap;
pub use inspect::Inspect;
pub use map::Map;
pub use map_concurrent::MapConcurrent;
pub use map_concurrent_by_key::MapConcurrentByKey;
pub use map_concurrent_unordered::MapConcurrentUnordered;
pub use then::Then;
