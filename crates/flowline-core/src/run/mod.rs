//! Pipelines and their runs: [`Pipeline`], [`RunReport`], [`PipelineError`].
//!
//! Inside: `pipeline.rs` (the builder and its `Stream` impl, which drives
//! boundary tasks), `drive.rs` (terminal methods), `context.rs` (state shared
//! by all stages of a run), `stage_info.rs` (per-stage counters and panic
//! marks), `report.rs`, `error.rs`.

mod context;
mod drive;
mod error;
mod fallible;
mod lifecycle;
mod pipeline;
mod report;
mod stage_info;

pub(crate) use context::RunContext;
pub use error::{BoxError, PipelineError};
pub(crate) use lifecycle::Lifecycle;
pub(crate) use pipeline::Core;
pub use pipeline::Pipeline;
pub use report::{RunReport, StageReport};
pub(crate) use stage_info::StageInfo;
pub use stage_info::StageKind;
