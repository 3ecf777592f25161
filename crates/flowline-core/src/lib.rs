//! The core of [flowline](https://docs.rs/flowline): runtime-agnostic
//! producer/consumer pipelines over [`futures::Stream`] and [`futures::Sink`].
//!
//! This crate has no executor dependency. Most users depend on the `flowline`
//! facade instead, which adds the smol and tokio runtimes behind features.
//!
//! - A [`Producer`] is any `Stream`; a [`Consumer`] is any `Sink`.
//! - A [`Pipeline`] chains stages between them. Fused stages (`map`,
//!   `filter`, `filter_map`, `then`, `inspect`) run in the polling task at the
//!   cost of a call; [`Pipeline::boundary`] puts upstream in a task of its own
//!   behind a bounded queue that moves items in adaptive micro-batches.
//! - A [`Runtime`](runtime::Runtime) runs the tasks; without one, a pipeline
//!   is a single future that any executor can drive.
//! - Terminal methods return a [`RunReport`] or a [`PipelineError`] naming the
//!   failing stage; a panic in user code is caught and reported, not
//!   propagated.
//!
//! # Examples
//!
//! ```
//! use flowline_core::producer;
//!
//! let numbers = producer::generator(|out| async move {
//!     for i in 0..=5u64 {
//!         out.emit(i).await;
//!     }
//! });
//! let (sum, report) = futures::executor::block_on(
//!     numbers.map(|x| x * x).boundary(16).run_fold(0, |acc, x| acc + x),
//! )
//! .unwrap();
//! assert_eq!(sum, 55);
//! assert_eq!(report.delivered(), 6);
//! ```

//! # What the crate root exports
//!
//! The root re-exports what a user names to build, run and inspect a
//! pipeline: the pipeline and run types, the traits, and every type a
//! [`Pipeline`] method takes or fails with ([`Overflow`], [`Rate`],
//! [`BlockingOptions`], [`BlockingPool`], [`ErrorPolicy`], [`Backoff`],
//! [`DeadLetter`], [`Elapsed`], …). The streams stage methods return
//! (`stage::Map`, `blocking::MapBlocking`, …) and the bridge's error types
//! stay in their modules, as futures' adapters do.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod blocking;
pub mod bridge;
pub mod consumer;
pub mod policy;
pub mod producer;
pub mod runtime;
pub mod stage;
pub mod time;

mod pipeline;
mod queue;
mod rejection;
mod report;
mod run;

pub use blocking::{BlockingOptions, BlockingPool};
pub use consumer::Consumer;
pub use pipeline::{Pipeline, SpawnLocalError, TryPipeline};
pub use policy::{Backoff, DeadLetter, ErrorPolicy, StageError};
pub use producer::{Producer, ProducerExt};
pub use report::{Counters, Monitor, RunReport, Snapshot, StageReport, StageSnapshot, Topology};
pub use run::{BoxError, PipelineError, PipelineHandle, StageKind, StopHandle};
pub use stage::{Elapsed, Overflow, Rate};
