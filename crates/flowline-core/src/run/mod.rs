//! Pipelines and their runs: [`Pipeline`], [`RunReport`], [`PipelineError`],
//! [`PipelineHandle`], [`Monitor`], [`Topology`].
//!
//! Inside: `pipeline.rs` (the builder and its `Stream` impl, which drives
//! boundary tasks), `drive.rs` (terminal methods), `fallible.rs`
//! (`try_map`, `try_then`, `on_error`), `handle.rs` (`spawn` and the run's
//! handle), `lifecycle.rs` (stop and finish signals), `snapshot.rs` (live
//! counts and progress), `describe.rs` (topology export), `context.rs`
//! (state shared by all stages of a run), `stage_info.rs` (per-stage counters
//! and panic marks), `report.rs`, `error.rs`.

mod context;
mod describe;
mod drive;
mod error;
mod fallible;
mod handle;
mod lifecycle;
mod pipeline;
mod report;
mod signal;
mod snapshot;
mod stage_info;
#[cfg(feature = "tracing")]
mod trace;
mod try_stream;

pub(crate) use context::RunContext;
pub use describe::Topology;
pub use error::{BoxError, PipelineError};
pub use handle::{PipelineHandle, StopHandle};
pub(crate) use lifecycle::Lifecycle;
pub(crate) use pipeline::Core;
pub use pipeline::Pipeline;
pub use report::{RunReport, StageReport};
#[allow(unused_imports)]
pub(crate) use signal::{wait_until, CallGuard, Calls, End, Flag};
pub use snapshot::{Monitor, Snapshot, StageSnapshot};
pub(crate) use stage_info::StageInfo;
pub use stage_info::StageKind;
pub use try_stream::TryPipeline;
