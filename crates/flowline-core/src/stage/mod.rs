//! Stage adapters: one `Stream` adapter per file, named after its method on
//! [`Pipeline`](crate::Pipeline).
//!
//! Fused stages (`map`, `filter`, `filter_map`, `then`, `inspect`) run inside
//! the task that polls them. [`Boundary`] is the receiving end of an async
//! boundary; its upstream runs as a separate task.

mod boundary;
mod filter;
mod filter_map;
mod inspect;
mod map;
mod then;
mod try_map;
mod try_then;

pub(crate) use boundary::batch_geometry;
pub use boundary::Boundary;
pub use filter::Filter;
pub use filter_map::FilterMap;
pub use inspect::Inspect;
pub use map::Map;
pub use then::Then;
pub use try_map::TryMap;
pub use try_then::TryThen;
