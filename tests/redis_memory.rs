//! The Redis Streams connector over its in-memory backend: acks, settling
//! stages, failures that ack nothing, redelivery, reclaim, dead letters and
//! bad input. Runs on smol, tokio and runtime-free.

mod redis_support;
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use flowline::consumer;
use flowline::redis::backend::{
    Backend, BackendFuture, DeadLetterEntry, GroupKey, ReadFrom, Received,
};
use flowline::redis::is_balanced;
use flowline::redis::{
    sink_with, source_with, CommitPolicy, EntryId, Error, ErrorKind, Fields, MemoryBackend, OnError,
};
use flowline::{producer, BlockingOptions, PipelineError};
use redis_support::source_counts;
use support::{Rt, Stop};

const STREAM: &str = "jobs";
const GROUP: &str = "workers";

/// A backend holding `n` entries with field `n` = 1..=n.
async fn filled(n: u64) -> MemoryBackend {
    let mem = MemoryBackend::new();
    producer::iter(1..=n)
        .map(|i| vec![("n".to_string(), i.to_string().into_bytes())])
        .run(sink_with(mem.clone(), STREAM).batch(64))
        .await
        .unwrap();
    assert_eq!(mem.len(STREAM), n as usize);
    mem
}

fn number(e: flowline::redis::Entry) -> u64 {
    e.get_str("n").unwrap().parse().unwrap()
}

fn every_entry_taken_is_acked(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(1000).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .max_count(100)
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .boundary(64)
            .map(|n| n * 2)
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(
            out.into_vec(),
            (1..=1000).map(|n| n * 2).collect::<Vec<_>>()
        );
        assert_eq!(report.delivered(), 1000);
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        // read, taken, settled, acked, pending, reclaimed, redelivered, dead-lettered
        assert_eq!(source_counts(&report), [1000, 1000, 0, 1000, 0, 0, 0, 0]);
        assert!(is_balanced(&report));
        assert_eq!(
            flowline::redis::source_reports(&report)[0],
            stats.sources()[0]
        );
    });
}

fn filtered_items_settle_their_tokens(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(100).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .filter(|n| n % 3 == 0)
            .filter_map(|n| (n % 2 == 0).then_some(n))
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(out.into_vec(), (6..=96).step_by(6).collect::<Vec<u64>>());
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        assert_eq!(source_counts(&report), [100, 16, 84, 100, 0, 0, 0, 0]);
        assert!(is_balanced(&report));
        assert!(stats.sources()[0].is_balanced());
    });
}

fn batches_carry_every_token(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(95).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .max_count(50)
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .batch(10, Duration::from_secs(60))
            .map(|batch| batch.iter().sum::<u64>())
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        let sums = out.into_vec();
        assert_eq!(sums.len(), 10);
        assert_eq!(sums.iter().sum::<u64>(), 95 * 96 / 2);
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        let s = &stats.sources()[0];
        assert_eq!((s.read, s.taken, s.acked), (95, 95, 95));
        // Ten batches reached the consumer; their tokens ack 95 entries.
        assert_eq!(report.delivered(), 10);
        assert_eq!(source_counts(&report), [95, 95, 0, 95, 0, 0, 0, 0]);
        assert!(is_balanced(&report));
    });
}

fn concurrent_and_blocking_stages_keep_tokens(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(300).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .max_count(64)
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        source
            .map(number)
            .map_concurrent(8, |n| async move { n + 1 })
            .map_concurrent_unordered(8, |n| async move { n * 10 })
            .map_blocking_with(BlockingOptions::new().parallelism(2), |n| n + 3)
            .map_blocking_with(BlockingOptions::new().parallelism(2).unordered(), |n| n - 3)
            .then(|n| async move { n / 10 })
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        let mut got = out.into_vec();
        got.sort_unstable();
        assert_eq!(got, (2..=301).collect::<Vec<u64>>());
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        assert!(stats.sources()[0].is_balanced());
    });
}

fn try_map_policies_settle_or_leave_pending(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(10).await;
        let parse = |n: u64| {
            if n % 4 == 0 {
                Err(format!("bad {n}"))
            } else {
                Ok(n)
            }
        };
        // Skip: the failed items are acked.
        let source = source_with(mem.clone(), STREAM, "skip", "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let mut out = consumer::collect();
        source
            .map(number)
            .try_map(OnError::Skip, parse)
            .on_runtime(env.runtime.clone())
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(out.into_vec(), [1, 2, 3, 5, 6, 7, 9, 10]);
        assert_eq!(mem.pending(STREAM, "skip"), 0);
        assert_eq!(mem.len("jobs:dead"), 0);

        // DeadLetter: moved to jobs:dead with the original fields and the reason.
        let source = source_with(mem.clone(), STREAM, "dead", "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let report = source
            .map(number)
            .try_map(OnError::DeadLetter, parse)
            .on_runtime(env.runtime.clone())
            .run(consumer::discard())
            .await
            .unwrap();
        assert_eq!(source_counts(&report), [10, 8, 2, 10, 0, 0, 0, 2]);
        assert!(is_balanced(&report));
        assert_eq!(mem.pending(STREAM, "dead"), 0);
        let dead = mem.entries("jobs:dead");
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].get_str("n"), Some("4"));
        assert_eq!(dead[0].get_str("reason"), Some("bad 4"));
        assert_eq!(dead[1].get_str("n"), Some("8"));
        let ids = mem.entries(STREAM);
        assert_eq!(
            dead[1].get_str("dead_letter_of"),
            Some(ids[7].id.to_string().as_str())
        );
        let s = &stats.sources()[0];
        assert_eq!(
            (s.taken, s.settled, s.dead_lettered, s.acked),
            (8, 2, 2, 10)
        );

        // Stop: the run fails naming the stage; the failed entry stays pending.
        let source = source_with(mem.clone(), STREAM, "stop", "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let err = source
            .map(number)
            .try_map(OnError::Stop, parse)
            .named("parse")
            .on_runtime(env.runtime)
            .run(consumer::discard())
            .await
            .unwrap_err();
        let PipelineError::Failed { stage, source, .. } = err else {
            panic!("expected Failed, got {err:?}")
        };
        assert_eq!(
            (stage.as_str(), source.to_string()),
            ("parse", "bad 4".into())
        );
        let pending = mem.pending_entries(STREAM, "stop");
        assert!(pending.iter().any(|(id, _, _)| *id == ids[3].id));
    });
}

fn try_then_settles_like_try_map(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(6).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .try_then(OnError::DeadLetter, |n| async move {
                if n % 3 == 0 {
                    Err(format!("no {n}"))
                } else {
                    Ok(n * 100)
                }
            })
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(out.into_vec(), [100, 200, 400, 500]);
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        let reasons: Vec<String> = mem
            .entries("jobs:dead")
            .iter()
            .map(|e| e.get_str("reason").unwrap().to_string())
            .collect();
        assert_eq!(reasons, ["no 3", "no 6"]);
        let s = &stats.sources()[0];
        assert_eq!((s.taken, s.settled, s.dead_lettered, s.acked), (4, 2, 2, 6));
        assert_eq!(source_counts(&report), [6, 4, 2, 6, 0, 0, 0, 2]);
        assert!(is_balanced(&report));
    });
}

fn a_failed_consumer_acks_nothing_more(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(10).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let failing = consumer::from_fn(|n: u64| async move {
            if n == 5 {
                Err(std::io::Error::other("disk full"))
            } else {
                Ok(())
            }
        });
        let err = source
            .map(number)
            .commit_policy(CommitPolicy::default().max_batch(1000))
            .on_runtime(env.runtime)
            .run(failing)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        // The items before 5 were never flushed by a successful close: all
        // ten entries stay pending, to be delivered again.
        assert_eq!(mem.pending(STREAM, GROUP), 10);
        assert_eq!(stats.sources()[0].acked, 0);
        // All ten read at once; the consumer took 1..=5 (5 refused): nothing acked.
        assert_eq!(source_counts(err.report()), [10, 5, 0, 0, 10, 0, 0, 0]);
        assert!(!is_balanced(err.report()));
    });
}

fn a_panicking_stage_leaves_entries_pending_for_redelivery(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(5).await;
        let run = |panic_on: Option<u64>| {
            let mem = mem.clone();
            let rt = env.runtime.clone();
            async move {
                let source = source_with(mem, STREAM, GROUP, "c1")
                    .stop_when_empty()
                    .block(Duration::from_millis(5))
                    .connect()
                    .await
                    .unwrap();
                let stats = source.stats();
                let mut out = consumer::collect();
                let result = source
                    .map(number)
                    .map(move |n| {
                        assert_ne!(Some(n), panic_on, "poison");
                        n
                    })
                    .named("work")
                    .on_runtime(rt)
                    .run(&mut out)
                    .await;
                (result, out.into_vec(), stats.sources()[0].clone())
            }
        };
        let (result, _, _) = run(Some(3)).await;
        let Err(PipelineError::Panicked { stage, report, .. }) = result else {
            panic!("expected a panic, got {result:?}")
        };
        assert_eq!(stage, "work");
        assert_eq!(mem.pending(STREAM, GROUP), 5);
        // Read all five, the consumer took 1 and 2, the run acked nothing.
        assert_eq!(source_counts(&report), [5, 2, 0, 0, 5, 0, 0, 0]);

        let (result, items, stats) = run(None).await;
        let report = result.unwrap();
        assert_eq!(items, [1, 2, 3, 4, 5]);
        assert_eq!((stats.read, stats.redelivered, stats.acked), (5, 5, 5));
        assert_eq!(source_counts(&report), [5, 5, 0, 5, 0, 0, 5, 0]);
        assert!(is_balanced(&report));
        assert_eq!(mem.pending(STREAM, GROUP), 0);
    });
}

fn a_poison_entry_is_dead_lettered_after_max_deliveries(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(3).await;
        let mut outcomes = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..4 {
            // One entry per read, acked as soon as the next item comes:
            // only the poison entry is ever left pending by a failed run.
            let source = source_with(mem.clone(), STREAM, GROUP, "c1")
                .max_count(1)
                .max_deliveries(2)
                .stop_when_empty()
                .block(Duration::from_millis(5))
                .connect()
                .await
                .unwrap();
            let stats = source.stats();
            let result = source
                .commit_policy(CommitPolicy::default().max_batch(1))
                .map(number)
                .map(|n| {
                    assert_ne!(n, 2, "poison");
                    n
                })
                .on_runtime(env.runtime.clone())
                .run(consumer::discard())
                .await;
            let report = match &result {
                Ok(report) => report,
                Err(e) => e.report(),
            };
            assert_eq!(
                flowline::redis::source_reports(report)[0],
                stats.sources()[0]
            );
            counts.push(source_counts(report));
            outcomes.push((result.is_ok(), stats.sources()[0].dead_lettered));
        }
        // read, taken, settled, acked, pending, reclaimed, redelivered, dead-lettered
        assert_eq!(
            counts,
            [
                // 1 taken and acked, 2 read and panics
                [2, 1, 0, 1, 1, 0, 0, 0],
                // 2 again (own pending entry): redelivered, panics
                [1, 0, 0, 0, 1, 0, 1, 0],
                // 2 over max_deliveries: dead-lettered before it is read; 3 done
                [1, 1, 0, 1, 0, 0, 0, 1],
                // nothing left
                [0, 0, 0, 0, 0, 0, 0, 0],
            ]
        );
        // Delivered once, twice (both panic), then a third time: over the
        // limit, dead-lettered by the source, and the run completes.
        assert_eq!(outcomes, [(false, 0), (false, 0), (true, 1), (true, 0)]);
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        let dead = mem.entries("jobs:dead");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].get_str("n"), Some("2"));
        assert_eq!(dead[0].get_str("deliveries"), Some("3"));
    });
}

fn idle_entries_of_a_dead_consumer_are_reclaimed(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(8).await;
        let key = GroupKey::new(STREAM, GROUP);
        mem.create_group(key.clone(), true).await.unwrap();
        // "dead" takes five entries and never acks them.
        let taken = mem
            .read(key, "dead".into(), ReadFrom::New(Duration::ZERO), 5)
            .await
            .unwrap();
        assert_eq!(taken.len(), 5);
        env.sleep(Duration::from_millis(30)).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "live")
            .min_idle(Duration::from_millis(20))
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        let mut got = out.into_vec();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8]);
        let s = &stats.sources()[0];
        assert_eq!((s.read, s.reclaimed, s.redelivered, s.acked), (8, 5, 5, 8));
        assert_eq!(source_counts(&report), [8, 8, 0, 8, 0, 5, 5, 0]);
        assert!(is_balanced(&report));
        assert_eq!(mem.pending(STREAM, GROUP), 0);
    });
}

fn shutdown_commits_what_the_consumer_took(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(200).await;
        // A live source: it never ends on its own.
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let handle = source
            .map(number)
            .on_runtime(env.runtime.clone())
            .spawn(consumer::discard());
        let report = env
            .stop_when(
                handle,
                Duration::from_secs(20),
                || stats.sources()[0].taken == 200,
                Stop::Shutdown,
            )
            .await
            .unwrap();
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        assert_eq!(stats.sources()[0].acked, 200);
        assert_eq!(source_counts(&report), [200, 200, 0, 200, 0, 0, 0, 0]);
        assert!(is_balanced(&report));
    });
}

fn abort_acks_nothing_more(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(10).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        // The consumer hangs on item 3: the run never flushes it.
        let handle = source
            .map(number)
            .on_runtime(env.runtime.clone())
            .spawn(consumer::for_each(|n: u64| async move {
                if n == 3 {
                    futures::future::pending::<()>().await;
                }
            }));
        let result = env
            .stop_when(
                handle,
                Duration::from_secs(20),
                || stats.sources()[0].taken == 3,
                Stop::Abort,
            )
            .await;
        let Err(PipelineError::Aborted { report, .. }) = result else {
            panic!("expected an abort, got {result:?}")
        };
        let s = &stats.sources()[0];
        assert_eq!((s.taken, s.acked), (3, 0));
        // All ten read and still pending; three taken, none acked.
        assert_eq!(source_counts(&report), [10, 3, 0, 0, 10, 0, 0, 0]);
        assert!(!is_balanced(&report));
        assert_eq!(mem.pending(STREAM, GROUP), 10);
    });
}

fn bad_input_is_a_clear_error_before_anything_runs(rt: Rt) {
    rt.block_on(|_env| async move {
        let mem = MemoryBackend::new();
        mem.set_other_type("not-a-stream");
        let err = source_with(mem.clone(), "not-a-stream", GROUP, "c1")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongType);
        assert_eq!((err.stream(), err.group()), ("not-a-stream", Some(GROUP)));

        let err = source_with(mem.clone(), STREAM, GROUP, "c1")
            .create_group(false)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoGroup);
        assert!(err.to_string().contains("`jobs` group `workers`"), "{err}");

        let err = source_with(mem, STREAM, GROUP, "c1")
            .max_count(0)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.to_string().contains("max_count must be at least 1"),
            "{err}"
        );
    });
}

fn sink_trims_to_max_len(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = MemoryBackend::new();
        producer::iter(0..100u32)
            .map(|i| vec![("i".to_string(), i.to_string().into_bytes())])
            .on_runtime(env.runtime)
            .run(sink_with(mem.clone(), "log").max_len(10).batch(7))
            .await
            .unwrap();
        let entries = mem.entries("log");
        assert_eq!(entries.len(), 10);
        assert_eq!(entries[0].get_str("i"), Some("90"));
    });
}

fn merged_sources_are_both_acked(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(50).await;
        producer::iter(1..=30u64)
            .map(|i| vec![("n".to_string(), (1000 + i).to_string().into_bytes())])
            .run(sink_with(mem.clone(), "other"))
            .await
            .unwrap();
        let open = |stream: &'static str| {
            source_with(mem.clone(), stream, GROUP, "c1")
                .stop_when_empty()
                .block(Duration::from_millis(5))
                .build()
        };
        let merged = open(STREAM).merge(open("other"));
        let stats = merged.stats();
        let (sum, report) = {
            let mut out = consumer::collect();
            let report = merged
                .map(number)
                .on_runtime(env.runtime)
                .run(&mut out)
                .await
                .unwrap();
            (out.into_vec().iter().sum::<u64>(), report)
        };
        assert_eq!(sum, 50 * 51 / 2 + 30 * 1000 + 30 * 31 / 2);
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        assert_eq!(mem.pending("other", GROUP), 0);
        let acked: Vec<u64> = stats.sources().iter().map(|s| s.acked).collect();
        assert_eq!(acked, [50, 30]);
        let sources = flowline::redis::source_reports(&report);
        let per_source: Vec<_> = sources
            .iter()
            .map(|s| {
                (
                    s.stream.as_str(),
                    s.group.as_str(),
                    s.read,
                    s.acked,
                    s.pending(),
                )
            })
            .collect();
        assert_eq!(
            per_source,
            [("jobs", GROUP, 50, 50, 0), ("other", GROUP, 30, 30, 0)]
        );
        assert!(is_balanced(&report));
        assert_eq!(stats.total().acked, 80);
    });
}

/// With a boundary of 64 after the source and a consumer stalled on its
/// tenth item, the source asks for no more than the boundary has room for
/// (a fixed `COUNT` of 256 would read 256 at once): the entries read stop
/// at what the consumer took, the queue and the receiver's batch in hand.
fn count_follows_free_downstream_capacity(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(1000).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .max_count(256)
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let (open, gate) = futures::channel::oneshot::channel::<()>();
        let gate = futures::FutureExt::shared(gate);
        let handle = source
            .map(number)
            .boundary(64)
            .on_runtime(env.runtime.clone())
            .spawn(consumer::for_each(move |n: u64| {
                let gate = gate.clone();
                async move {
                    if n == 10 {
                        let _ = gate.await;
                    }
                }
            }));
        let (result, ()) = futures::join!(handle, async {
            // Stalled: the queue fills behind the ten items taken.
            assert!(
                env.eventually(Duration::from_secs(20), || stats.sources()[0].read >= 64)
                    .await
            );
            env.sleep(Duration::from_millis(50)).await;
            let read = stats.sources()[0].read;
            // 10 taken + 64 queued + at most a batch of 16 in the receiver's hand.
            assert!(read <= 90, "read {read} entries for a queue of 64");
            open.send(()).unwrap();
        });
        result.unwrap();
        let counts = mem.read_counts();
        assert!(counts.iter().all(|&c| c <= 63), "COUNTs {counts:?}");
        assert_eq!(mem.pending(STREAM, GROUP), 0);
        let s = &stats.sources()[0];
        assert_eq!((s.read, s.taken, s.acked), (1000, 1000, 1000));
    });
}

/// Without a boundary the source reads `max_count` at a time.
fn without_a_boundary_count_is_max_count(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(100).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .max_count(40)
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let mut out = consumer::collect();
        source
            .map(number)
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(out.into_vec(), (1..=100).collect::<Vec<u64>>());
        let counts = mem.read_counts();
        assert!(counts.len() >= 4, "{counts:?}");
        assert!(counts.iter().all(|&c| c == 40), "{counts:?}");
    });
}

/// A backend that loses its connection: the first `fail_acks` acks fail,
/// and every read fails while `fail_reads` is set.
#[derive(Debug, Clone, Default)]
struct Flaky {
    mem: MemoryBackend,
    fail_acks: Arc<AtomicUsize>,
    fail_reads: Arc<AtomicBool>,
    ack_attempts: Arc<AtomicUsize>,
}

fn lost(key: &GroupKey, op: &'static str) -> Error {
    Error::new(
        ErrorKind::Connection,
        &key.stream,
        Some(&key.group),
        op,
        "connection lost",
    )
}

impl Backend for Flaky {
    fn create_group(&self, key: GroupKey, create: bool) -> BackendFuture<()> {
        self.mem.create_group(key, create)
    }
    fn read(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        from: ReadFrom,
        count: usize,
    ) -> BackendFuture<Vec<Received>> {
        if self.fail_reads.load(SeqCst) {
            return Box::pin(futures::future::ready(Err(lost(&key, "XREADGROUP"))));
        }
        self.mem.read(key, consumer, from, count)
    }
    fn claim(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        min_idle: Duration,
        start: EntryId,
        count: usize,
    ) -> BackendFuture<(EntryId, Vec<Received>)> {
        self.mem.claim(key, consumer, min_idle, start, count)
    }
    fn ack(&self, key: GroupKey, ids: Vec<EntryId>) -> BackendFuture<u64> {
        self.ack_attempts.fetch_add(1, SeqCst);
        let failing = self
            .fail_acks
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Box::pin(futures::future::ready(Err(lost(&key, "XACK"))));
        }
        self.mem.ack(key, ids)
    }
    fn dead_letter(
        &self,
        key: GroupKey,
        dead_stream: Arc<str>,
        letters: Vec<DeadLetterEntry>,
    ) -> BackendFuture<()> {
        self.mem.dead_letter(key, dead_stream, letters)
    }
    fn add(
        &self,
        stream: Arc<str>,
        entries: Arc<Vec<Fields>>,
        max_len: Option<usize>,
    ) -> BackendFuture<Vec<EntryId>> {
        self.mem.add(stream, entries, max_len)
    }
    fn reader(&self) -> Arc<dyn Backend> {
        Arc::new(self.clone())
    }
}

/// Acks that fail with a lost connection are retried every 100 ms on the
/// pipeline's clock: 50 failures take 5 s of virtual time and the run
/// completes with everything acked; failures past `retry_for` (30 s) fail
/// the run after 30 s of virtual time, acking nothing.
fn ack_retries_wait_on_the_pipeline_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let flaky = Flaky {
            mem: filled(20).await,
            ..Flaky::default()
        };
        flaky.fail_acks.store(50, SeqCst);
        let source = source_with(flaky.clone(), STREAM, GROUP, "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let report = source
            .map(number)
            .on_runtime(env.runtime.clone())
            .run(consumer::discard())
            .await
            .unwrap();
        assert_eq!(flaky.ack_attempts.load(SeqCst), 51);
        assert_eq!(source_counts(&report), [20, 20, 0, 20, 0, 0, 0, 0]);
        assert_eq!(stats.sources()[0].acked, 20);
        assert_eq!(flaky.mem.pending(STREAM, GROUP), 0);
        assert!(
            report.elapsed >= Duration::from_secs(5),
            "{:?}",
            report.elapsed
        );
        assert!(
            report.elapsed < Duration::from_secs(6),
            "{:?}",
            report.elapsed
        );

        // Never back within retry_for: the run fails after 30 s.
        flaky.fail_acks.store(usize::MAX, SeqCst);
        let source = source_with(flaky.clone(), STREAM, "g2", "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let start = env.now();
        let err = source
            .map(number)
            .commit_policy(CommitPolicy::default().retry_for(Duration::from_secs(30)))
            .on_runtime(env.runtime.clone())
            .run(consumer::discard())
            .await
            .unwrap_err();
        let waited = env.now() - start;
        assert!(err.to_string().contains("connection lost"), "{err}");
        assert!(waited >= Duration::from_secs(30), "{waited:?}");
        assert!(waited < Duration::from_secs(31), "{waited:?}");
        assert_eq!(flaky.mem.pending(STREAM, "g2"), 20);
        assert_eq!(source_counts(err.report()), [20, 20, 0, 0, 20, 0, 0, 0]);
    });
}

/// Reads that fail with a lost connection are retried for `reconnect_for`
/// (here 30 s of virtual time), then fail the run naming the stream.
fn read_retries_wait_on_the_pipeline_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let flaky = Flaky {
            mem: filled(5).await,
            ..Flaky::default()
        };
        flaky.fail_reads.store(true, SeqCst);
        let source = source_with(flaky.clone(), STREAM, GROUP, "c1")
            .reconnect_for(Duration::from_secs(30))
            .stop_when_empty()
            .connect()
            .await
            .unwrap();
        let start = env.now();
        let err = source
            .map(number)
            .on_runtime(env.runtime.clone())
            .run(consumer::discard())
            .await
            .unwrap_err();
        let waited = env.now() - start;
        let PipelineError::Failed { stage, source, .. } = err else {
            panic!("expected Failed, got {err:?}")
        };
        assert_eq!(stage, "redis jobs/workers");
        assert!(source.to_string().contains("connection lost"), "{source}");
        assert!(waited >= Duration::from_secs(30), "{waited:?}");
        assert!(waited < Duration::from_secs(31), "{waited:?}");
    });
}

/// `max_interval` on the pipeline's clock: a consumer taking 4 s (virtual)
/// per item, with `max_interval` 10 s and batches too large to fill, sees
/// a commit every third item (due at the next item after 10 s).
fn max_interval_commits_on_the_pipeline_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(10).await;
        let source = source_with(mem.clone(), STREAM, GROUP, "c1")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let acked = stats.clone();
        source
            .map(number)
            .commit_policy(
                CommitPolicy::default()
                    .max_batch(1000)
                    .max_interval(Duration::from_secs(10)),
            )
            .on_runtime(env.runtime.clone())
            .run(consumer::for_each(move |_n: u64| {
                log.lock().unwrap().push(acked.sources()[0].acked);
                flowline::time::sleep(Duration::from_secs(4))
            }))
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]);
        assert_eq!(stats.sources()[0].acked, 10);
    });
}

/// Entries a dead consumer left pending are reclaimed once idle for
/// `min_idle` (60 s), looked for every `reclaim_every` (10 s): on the
/// virtual clock, after 60–70 s of virtual time.
fn reclaim_waits_on_the_pipeline_clock(rt: Rt) {
    rt.block_on(|env| async move {
        let mem = filled(6).await;
        // "dead" reads all six and fails on the first: nothing acked.
        let dead = source_with(mem.clone(), STREAM, GROUP, "dead")
            .stop_when_empty()
            .block(Duration::from_millis(5))
            .connect()
            .await
            .unwrap();
        let result = dead
            .map(number)
            .try_map(OnError::Stop, |_| Err::<u64, _>("crash"))
            .on_runtime(env.runtime.clone())
            .run(consumer::discard())
            .await;
        assert!(result.is_err());
        assert_eq!(mem.pending(STREAM, GROUP), 6);
        let start = env.now();
        let live = source_with(mem.clone(), STREAM, GROUP, "live")
            .min_idle(Duration::from_secs(60))
            .reclaim_every(Duration::from_secs(10))
            .connect()
            .await
            .unwrap();
        let stats = live.stats();
        let handle = live
            .map(number)
            .on_runtime(env.runtime.clone())
            .spawn(consumer::discard());
        let report = env
            .stop_when(
                handle,
                Duration::from_secs(120),
                || stats.sources()[0].acked == 6,
                Stop::Shutdown,
            )
            .await
            .unwrap();
        let waited = env.now() - start;
        assert!(waited >= Duration::from_secs(60), "{waited:?}");
        assert!(waited < Duration::from_secs(71), "{waited:?}");
        let s = &stats.sources()[0];
        assert_eq!((s.reclaimed, s.redelivered, s.acked), (6, 6, 6));
        assert_eq!(source_counts(&report), [6, 6, 0, 6, 0, 6, 6, 0]);
        assert!(is_balanced(&report));
        assert_eq!(mem.pending(STREAM, GROUP), 0);
    });
}

on_virtual_clock!(
    ack_retries_wait_on_the_pipeline_clock,
    read_retries_wait_on_the_pipeline_clock,
    max_interval_commits_on_the_pipeline_clock,
    reclaim_waits_on_the_pipeline_clock,
);

on_all_runtimes!(
    count_follows_free_downstream_capacity,
    without_a_boundary_count_is_max_count,
    merged_sources_are_both_acked,
    every_entry_taken_is_acked,
    filtered_items_settle_their_tokens,
    batches_carry_every_token,
    concurrent_and_blocking_stages_keep_tokens,
    try_map_policies_settle_or_leave_pending,
    try_then_settles_like_try_map,
    a_failed_consumer_acks_nothing_more,
    a_panicking_stage_leaves_entries_pending_for_redelivery,
    a_poison_entry_is_dead_lettered_after_max_deliveries,
    idle_entries_of_a_dead_consumer_are_reclaimed,
    shutdown_commits_what_the_consumer_took,
    abort_acks_nothing_more,
    bad_input_is_a_clear_error_before_anything_runs,
    sink_trims_to_max_len,
);
