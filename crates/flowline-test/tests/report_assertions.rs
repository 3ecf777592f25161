//! Report assertions: what they accept, and what their failures say.

use std::panic::{catch_unwind, AssertUnwindSafe};

use flowline_core::{producer, RunReport};
use flowline_test::{assert_accounted, assert_balanced, expect_stage};

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

fn evens() -> RunReport {
    let (_, report) = futures::executor::block_on(
        producer::iter(0..10u32)
            .filter(|x| x % 2 == 0)
            .named("evens")
            .run_collect(),
    )
    .unwrap();
    report
}

#[test]
fn a_real_report_balances() {
    let report = evens();
    assert_balanced(&report);
    assert_accounted(&report);
    expect_stage(&report, "evens")
        .items_in(10)
        .out(5)
        .filtered(5)
        .dropped(0)
        .in_flight(0);
}

#[test]
fn an_item_counted_twice_is_named_with_the_table() {
    let mut report = evens();
    report.stages[1].dropped = 1;
    let msg = panic_message(|| assert_balanced(&report));
    assert!(
        msg.starts_with(
            "flowline-test: the report does not balance:\n  \
             stage evens: in 10 != 11 = out 5 + filtered 5 + dropped 1\nreport:\nstage "
        ),
        "{msg}"
    );
    assert!(msg.contains(&report.to_string()), "{msg}");
}

#[test]
fn in_flight_items_fail_a_completed_run_only() {
    let mut report = evens();
    report.stages[1].filtered -= 1;
    report.stages[1].in_flight = 1;
    assert_accounted(&report);
    let msg = panic_message(|| assert_balanced(&report));
    assert!(
        msg.contains("stage evens: 1 item(s) still in flight after a completed run"),
        "{msg}"
    );
}

#[test]
fn expect_stage_failures_name_the_column() {
    let report = evens();
    let msg = panic_message(|| {
        expect_stage(&report, "evens").items_in(10).out(4);
    });
    assert!(
        msg.starts_with("flowline-test: stage evens: expected out 4, got 5\nreport:\n"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let _unchecked = expect_stage(&report, "odds");
    });
    assert!(
        msg.starts_with(
            "flowline-test: no stage \"odds\" in the report (stages: iter#0, evens, consumer#2)"
        ),
        "{msg}"
    );
}
