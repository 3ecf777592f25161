//! The run engine: how a pipeline runs once built. [`PipelineError`],
//! [`PipelineHandle`], [`StopHandle`], and the crate-internal machinery.
//!
//! Inside: `core.rs` (a pipeline's context and tasks), `drive.rs` (the
//! driving loop every terminal method shares, and how a run ends),
//! `context.rs` (state shared by all stages of a run: stages, first error,
//! runtime, blocking calls), `lifecycle.rs` (stop, abort, halt and finish
//! signals), `local_tasks.rs` (the
//! stage tasks that are not `Send`, parked on their thread), `signal.rs` (the one flag-and-listen loop, the call counter,
//! `End`), `handle.rs` (a spawned run's handle), `stage_info.rs` (per-stage
//! counters and panic marks), `error.rs`, `trace.rs`.
//!
//! The engine imports no stage and no builder: the builder
//! (`crate::pipeline`) hands it a [`Drivable`] pipeline.

mod context;
mod core;
mod drive;
mod error;
mod handle;
mod lifecycle;
mod local_tasks;
pub(crate) mod scope;
mod signal;
mod stage_info;
#[cfg(feature = "tracing")]
mod trace;

pub(crate) use self::core::Core;
pub(crate) use context::RunContext;
pub(crate) use drive::{drive, forward, outcome, Drivable, Taken, BUDGET};
pub use error::{BoxError, PipelineError};
pub(crate) use handle::Join;
pub use handle::{PipelineHandle, StopHandle};
pub(crate) use lifecycle::Lifecycle;
pub(crate) use local_tasks::LocalTasks;
pub(crate) use signal::{wait_until, End, Flag};
pub use stage_info::StageKind;
pub(crate) use stage_info::{CountOnDrop, Counter, StageInfo};
