//! Fallible stages and error policies: stop, skip, retry, dead-letter, panics.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowline::{
    consumer, producer, Backoff, DeadLetter, ErrorPolicy, PipelineError, RunReport, StageError,
};
use support::Rt;

#[derive(Debug)]
struct Bad(u32);

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad item {}", self.0)
    }
}

impl std::error::Error for Bad {}

fn check_balanced(report: &RunReport) {
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced stage {s:?}");
    }
}

type Letters<T> = Arc<Mutex<Vec<DeadLetter<T>>>>;

/// A dead-letter consumer that stores the letters.
fn letters<T: Send + 'static>() -> (
    impl futures::Sink<DeadLetter<T>, Error = std::convert::Infallible> + Send + 'static,
    Letters<T>,
) {
    let store = Arc::new(Mutex::new(Vec::new()));
    let sink_store = store.clone();
    let sink = consumer::for_each(move |letter| {
        sink_store.lock().unwrap().push(letter);
        async {}
    });
    (sink, store)
}

fn stop_is_the_default_and_names_the_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let result = producer::iter(0..10u32)
            .try_map(|x| if x == 3 { Err(Bad(x)) } else { Ok(x) })
            .named("check")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        match result {
            Err(PipelineError::Failed { stage, source, .. }) => {
                assert_eq!(stage, "check");
                assert_eq!(source.to_string(), "bad item 3");
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn skip_counts_and_goes_on(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::iter(0..20u32)
            .try_map(|x| if x % 3 == 0 { Err(Bad(x)) } else { Ok(x * 2) })
            .on_error(ErrorPolicy::Skip)
            .named("check")
            .boundary(4)
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        let expected: Vec<u32> = (0..20).filter(|x| x % 3 != 0).map(|x| x * 2).collect();
        assert_eq!(out, expected);
        let stage = report.stage("check").unwrap();
        assert_eq!(
            (stage.items_in, stage.items_out, stage.skipped),
            (20, 13, 7)
        );
        assert_eq!(stage.failed, 0);
        check_balanced(&report);
    });
}

/// `skip_errors` skips failures of items that are not `Clone` (no copy is
/// kept), in `try_map` and `try_then`, before and after a boundary.
fn skip_errors_needs_no_clone(rt: Rt) {
    /// Owns its value and cannot be copied, like a connection or a file.
    #[derive(Debug, PartialEq)]
    struct Job(u32);
    rt.block_on(|env| async move {
        let (out, report) = producer::iter((0..12).map(Job))
            .try_map(|Job(n)| if n % 3 == 0 { Err(Bad(n)) } else { Ok(Job(n)) })
            .skip_errors()
            .named("sync")
            .boundary(2)
            .try_then(|Job(n)| async move {
                if n % 2 == 0 {
                    Err(Bad(n))
                } else {
                    Ok(Job(n * 10))
                }
            })
            .skip_errors()
            .named("async")
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [Job(10), Job(50), Job(70), Job(110)]);
        let counts = |name| {
            let s = report.stage(name).unwrap();
            (s.items_in, s.items_out, s.skipped, s.failed)
        };
        assert_eq!(counts("sync"), (12, 8, 4, 0));
        assert_eq!(counts("async"), (8, 4, 4, 0));
        check_balanced(&report);
    });
}

fn retry_calls_again_with_the_same_item(rt: Rt) {
    rt.block_on(|env| async move {
        // Item x fails its first x % 3 attempts.
        let calls: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
        let seen = calls.clone();
        let (out, report) = producer::iter(0..12u32)
            .try_map(move |x| {
                let mut calls = seen.lock().unwrap();
                let n = calls.entry(x).or_insert(0);
                *n += 1;
                if *n <= x % 3 {
                    Err(Bad(x))
                } else {
                    Ok(x)
                }
            })
            .on_error(ErrorPolicy::Retry {
                attempts: 2,
                backoff: Backoff::exponential(Duration::from_millis(1), Duration::from_millis(4))
                    .with_jitter(),
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, (0..12).collect::<Vec<_>>());
        let stage = &report.stages[1];
        // Four items each of 1 and 2 extra attempts.
        assert_eq!(stage.retried, 4 + 8);
        assert_eq!((stage.items_out, stage.failed, stage.skipped), (12, 0, 0));
        assert!(calls.lock().unwrap().values().all(|&n| n <= 3));
        check_balanced(&report);
    });
}

fn retry_waits_on_the_runtime_timer(rt: Rt) {
    rt.block_on(|env| async move {
        let calls = Arc::new(Mutex::new(0u32));
        let seen = calls.clone();
        let start = Instant::now();
        let (out, _) = producer::iter([5u32])
            .try_map(move |x| {
                let mut n = seen.lock().unwrap();
                *n += 1;
                if *n < 4 {
                    Err(Bad(x))
                } else {
                    Ok(x)
                }
            })
            .on_error(ErrorPolicy::Retry {
                attempts: 3,
                backoff: Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)),
            })
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [5]);
        // 10 + 20 + 40 ms of backoff, at least.
        assert!(start.elapsed() >= Duration::from_millis(70));
    });
}

fn exhausted_retries_stop_the_run(rt: Rt) {
    rt.block_on(|env| async move {
        let calls = Arc::new(Mutex::new(0u32));
        let seen = calls.clone();
        let result = producer::iter(0..5u32)
            .try_map(move |x| {
                *seen.lock().unwrap() += 1;
                if x == 2 {
                    Err(Bad(x))
                } else {
                    Ok(x)
                }
            })
            .on_error(ErrorPolicy::Retry {
                attempts: 3,
                backoff: Backoff::none(),
            })
            .named("flaky")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        let err = result.unwrap_err();
        assert_eq!(err.stage(), "flaky");
        assert_eq!(err.to_string(), "stage `flaky` failed: bad item 2");
        // Items 0 and 1 once, item 2 four times, nothing after.
        assert_eq!(*calls.lock().unwrap(), 2 + 4);
    });
}

fn dead_letters_get_item_error_and_stage(rt: Rt) {
    rt.block_on(|env| async move {
        let (sink, store) = letters();
        let (out, report) = producer::iter(0..10u32)
            .try_map(|x| match x {
                4 => panic!("four"),
                7 => Err(Bad(x)),
                _ => Ok(x),
            })
            .on_error(ErrorPolicy::dead_letter(sink))
            .named("parse")
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [0, 1, 2, 3, 5, 6, 8, 9]);
        let letters = store.lock().unwrap();
        let got: Vec<(u32, String, &str, bool)> = letters
            .iter()
            .map(|l| {
                (
                    l.item,
                    l.error.to_string(),
                    l.stage.as_str(),
                    l.error.is_panic(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (4, "panicked: four".to_string(), "parse", true),
                (7, "bad item 7".to_string(), "parse", false),
            ]
        );
        let stage = report.stage("parse").unwrap();
        assert_eq!(
            (stage.items_in, stage.items_out, stage.dead_lettered),
            (10, 8, 2)
        );
        check_balanced(&report);
    });
}

fn dead_letter_consumer_is_closed_at_the_end(rt: Rt) {
    rt.block_on(|env| async move {
        let (tx, rx) = futures::channel::mpsc::channel::<DeadLetter<u32>>(1);
        let collector = std::thread::spawn(move || {
            futures::executor::block_on_stream(rx)
                .map(|l| l.item)
                .collect::<Vec<_>>()
        });
        let (out, _) = producer::iter(0..6u32)
            .try_map(|x| if x % 2 == 1 { Err(Bad(x)) } else { Ok(x) })
            .on_error(ErrorPolicy::dead_letter(tx))
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [0, 2, 4]);
        // The stream of letters ends: the stage closed the consumer.
        assert_eq!(collector.join().unwrap(), [1, 3, 5]);
    });
}

fn panics_follow_the_policy(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = producer::iter(0..6u32)
            .try_map(|x| {
                if x == 2 {
                    panic!("boom {x}")
                } else {
                    Ok::<_, Bad>(x)
                }
            })
            .on_error(ErrorPolicy::Skip)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [0, 1, 3, 4, 5]);
        assert_eq!(report.stages[1].skipped, 1);

        let result = producer::iter(0..6u32)
            .try_map(|x| {
                if x == 2 {
                    panic!("boom {x}")
                } else {
                    Ok::<_, Bad>(x)
                }
            })
            .named("risky")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        match result {
            Err(PipelineError::Panicked { stage, message, .. }) => {
                assert_eq!((stage.as_str(), message.as_str()), ("risky", "boom 2"));
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn try_then_retries_with_a_fresh_future(rt: Rt) {
    rt.block_on(|env| async move {
        let calls: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
        let seen = calls.clone();
        let sleeper = env.clone();
        let result = producer::iter(0..8u32)
            .try_then(move |x| {
                let n = {
                    let mut calls = seen.lock().unwrap();
                    let n = calls.entry(x).or_insert(0);
                    *n += 1;
                    *n
                };
                let env = sleeper.clone();
                async move {
                    env.sleep(Duration::from_millis(1)).await;
                    match (x, n) {
                        (3, 1) => Err(Bad(x)), // transient: retried once
                        (5, _) => Err(Bad(x)), // permanent
                        _ => Ok(x + 100),
                    }
                }
            })
            .on_error(ErrorPolicy::Retry {
                attempts: 1,
                backoff: Backoff::fixed(Duration::from_millis(1)),
            })
            .named("fetch")
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await;
        // Item 5 exhausts its retry: the run stops there.
        assert_eq!(
            result.unwrap_err().to_string(),
            "stage `fetch` failed: bad item 5"
        );
        {
            let calls = calls.lock().unwrap();
            assert_eq!((calls[&3], calls[&5]), (2, 2));
            assert!(!calls.contains_key(&6));
        }

        // Skip on the same stage: 5 and 6 skipped, 3 retried once.
        let (out, report) = producer::iter(0..8u32)
            .try_then(|x| async move {
                match x {
                    5 => Err(Bad(x)),
                    6 => panic!("six"),
                    _ => Ok(x + 100),
                }
            })
            .on_error(ErrorPolicy::Skip)
            .on_runtime(env.runtime)
            .run_collect()
            .await
            .unwrap();
        assert_eq!(out, [100, 101, 102, 103, 104, 107]);
        assert_eq!(report.stages[1].skipped, 2);
        assert!(!report.stages[1].busy.is_zero());
        check_balanced(&report);
    });
}

fn a_panic_in_a_plain_stage_counts_one_failed_item(rt: Rt) {
    rt.block_on(|env| async move {
        let result = producer::iter(0..10u32)
            .map(|x| if x == 4 { panic!("four") } else { x })
            .named("m")
            .on_runtime(env.runtime)
            .run_collect()
            .await;
        assert_eq!(result.unwrap_err().stage(), "m");
    });
}

fn stage_error_is_a_std_error(_rt: Rt) {
    let e = StageError::Failed(Box::new(Bad(1)));
    assert_eq!(e.to_string(), "bad item 1");
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "bad item 1"
    );
}

on_all_runtimes!(
    stop_is_the_default_and_names_the_stage,
    skip_counts_and_goes_on,
    skip_errors_needs_no_clone,
    retry_calls_again_with_the_same_item,
    retry_waits_on_the_runtime_timer,
    exhausted_retries_stop_the_run,
    dead_letters_get_item_error_and_stage,
    dead_letter_consumer_is_closed_at_the_end,
    panics_follow_the_policy,
    try_then_retries_with_a_fresh_future,
    a_panic_in_a_plain_stage_counts_one_failed_item,
    stage_error_is_a_std_error,
);

/// With the `tracing` feature: retries, skips and failures are events inside
/// the stage's span.
#[cfg(feature = "tracing")]
#[test]
fn tracing_reports_retries_skips_and_failures() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    struct Recorder {
        next_id: AtomicU64,
        spans: Mutex<Vec<String>>,
        events: Mutex<Vec<String>>,
    }

    #[derive(Default)]
    struct Fields(Vec<String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={:?}", field.name(), value));
        }
    }

    impl Subscriber for &'static Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut fields = Fields::default();
            span.record(&mut fields);
            self.spans.lock().unwrap().push(format!(
                "{} {}",
                span.metadata().name(),
                fields.0.join(" ")
            ));
            Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            self.events.lock().unwrap().push(format!(
                "{} {}",
                event.metadata().level(),
                fields.0.join(" ")
            ));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let recorder: &'static Recorder = Box::leak(Box::default());
    tracing::subscriber::with_default(recorder, || {
        let flaky = Arc::new(Mutex::new(0u32));
        futures::executor::block_on(
            producer::iter(0..4u32)
                .try_map(|x| if x == 1 { Err(Bad(x)) } else { Ok(x) })
                .on_error(ErrorPolicy::Skip)
                .named("skipper")
                .try_map(move |x| {
                    let mut n = flaky.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        Err(Bad(x))
                    } else {
                        Ok(x)
                    }
                })
                .on_error(ErrorPolicy::Retry {
                    attempts: 1,
                    backoff: Backoff::none(),
                })
                .named("retrier")
                .try_map(|x| if x == 3 { Err(Bad(x)) } else { Ok(x) })
                .named("stopper")
                .run_collect(),
        )
        .unwrap_err();
    });
    let spans = recorder.spans.lock().unwrap().clone();
    for stage in ["skipper", "retrier", "stopper"] {
        assert!(
            spans.contains(&format!("flowline.stage stage={stage} kind=fused")),
            "{spans:?}"
        );
    }
    let events = recorder.events.lock().unwrap().clone();
    let has = |level: &str, text: &str| {
        events
            .iter()
            .any(|e| e.starts_with(level) && e.contains(text))
    };
    assert!(has("WARN", "message=flowline: skipping item"), "{events:?}");
    assert!(has("WARN", "stage=skipper"), "{events:?}");
    assert!(has("WARN", "message=flowline: retrying item"), "{events:?}");
    assert!(has("WARN", "attempt=1"), "{events:?}");
    assert!(has("ERROR", "stage=stopper"), "{events:?}");
    assert!(has("ERROR", "error=bad item 3"), "{events:?}");
    // Every stage, fused or not, reports its counts in its span at the end.
    assert!(
        spans.contains(&"flowline.stage stage=iter#0 kind=source".to_string()),
        "{spans:?}"
    );
    assert!(
        has(
            "INFO",
            "stage=skipper items_in=4 items_out=3 filtered=0 dropped=0 grouped=0 discarded=0 retried=0 skipped=1"
        ),
        "{events:?}"
    );
    assert!(has("ERROR", "message=flowline: run failed"), "{events:?}");
}
