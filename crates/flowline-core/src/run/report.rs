use std::fmt;
use std::time::Duration;

use super::StageKind;

/// What one stage did during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageReport {
    /// The stage's name (its default, or the one given with `.named(..)`).
    pub name: String,
    /// What kind of stage it is.
    pub kind: StageKind,
    /// Items that reached the stage.
    pub items_in: u64,
    /// Items the stage passed downstream (for the consumer: items accepted).
    pub items_out: u64,
    /// Items dropped by an explicit overflow policy (never silently).
    pub dropped: u64,
    /// Items that failed in this stage.
    pub failed: u64,
}

impl StageReport {
    /// Items that went in but not out: filtered by the user, dropped by an
    /// overflow policy, failed, or in flight when the run ended.
    pub fn items_removed(&self) -> u64 {
        self.items_in.saturating_sub(self.items_out)
    }
}

/// The outcome of a completed run: per-stage counts and elapsed time.
///
/// Displays as a table:
///
/// ```
/// use flowline_core::producer;
///
/// let (evens, report) = futures::executor::block_on(
///     producer::iter(1..=10u32).filter(|x| x % 2 == 0).named("evens").collect(),
/// )
/// .unwrap();
/// assert_eq!(evens, [2, 4, 6, 8, 10]);
/// let stage = report.stage("evens").unwrap();
/// assert_eq!((stage.items_in, stage.items_out), (10, 5));
/// assert_eq!(report.delivered(), 5);
/// println!("{report}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Every stage, source first, consumer last.
    pub stages: Vec<StageReport>,
    /// Wall time from the first poll to the consumer's close.
    pub elapsed: Duration,
}

impl RunReport {
    /// The first stage with this name.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Items accepted by the consumer.
    pub fn delivered(&self) -> u64 {
        self.stages
            .iter()
            .rev()
            .find(|s| s.kind == StageKind::Consumer)
            .map_or(0, |s| s.items_out)
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .stages
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        writeln!(
            f,
            "{:<width$}  {:<10}  {:>12}  {:>12}  {:>9}  {:>7}",
            "stage", "kind", "in", "out", "dropped", "failed"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<width$}  {:<10}  {:>12}  {:>12}  {:>9}  {:>7}",
                s.name,
                s.kind.to_string(),
                s.items_in,
                s.items_out,
                s.dropped,
                s.failed
            )?;
        }
        write!(f, "elapsed {:.3?}", self.elapsed)
    }
}
