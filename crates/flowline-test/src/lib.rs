//! A test kit for [flowline](https://docs.rs/flowline) pipelines.
//!
//! - [`VirtualRuntime`]: a [`Runtime`](flowline_core::runtime::Runtime) with a
//!   virtual clock. Timers take no real time: a pipeline with ten-minute
//!   batches completes in microseconds, with the same outcome.
//! - [`VirtualClock`]: virtual time over another runtime's executor (smol,
//!   tokio, any `Runtime`): tasks run there, time moves when the test calls
//!   `advance`.
//! - [`TestSource`] and [`TestSink`]: probes the test drives step by step
//!   (send an item, request items, expect the next event, expect silence for
//!   a while of virtual time).
//! - [`assert_balanced`], [`assert_accounted`] and [`expect_stage`]: checks
//!   on a [`RunReport`](flowline_core::RunReport) whose failure messages show
//!   the report table.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use flowline_core::producer;
//! use flowline_test::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let (out, _) = rt
//!     .block_on(
//!         producer::iter(1..=3u32)
//!             .throttle((1, Duration::from_secs(60)), 1) // one a minute
//!             .on(rt.handle())
//!             .run_collect(),
//!     )
//!     .unwrap();
//! assert_eq!(out, [1, 2, 3]);
//! assert_eq!(rt.elapsed(), Duration::from_secs(120));
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod probe;
mod report;
mod virtual_rt;

pub use probe::{TestSink, TestSource};
pub use report::{assert_accounted, assert_balanced, expect_stage, StageExpectation};
pub use virtual_rt::{Settle, VirtualClock, VirtualHandle, VirtualRuntime};
