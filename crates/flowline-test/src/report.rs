//! Assertions on a [`RunReport`]: the accounting invariant per stage, and
//! per-stage counts, with the report table in every failure message.

use flowline_core::{RunReport, StageReport};

/// Where the items that entered a stage went, column by column: every item
/// is in exactly one. The one place to list a new removal column.
fn outlets(s: &StageReport) -> [(&'static str, u64); 9] {
    [
        ("out", s.items_out),
        ("grouped", s.grouped),
        ("filtered", s.filtered),
        ("dropped", s.dropped),
        ("discarded", s.discarded),
        ("skipped", s.skipped),
        ("dead_lettered", s.dead_lettered),
        ("failed", s.failed),
        ("in_flight", s.in_flight),
    ]
}

/// The stages whose items do not add up, described.
fn imbalances(report: &RunReport, allow_in_flight: bool) -> Vec<String> {
    let mut found = Vec::new();
    for s in &report.stages {
        let outlets = outlets(s);
        let total: u64 = outlets.iter().map(|&(_, n)| n).sum();
        if total != s.items_in {
            let terms: Vec<String> = outlets
                .iter()
                .filter(|&&(_, n)| n > 0)
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            found.push(format!(
                "stage {}: in {} != {} = {}",
                s.name,
                s.items_in,
                total,
                if terms.is_empty() {
                    "0".into()
                } else {
                    terms.join(" + ")
                }
            ));
        }
        if !allow_in_flight && s.in_flight > 0 {
            found.push(format!(
                "stage {}: {} item(s) still in flight after a completed run",
                s.name, s.in_flight
            ));
        }
    }
    found
}

fn fail(what: &str, problems: &[String], report: &RunReport) -> ! {
    panic!(
        "flowline-test: {what}:\n  {}\nreport:\n{report}",
        problems.join("\n  ")
    )
}

/// Checks the accounting invariant of a completed run: in every stage,
/// `in == out + grouped + filtered + dropped + discarded + skipped +
/// dead_lettered + failed + in_flight`, and nothing is in flight.
///
/// # Panics
///
/// Naming each stage that does not add up, with the report table.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
/// use flowline_test::assert_balanced;
///
/// let (_, report) = futures::executor::block_on(
///     producer::iter(0..10).filter(|x| x % 2 == 0).boundary(4).run_collect(),
/// )
/// .unwrap();
/// assert_balanced(&report);
/// ```
pub fn assert_balanced(report: &RunReport) {
    let problems = imbalances(report, false);
    if !problems.is_empty() {
        fail("the report does not balance", &problems, report);
    }
}

/// [`assert_balanced`] for a run that failed or was aborted: items may be
/// left in flight, but each is still counted exactly once.
///
/// # Panics
///
/// Naming each stage that does not add up, with the report table.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
/// use flowline_test::assert_accounted;
///
/// let err = futures::executor::block_on(
///     producer::iter(0..10u32)
///         .map(|x| if x == 5 { panic!("five") } else { x })
///         .boundary(4)
///         .run_collect(),
/// )
/// .unwrap_err();
/// assert_accounted(err.report());
/// ```
pub fn assert_accounted(report: &RunReport) {
    let problems = imbalances(report, true);
    if !problems.is_empty() {
        fail(
            "the report does not account for every item",
            &problems,
            report,
        );
    }
}

/// A checker for one stage of a report: chain the counts you expect.
///
/// # Panics
///
/// [`expect_stage`] panics if no stage has the name; each check panics on a
/// mismatch, showing the report table.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
/// use flowline_test::expect_stage;
///
/// let (_, report) = futures::executor::block_on(
///     producer::iter(0..10).filter(|x| x % 3 == 0).named("thirds").run_collect(),
/// )
/// .unwrap();
/// expect_stage(&report, "thirds").items_in(10).out(4).filtered(6).dropped(0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StageExpectation<'a> {
    report: &'a RunReport,
    stage: &'a StageReport,
}

/// Finds the stage called `name` in `report`, to check its counts.
///
/// # Panics
///
/// If the report has no such stage (listing the ones it has).
#[must_use = "an expectation checks nothing until you call its methods"]
pub fn expect_stage<'a>(report: &'a RunReport, name: &str) -> StageExpectation<'a> {
    match report.stage(name) {
        Some(stage) => StageExpectation { report, stage },
        None => {
            let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
            panic!(
                "flowline-test: no stage {name:?} in the report (stages: {})\nreport:\n{report}",
                names.join(", ")
            )
        }
    }
}

macro_rules! checks {
    ($($(#[$doc:meta])* $method:ident => $field:ident, $column:literal;)*) => {
        impl<'a> StageExpectation<'a> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $method(self, expected: u64) -> Self {
                    self.check($column, self.stage.$field, expected)
                }
            )*
        }
    };
}

checks! {
    /// Items that reached the stage.
    items_in => items_in, "in";
    /// Items the stage passed on.
    out => items_out, "out";
    /// Items the user's predicate removed.
    filtered => filtered, "filtered";
    /// Items an overflow policy dropped.
    dropped => dropped, "dropped";
    /// Items merged into a unit another item stands for (`batch`, `zip`).
    grouped => grouped, "grouped";
    /// Items a stage let go by design (`debounce`, `sample`, an unmatched
    /// `zip` item).
    discarded => discarded, "discarded";
    /// Extra attempts made by a retry policy.
    retried => retried, "retried";
    /// Failed items skipped by the error policy.
    skipped => skipped, "skipped";
    /// Failed items handed to the dead-letter consumer.
    dead_lettered => dead_lettered, "dead_lettered";
    /// Items whose failure ended the run.
    failed => failed, "failed";
    /// Items inside the stage when the run ended.
    in_flight => in_flight, "in_flight";
}

impl<'a> StageExpectation<'a> {
    #[track_caller]
    fn check(self, column: &str, actual: u64, expected: u64) -> Self {
        if actual != expected {
            panic!(
                "flowline-test: stage {}: expected {column} {expected}, got {actual}\nreport:\n{}",
                self.stage.name, self.report
            );
        }
        self
    }

    /// The stage's counts, for checks of your own.
    pub fn report(self) -> &'a StageReport {
        self.stage
    }
}
