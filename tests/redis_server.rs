//! The Redis Streams connector against a real `redis-server`, started by
//! each test on a free loopback port in a temporary directory and stopped
//! at its end; results are checked with plain Redis commands (XPENDING,
//! XLEN, XINFO, XRANGE). Runs on smol and tokio.
//!
//! Without `redis-server` on `PATH` these tests print that they did not run
//! and pass, unless `FLOWLINE_REQUIRE_REDIS=1` (set by `.ci/run` in CI)
//! makes a missing server a failure.

mod redis_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use flowline::consumer;
use flowline::redis::{self as fr, ErrorKind};
use flowline::{producer, PipelineError};
use redis_support::{free_port, int, source_counts, Server, GROUP, STREAM};
use support::Rt;

fn number(e: fr::Entry) -> u64 {
    e.get_str("n").unwrap().parse().unwrap()
}

fn end_to_end_every_entry_read_once_and_acked(rt: Rt) {
    let Some(server) = Server::start(&[]) else {
        return;
    };
    let url = server.url();
    rt.block_on(|env| async move {
        // Producer pipeline: pipelined XADDs.
        let report = producer::iter(1..=5000u64)
            .map(|n| vec![("n".to_string(), n.to_string().into_bytes())])
            .on_runtime(env.runtime.clone())
            .run(fr::sink(&url, STREAM).batch(500))
            .await
            .unwrap();
        assert_eq!(report.delivered(), 5000);
        let source = fr::source(&url, STREAM, GROUP, "w1")
            .max_count(500)
            .block(Duration::from_millis(50))
            .stop_when_empty()
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        let report = source
            .map(number)
            .map(|n| n * 3)
            .on_runtime(env.runtime)
            .run(&mut out)
            .await
            .unwrap();
        assert_eq!(
            out.into_vec(),
            (1..=5000).map(|n| n * 3).collect::<Vec<u64>>()
        );
        let s = &stats.sources()[0];
        assert_eq!(
            (s.read, s.taken, s.acked, s.redelivered),
            (5000, 5000, 5000, 0)
        );
        assert!(s.is_balanced());
        // read, taken, settled, acked, pending, reclaimed, redelivered, dead-lettered
        assert_eq!(source_counts(&report), [5000, 5000, 0, 5000, 0, 0, 0, 0]);
        assert!(fr::is_balanced(&report));
    });
    assert_eq!(server.len(STREAM), 5000);
    assert_eq!(server.pending(STREAM, GROUP), 0);
    assert_eq!(int(server.group_info(GROUP, "entries-read")), 5000);
    assert_eq!(int(server.group_info(GROUP, "lag")), 0);
}

fn two_workers_share_the_stream(rt: Rt) {
    let Some(server) = Server::start(&[]) else {
        return;
    };
    server.fill(1, 3000);
    let url = server.url();
    rt.block_on(|env| async move {
        let worker = |name: &'static str| {
            let url = url.clone();
            let rt = env.runtime.clone();
            async move {
                let source = fr::source(&url, STREAM, GROUP, name)
                    .max_count(100)
                    .block(Duration::from_millis(50))
                    .stop_when_empty()
                    .connect()
                    .await
                    .unwrap();
                let mut out = consumer::collect();
                let report = source
                    .map(number)
                    .on_runtime(rt)
                    .run(&mut out)
                    .await
                    .unwrap();
                assert!(fr::is_balanced(&report));
                (out.into_vec(), source_counts(&report))
            }
        };
        let ((a, a_counts), (b, b_counts)) = futures::join!(worker("a"), worker("b"));
        // Each worker acked exactly what it read, and nothing is left pending.
        for (items, [read, taken, settled, acked, pending, reclaimed, redelivered, dead]) in
            [(&a, a_counts), (&b, b_counts)]
        {
            assert_eq!(read, items.len() as u64);
            assert_eq!((taken, settled, acked, pending), (read, 0, read, 0));
            assert_eq!((reclaimed, redelivered, dead), (0, 0, 0));
        }
        assert_eq!(a_counts[3] + b_counts[3], 3000);
        let mut all: Vec<u64> = a.into_iter().chain(b).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=3000).collect::<Vec<_>>(),
            "each entry exactly once"
        );
    });
    assert_eq!(server.pending(STREAM, GROUP), 0);
}

fn panics_leave_entries_pending_then_poison_goes_to_dead_letter(rt: Rt) {
    let Some(server) = Server::start(&[]) else {
        return;
    };
    server.fill(1, 3);
    let url = server.url();
    let poison_id: String = {
        let entries: Vec<(String, BTreeMap<String, String>)> =
            server.query(&["XRANGE", STREAM, "-", "+"]);
        entries[1].0.clone()
    };
    let server = &server;
    let poison = poison_id.clone();
    rt.block_on(|env| async move {
        let poison_id = poison;
        let run = || async {
            let source = fr::source(&url, STREAM, GROUP, "w1")
                .max_count(1)
                .max_deliveries(2)
                .block(Duration::from_millis(50))
                .stop_when_empty()
                .connect()
                .await
                .unwrap();
            let stats = source.stats();
            let mut out = consumer::collect();
            let result = source
                .commit_policy(fr::CommitPolicy::default().max_batch(1))
                .map(number)
                .map(|n| {
                    assert_ne!(n, 2, "poison");
                    n
                })
                .named("work")
                .on_runtime(env.runtime.clone())
                .run(&mut out)
                .await;
            (result, out.into_vec(), stats.sources()[0].clone())
        };
        // Two runs panic on entry 2: it stays pending, delivered once more each time.
        // read, taken, settled, acked, pending, reclaimed, redelivered, dead-lettered.
        // The first run's XACK of entry 1 may still be in flight when entry 2
        // panics: it lands on the server, but the report counts only acks
        // whose reply came back (`acked` 0 or 1, `pending` = read - acked).
        let expected = [[2, 1, 0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 1, 0, 1, 0]];
        for (deliveries, mut counts) in (1..=2).zip(expected) {
            let (result, _, _) = run().await;
            let Err(PipelineError::Panicked { stage, report, .. }) = result else {
                panic!("expected a panic, got {result:?}")
            };
            assert_eq!(stage, "work");
            assert_eq!(server.pending_of("w1"), [(poison_id.clone(), deliveries)]);
            let got = source_counts(&report);
            if deliveries == 1 && got[3] == 0 {
                (counts[3], counts[4]) = (0, 2);
            }
            assert_eq!(got, counts);
        }
        // The third delivery is over max_deliveries: dead-lettered, and the run completes.
        let (result, items, stats) = run().await;
        let report = result.unwrap();
        assert_eq!(items, [3]);
        assert_eq!(stats.dead_lettered, 1);
        assert_eq!(source_counts(&report), [1, 1, 0, 1, 0, 0, 0, 1]);
        assert!(fr::is_balanced(&report));
    });
    assert_eq!(server.pending(STREAM, GROUP), 0);
    assert_eq!(server.len("jobs:dead"), 1);
    assert_eq!(server.field_values("jobs:dead", "n"), ["2"]);
    assert_eq!(
        server.field_values("jobs:dead", "dead_letter_of"),
        [poison_id]
    );
    assert_eq!(server.field_values("jobs:dead", "deliveries"), ["3"]);
}

fn bad_input_names_stream_and_group(rt: Rt) {
    let Some(server) = Server::start(&[]) else {
        return;
    };
    let _: () = server.query(&["SET", "plain", "x"]);
    let url = server.url();
    rt.block_on(|_env| async move {
        let err = fr::source("http://nowhere", STREAM, GROUP, "c")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{err}");
        assert!(
            err.to_string()
                .starts_with("redis stream `jobs` group `workers`: connect:"),
            "{err}"
        );

        let dead_port = free_port();
        let err = fr::source(
            &format!("redis://127.0.0.1:{dead_port}/"),
            STREAM,
            GROUP,
            "c",
        )
        .connect()
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(err.to_string().contains("`jobs` group `workers`"), "{err}");

        let err = fr::source(&url, "plain", GROUP, "c")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongType, "{err}");
        assert!(
            err.to_string()
                .contains("redis stream `plain` group `workers`: XGROUP CREATE: WRONGTYPE"),
            "{err}"
        );

        let err = fr::source(&url, STREAM, "nobody", "c")
            .create_group(false)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoGroup, "{err}");
        assert!(err.to_string().contains("`jobs` group `nobody`"), "{err}");

        let err = producer::iter([vec![("a".to_string(), b"1".to_vec())]])
            .run(fr::sink(&url, "plain"))
            .await
            .unwrap_err();
        let PipelineError::Failed { source, .. } = &err else {
            panic!("{err:?}")
        };
        let source = source
            .downcast_ref::<fr::Error>()
            .expect("a flowline-redis error");
        assert_eq!(
            (source.kind(), source.stream()),
            (ErrorKind::WrongType, "plain"),
            "{err}"
        );
        assert!(
            err.to_string().contains("redis stream `plain`: XADD:"),
            "{err}"
        );
    });
}

macro_rules! on_smol_and_tokio {
    ($($name:ident),* $(,)?) => {
        mod smol_rt {
            $( #[test] fn $name() { super::$name(super::Rt::Smol) } )*
        }
        mod tokio_rt {
            $( #[test] fn $name() { super::$name(super::Rt::Tokio) } )*
        }
    };
}

// The `redis` client runs on smol's executor when no runtime is current.
#[test]
fn end_to_end_runtime_free() {
    end_to_end_every_entry_read_once_and_acked(Rt::Free);
}

on_smol_and_tokio!(
    end_to_end_every_entry_read_once_and_acked,
    two_workers_share_the_stream,
    panics_leave_entries_pending_then_poison_goes_to_dead_letter,
    bad_input_names_stream_and_group,
);
