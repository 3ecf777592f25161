use std::fmt;
use std::time::Duration;

use crate::run::StageKind;

/// What one stage did during a run.
///
/// Every item that reached the stage is in exactly one bucket:
/// `items_in == items_out + grouped + filtered + dropped + discarded +
/// skipped + dead_lettered + failed + in_flight` (see
/// [`is_balanced`](Self::is_balanced)). `in_flight` is non-zero only when
/// the run ended early (an error or an abort) while the stage held items: on
/// a completed run it is 0 for every stage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageReport {
    /// The stage's name (its default, or the one given with `.named(..)`).
    pub name: String,
    /// What kind of stage it is.
    pub kind: StageKind,
    /// Items that reached the stage.
    pub items_in: u64,
    /// Items the stage passed downstream (for the consumer: items accepted,
    /// that is handed to the sink's `start_send`).
    pub items_out: u64,
    /// Items the user's predicate removed (`filter`, `filter_map`).
    pub filtered: u64,
    /// Items dropped by an explicit overflow policy (never silently).
    pub dropped: u64,
    /// Items merged into a unit another item stands for: a batch of `n`
    /// items counts 1 in `items_out` and `n - 1` here; a `zip` pair counts 1
    /// out and 1 grouped.
    pub grouped: u64,
    /// Items left out by the stage's design, not by an error policy:
    /// replaced by a newer item before they were due (`debounce`, `sample`),
    /// or held when the stage ended without them (the unmatched item of a
    /// `zip`, what a boundary held when its reader went away).
    pub discarded: u64,
    /// Extra attempts made by a retry policy. Counts attempts, not items, so
    /// it is not part of the balance.
    pub retried: u64,
    /// Failed items that the stage's error policy skipped.
    pub skipped: u64,
    /// Failed items handed to the stage's dead-letter consumer.
    pub dead_lettered: u64,
    /// Items whose failure (error or panic) ended the run.
    pub failed: u64,
    /// Items inside the stage when the run ended early (error or abort).
    pub in_flight: u64,
    /// Time spent in user code, where the stage measures it: fallible stages
    /// (`try_map`, `try_then`) measure every call; fused `map`/`filter` do
    /// not (it would cost more than the call), and show zero.
    pub busy: Duration,
    /// Named counts the stage publishes besides its items (see
    /// [`Counters`](crate::Counters)), in the order it gives them;
    /// not part of the balance. Empty for most stages.
    pub counters: Vec<(String, u64)>,
}

impl StageReport {
    /// The count named `name` the stage published
    /// ([`Pipeline::with_counters`](crate::Pipeline::with_counters)).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (_, report) = futures::executor::block_on(
    ///     producer::iter(0..3).with_counters(|| vec![("answer", 42)]).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(report.stages[0].counter("answer"), Some(42));
    /// assert_eq!(report.stages[0].counter("question"), None);
    /// ```
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, count)| count)
    }

    /// Items that went in but not out as themselves: grouped into a unit,
    /// filtered by the user, dropped by an overflow policy, discarded by
    /// design, skipped, dead-lettered, failed, or in flight when the run
    /// ended.
    pub fn items_removed(&self) -> u64 {
        self.items_in.saturating_sub(self.items_out)
    }

    /// Whether every item that reached the stage is accounted for exactly
    /// once: `in == out + grouped + filtered + dropped + discarded +
    /// skipped + dead_lettered + failed + in_flight`. Always true unless
    /// flowline has a bug.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (_, report) = futures::executor::block_on(
    ///     producer::iter(0..10).filter(|x| x % 3 == 0).run_collect(),
    /// )
    /// .unwrap();
    /// assert!(report.stages.iter().all(|s| s.is_balanced()));
    /// assert_eq!(report.stages[1].filtered, 6);
    /// ```
    pub fn is_balanced(&self) -> bool {
        self.items_in
            == self.items_out
                + self.grouped
                + self.filtered
                + self.dropped
                + self.discarded
                + self.skipped
                + self.dead_lettered
                + self.failed
                + self.in_flight
    }
}

/// The outcome of a completed run: per-stage counts and elapsed time.
///
/// Displays as a table; columns that are zero for every stage (filtered,
/// dropped, retried, …) are left out; counts stages publish
/// ([`StageReport::counters`]) follow as columns of their own, `-` for the
/// stages without them:
///
/// ```
/// use flowline_core::producer;
///
/// let (evens, report) = futures::executor::block_on(
///     producer::iter(1..=10u32).filter(|x| x % 2 == 0).named("evens").run_collect(),
/// )
/// .unwrap();
/// assert_eq!(evens, [2, 4, 6, 8, 10]);
/// let stage = report.stage("evens").unwrap();
/// assert_eq!((stage.items_in, stage.items_out, stage.filtered), (10, 5, 5));
/// assert_eq!(report.delivered(), 5);
/// let table = report.to_string();
/// assert!(table.starts_with(
///     "stage       kind      in  out  filtered\n\
///      iter#0      source    10   10         0\n\
///      evens       fused     10    5         5\n\
///      consumer#2  consumer   5    5         0\n\
///      elapsed "
/// ));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Every stage, source first, consumer last.
    pub stages: Vec<StageReport>,
    /// Time from the first poll to the consumer's close, on the runtime's
    /// clock (wall time, or virtual time on a virtual-clock runtime).
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

    /// Items still inside the pipeline when the run ended (non-zero only
    /// after an error or an abort).
    pub fn in_flight(&self) -> u64 {
        self.stages.iter().map(|s| s.in_flight).sum()
    }
}

type Column = (&'static str, fn(&StageReport) -> String);

fn columns() -> [Column; 12] {
    [
        ("in", |s| s.items_in.to_string()),
        ("out", |s| s.items_out.to_string()),
        ("grouped", |s| s.grouped.to_string()),
        ("filtered", |s| s.filtered.to_string()),
        ("dropped", |s| s.dropped.to_string()),
        ("discarded", |s| s.discarded.to_string()),
        ("retried", |s| s.retried.to_string()),
        ("skipped", |s| s.skipped.to_string()),
        ("dead-lettered", |s| s.dead_lettered.to_string()),
        ("failed", |s| s.failed.to_string()),
        ("in-flight", |s| s.in_flight.to_string()),
        ("busy", |s| {
            if s.busy.is_zero() {
                "-".to_string()
            } else {
                format!("{:.1?}", s.busy)
            }
        }),
    ]
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Published counts, by name in order of first appearance.
        let mut extra: Vec<&str> = Vec::new();
        for (name, _) in self.stages.iter().flat_map(|s| &s.counters) {
            if !extra.contains(&name.as_str()) {
                extra.push(name);
            }
        }
        let headers: Vec<&str> = columns()
            .iter()
            .map(|(h, _)| *h)
            .chain(extra.iter().copied())
            .collect();
        let cells: Vec<Vec<String>> = self
            .stages
            .iter()
            .map(|s| {
                let published = extra.iter().map(|name| {
                    s.counter(name)
                        .map_or_else(|| "-".to_string(), |n| n.to_string())
                });
                columns()
                    .iter()
                    .map(|(_, cell)| cell(s))
                    .chain(published)
                    .collect()
            })
            .collect();
        // `in`, `out` and published counts always show; the others only when
        // some stage has one.
        let standard = columns().len();
        let shown: Vec<usize> = (0..headers.len())
            .filter(|&c| {
                c < 2 || c >= standard || cells.iter().any(|row| row[c] != "0" && row[c] != "-")
            })
            .collect();
        let name_width = self.stages.iter().map(|s| s.name.len()).fold(5, usize::max);
        let kind_width = self
            .stages
            .iter()
            .map(|s| s.kind.to_string().len())
            .fold(4, usize::max);
        let widths: Vec<usize> = shown
            .iter()
            .map(|&c| {
                cells
                    .iter()
                    .map(|r| r[c].len())
                    .fold(headers[c].len(), usize::max)
            })
            .collect();
        write!(f, "{:<name_width$}  {:<kind_width$}", "stage", "kind")?;
        for (&c, w) in shown.iter().zip(&widths) {
            write!(f, "  {:>w$}", headers[c])?;
        }
        writeln!(f)?;
        for (s, row) in self.stages.iter().zip(&cells) {
            write!(
                f,
                "{:<name_width$}  {:<kind_width$}",
                s.name,
                s.kind.to_string()
            )?;
            for (&c, w) in shown.iter().zip(&widths) {
                write!(f, "  {:>w$}", row[c])?;
            }
            writeln!(f)?;
        }
        write!(f, "elapsed {:.3?}", self.elapsed)
    }
}
