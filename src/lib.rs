//! **flowline** — runtime-agnostic producer/consumer pipelines for async Rust.
//!
//! Describe a pipeline once — a producer, stages, a consumer — and run it on
//! smol, on tokio, or on no runtime at all. Every queue is bounded, every item
//! is accounted for in a [`RunReport`], a panic in user code becomes a
//! [`PipelineError`] naming the stage, and dropping a running pipeline cancels
//! everything it started.
//!
//! ```
//! use flowline::producer;
//!
//! # futures::executor::block_on(async {
//! let lines = producer::generator(|out| async move {
//!     for line in ["3 apples", "oops", "5 pears"] {
//!         out.emit(line).await;
//!     }
//! });
//! let (total, report) = lines
//!     .filter_map(|l| l.split(' ').next()?.parse::<u32>().ok())
//!     .named("parse")
//!     .boundary(64) // the generator and parser run as their own task
//!     .on_runtime(flowline::default_runtime())
//!     .run_fold(0, |sum, n| sum + n)
//!     .await?;
//! assert_eq!(total, 8);
//! assert_eq!(report.stage("parse").unwrap().items_removed(), 1);
//! # Ok::<(), flowline::PipelineError>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//!
//! - `smol` (default): [`smol::SmolRuntime`].
//! - `tokio`: [`tokio::TokioRuntime`].
//! - `tracing`: a `tracing` span per fallible stage and events for retries,
//!   skips, dead letters and failures (see [`policy`]).
//! - `redis`: [`redis`], Redis Streams consumer groups for scaling out to
//!   many workers, with acks that flow back from the consumer (needs Rust
//!   1.88, for the `redis` crate).
//! - `test-kit`: [`test`](mod@test), a virtual-clock runtime, probes and report
//!   assertions for testing pipelines.
//!
//! Features only add: both runtimes can be enabled at once.
//! [`default_runtime`] picks between them at run time, so code that calls it
//! does not change when the features do.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub use flowline_core::*;

/// The smol runtime adapter (feature `smol`).
#[cfg(feature = "smol")]
pub use flowline_smol as smol;

/// The tokio runtime adapter (feature `tokio`).
#[cfg(feature = "tokio")]
pub use flowline_tokio as tokio;

/// Redis Streams consumer groups: a source whose items carry ack tokens, a
/// committer, an `XADD` sink, and an in-memory backend (feature `redis`).
#[cfg(feature = "redis")]
pub use flowline_redis as redis;

/// The test kit (feature `test-kit`): a virtual-clock runtime, probes and
/// report assertions. See `docs/guide/testing.md`.
#[cfg(feature = "test-kit")]
pub use flowline_test as test;

pub use flowline_core::runtime::default_runtime;

/// The README's and the guide's code blocks, compiled and run as doctests.
#[cfg(doctest)]
mod guide_doctests {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/guide/async-generator.md")]
    struct AsyncGenerator;
    #[doc = include_str!("../docs/guide/operators-buffer-fan.md")]
    struct OperatorsBufferFan;
    #[doc = include_str!("../docs/guide/operators-concurrency-time.md")]
    struct OperatorsConcurrencyTime;
    #[doc = include_str!("../docs/guide/heavy-io.md")]
    struct HeavyIo;
    #[doc = include_str!("../docs/guide/event-driven.md")]
    struct EventDriven;
    #[doc = include_str!("../docs/guide/errors-and-lifecycle.md")]
    struct ErrorsAndLifecycle;
    #[doc = include_str!("../docs/guide/coming-from-streams.md")]
    struct ComingFromStreams;
    #[doc = include_str!("../docs/guide/local.md")]
    struct Local;
    #[doc = include_str!("../docs/comparison.md")]
    struct Comparison;
    #[cfg(feature = "test-kit")]
    #[doc = include_str!("../docs/guide/testing.md")]
    struct Testing;
}
