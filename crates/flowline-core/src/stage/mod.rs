//! Stage adapters: one `Stream` adapter per file, named after its method on
//! [`Pipeline`](crate::Pipeline).
//!
//! Fused stages (`map`, `filter`, `filter_map`, `then`, `inspect`) run inside
//! the task that polls them. [`Boundary`] is the receiving end of an async
//! boundary; its upstream runs as a separate task.
//!
//! [`Buffer`] is a boundary whose queue applies an [`Overflow`] policy.
//! [`fan`] splits a pipeline into branches (`broadcast`, `balance`,
//! `partition`); [`Merge`], [`Zip`] and [`Concat`] join two pipelines.

mod boundary;
mod buffer;
mod concat;
pub mod fan;
mod filter;
mod filter_map;
mod inspect;
mod map;
mod merge;
mod merge_all;
mod overflow;
mod then;
mod zip;

pub use boundary::Boundary;
pub use buffer::Buffer;
pub use concat::Concat;
pub use filter::Filter;
pub use filter_map::FilterMap;
pub use inspect::Inspect;
pub use map::Map;
pub use merge::Merge;
pub use merge_all::{merge_all, MergeAll};
pub use overflow::{Overflow, Overflowed};
pub use then::Then;
pub use zip::Zip;
