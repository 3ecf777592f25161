//! TestSource and TestSink: stepping a pipeline by hand in virtual time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use flowline_core::{producer, PipelineError};
use flowline_test::{TestSink, TestSource, VirtualRuntime};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn backpressure_is_visible_as_demand() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (source, pipeline) = TestSource::<u32>::new(&h);
    let mut sink = TestSink::run(&h, pipeline.boundary(4));
    rt.block_on(async {
        for i in 0..100 {
            source.send_next(i);
        }
        h.settle().await;
        // No credit: the pipeline takes what its queues hold, then stops.
        let held = source.requested();
        assert!((1..=8).contains(&held), "took {held} with no credit");
        h.advance(Duration::from_secs(60)).await;
        assert_eq!(source.requested(), held, "pulled on without demand");
        sink.request(3);
        for i in 0..3 {
            assert_eq!(sink.expect_next().await, i);
        }
        sink.expect_no_event(Duration::from_secs(1)).await;
        sink.request(u64::MAX / 2);
        for i in 3..100 {
            assert_eq!(sink.expect_next().await, i);
        }
        source.expect_demand(101).await; // all 100, and polling for more
        source.complete();
        let report = sink.expect_complete().await;
        assert_eq!(report.delivered(), 100);
    });
}

#[test]
fn send_error_fails_the_run_naming_the_source() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (source, pipeline) = TestSource::<u32>::new(&h);
    let mut sink = TestSink::run(&h, pipeline.map(|x| x + 1).named("inc"));
    rt.block_on(async {
        sink.request(10);
        source.send_next(1);
        assert_eq!(sink.expect_next().await, 2);
        source.send_error("disk on fire");
        let err = sink.expect_error("test_source.errors").await;
        match err {
            PipelineError::Failed { source, .. } => assert_eq!(source.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn debounce_stepped_in_virtual_time() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (source, pipeline) = TestSource::<&str>::new(&h);
    let mut sink = TestSink::run(&h, pipeline.debounce(ms(100)));
    rt.block_on(async {
        sink.request(10);
        source.send_next("a");
        sink.expect_no_event(ms(50)).await;
        source.send_next("b"); // restarts the quiet period
        sink.expect_no_event(ms(99)).await;
        assert_eq!(sink.expect_next().await, "b");
        assert_eq!(h.elapsed(), ms(150));
        source.complete();
        sink.expect_complete().await;
    });
}

#[test]
fn cancel_stops_the_source_and_reports_the_counts() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (source, pipeline) = TestSource::<u32>::new(&h);
    let mut sink = TestSink::run(&h, pipeline);
    rt.block_on(async {
        sink.request(1);
        source.send_next(7);
        assert_eq!(sink.expect_next().await, 7);
        let report = sink.cancel().await;
        assert_eq!(report.delivered(), 1);
        assert!(source.is_cancelled());
    });
    assert_eq!(h.live_tasks(), 0);
}

#[test]
fn expect_next_on_a_stalled_pipeline_fails_instead_of_hanging() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let (_source, pipeline) = TestSource::<u32>::new(&h);
    let mut sink = TestSink::run(&h, pipeline);
    sink.request(1);
    let msg = panic_message(|| {
        rt.block_on(sink.expect_next());
    });
    assert!(
        msg.contains("expected an item, but the pipeline stalled"),
        "{msg}"
    );
}

#[test]
fn expect_no_event_fails_on_an_item() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let h2 = h.clone();
    let late = producer::generator(move |out| async move {
        flowline_core::runtime::RuntimeExt::sleep(&h2, ms(30)).await;
        out.emit(5u32).await;
    });
    let mut sink = TestSink::run(&h, late);
    sink.request(1);
    let msg = panic_message(|| rt.block_on(sink.expect_no_event(ms(100))));
    assert!(
        msg.contains("expected no event for 100ms, got Next(5) at 30ms"),
        "{msg}"
    );
}

#[test]
fn expect_complete_fails_on_an_item() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let mut sink = TestSink::run(&h, producer::iter([1u32]));
    let msg = panic_message(|| {
        rt.block_on(sink.expect_complete());
    });
    assert!(
        msg.contains("expected the run to complete, got Next(1)"),
        "{msg}"
    );
}

#[test]
fn a_sink_dropped_with_unexpected_events_lists_them() {
    let rt = VirtualRuntime::new();
    let h = rt.handle();
    let sink = TestSink::run(&h, producer::iter([1u32, 2]));
    sink.request(5);
    rt.block_on(h.settle());
    let msg = panic_message(move || drop(sink));
    assert_eq!(
        msg,
        "flowline-test: TestSink dropped with 2 unexpected event(s): Next(1), Next(2)"
    );
}

#[test]
fn expect_no_event_moves_a_manual_clock() {
    let rt = VirtualRuntime::manual();
    let h = rt.handle();
    let (source, pipeline) = TestSource::<u32>::new(&h);
    let mut sink = TestSink::run(&h, pipeline.debounce(ms(100)));
    rt.block_on(async {
        sink.request(10);
        source.send_next(1);
        sink.expect_no_event(ms(99)).await;
        assert_eq!(h.elapsed(), ms(99));
        let msg = format!("{:?}", sink);
        assert!(msg.contains("events: []"), "{msg}");
        h.advance(ms(1)).await;
        assert_eq!(sink.expect_next().await, 1);
        source.complete();
        sink.expect_complete().await;
    });
}
