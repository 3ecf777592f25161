//! Reporting: what a run did ([`RunReport`], [`StageReport`]), what it is
//! doing ([`Monitor`], [`Snapshot`]), and its stage graph ([`Topology`]);
//! named counts a stage adds to its report entry ([`Counters`]).

mod counters;
mod describe;
mod run_report;
mod snapshot;

pub use counters::Counters;
pub use describe::Topology;
pub use run_report::{RunReport, StageReport};
pub(crate) use snapshot::report_progress;
pub use snapshot::{Monitor, Snapshot, StageSnapshot};
