//! Reporting: what a run did ([`RunReport`], [`StageReport`]), what it is
//! doing ([`Monitor`], [`Snapshot`]), and its stage graph ([`Topology`]).

mod describe;
mod run_report;
mod snapshot;

pub use describe::Topology;
pub use run_report::{RunReport, StageReport};
pub(crate) use snapshot::report_progress;
pub use snapshot::{Monitor, Snapshot, StageSnapshot};
