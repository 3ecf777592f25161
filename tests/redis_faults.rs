//! Faults against a real `redis-server`: a worker process killed with
//! SIGKILL mid-run, and the server itself killed and restarted mid-run.
//! Checked against the stream with plain Redis commands. The survivor runs
//! on smol and on tokio.
//!
//! The killed worker is this test binary run again as a child process, in
//! the ignored test `child_worker` (selected by the
//! `FLOWLINE_REDIS_CHILD_URL` variable).

mod redis_support;
mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowline::redis::{self as fr, CommitPolicy};
use redis_support::{int, wait_for, Server, GROUP, STREAM};
use support::Rt;

const RESULTS: &str = "jobs:results";
const CHILD_URL: &str = "FLOWLINE_REDIS_CHILD_URL";

fn number(e: fr::Entry) -> u64 {
    e.get_str("n").unwrap().parse().unwrap()
}

fn result_fields(n: u64, worker: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("n".to_string(), n.to_string().into_bytes()),
        ("worker".to_string(), worker.as_bytes().to_vec()),
    ]
}

/// The worker that gets killed: reads as consumer `doomed`, 2 ms per item,
/// writes a result per item, never stops on its own.
#[test]
#[ignore = "run as a child process by worker_killed_with_sigkill_*"]
fn child_worker() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    smol::block_on(async {
        let source = fr::source(&url, STREAM, GROUP, "doomed")
            .max_count(20)
            .block(Duration::from_millis(50))
            .no_reclaim()
            .connect()
            .await
            .unwrap();
        source
            .map(number)
            .then(|n| async move {
                smol::Timer::after(Duration::from_millis(2)).await;
                n
            })
            .map(|n| result_fields(n, "doomed"))
            .on(flowline::smol::SmolRuntime::new())
            .run(fr::sink(&url, RESULTS).batch(10))
            .await
            .unwrap();
    });
}

/// Results written per `n`.
fn results_by_n(server: &Server) -> Vec<u64> {
    server
        .field_values(RESULTS, "n")
        .iter()
        .map(|n| n.parse().unwrap())
        .collect()
}

fn worker_killed_with_sigkill_mid_run(rt: Rt) {
    let Some(server) = Server::start(&[]) else {
        return;
    };
    const N: u64 = 1000;
    server.fill(1, N);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_worker", "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_URL, server.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "the child worker to get going",
        Duration::from_secs(60),
        || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child worker exited early"
            );
            server.len(RESULTS) >= 100
        },
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = Instant::now();
    let orphans = server.pending_of("doomed");
    assert!(
        !orphans.is_empty(),
        "the killed worker held pending entries"
    );
    let processed_before = server.len(RESULTS);
    assert!(processed_before < N, "killed mid-run");

    let min_idle = Duration::from_millis(300);
    let url = server.url();
    let (stats, reclaimed_after) = rt.block_on(|env| async move {
        let source = fr::source(&url, STREAM, GROUP, "survivor")
            .max_count(50)
            .block(Duration::from_millis(20))
            .min_idle(min_idle)
            .reclaim_every(Duration::from_millis(100))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let handle = source
            .map(number)
            .map(|n| result_fields(n, "survivor"))
            .on_runtime(env.runtime.clone())
            .spawn(fr::sink(&url, RESULTS));
        let server = Server::attach(&url);
        let done = env
            .eventually(Duration::from_secs(60), || {
                server.pending_of("doomed").is_empty()
                    && server.pending(STREAM, GROUP) == 0
                    && int(server.group_info(GROUP, "lag")) == 0
            })
            .await;
        let reclaimed_after = killed_at.elapsed();
        assert!(done, "the survivor did not finish the stream");
        let report = handle.shutdown().await.unwrap();
        // The run's report has the same counts as the live stats, balanced.
        let counts = fr::source_reports(&report);
        assert_eq!(counts, stats.sources());
        assert!(fr::is_balanced(&report), "{report}");
        (counts[0].clone(), reclaimed_after)
    });
    eprintln!(
        "{} orphaned entries reclaimed {:?} after the kill (min_idle {min_idle:?}, reclaim every 100ms)",
        orphans.len(),
        reclaimed_after
    );
    // Every entry processed at least once, acked (none pending).
    let results = results_by_n(&server);
    let seen: BTreeSet<u64> = results.iter().copied().collect();
    assert_eq!(seen, (1..=N).collect::<BTreeSet<_>>());
    assert_eq!(server.pending(STREAM, GROUP), 0);
    assert_eq!(int(server.group_info(GROUP, "entries-read")), N as i64);
    // The survivor took over exactly the dead worker's pending entries, and
    // acked once every entry it took.
    assert_eq!(stats.reclaimed, orphans.len() as u64);
    assert_eq!(stats.redelivered, orphans.len() as u64);
    assert_eq!(stats.acked, stats.taken);
    assert_eq!(
        (stats.settled, stats.pending(), stats.dead_lettered),
        (0, 0, 0)
    );
    // Processed twice: only entries the dead worker held when it died.
    let duplicates = results.len() as u64 - N;
    assert!(
        duplicates <= orphans.len() as u64,
        "{duplicates} duplicates, {} orphans",
        orphans.len()
    );
}

fn server_restarted_mid_run(rt: Rt) {
    // Every write is on disk before the server answers, so a SIGKILL loses
    // nothing that was acknowledged.
    let Some(mut server) = Server::start(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    const N: u64 = 600;
    server.fill(1, N / 2);
    let url = server.url();
    let server_ref = &mut server;
    let stats = rt.block_on(|env| async move {
        let source = fr::source(&url, STREAM, GROUP, "w1")
            .max_count(20)
            .block(Duration::from_millis(20))
            .reconnect_for(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let handle = source
            .commit_policy(CommitPolicy::default().retry_for(Duration::from_secs(60)))
            .map(number)
            .then(|n| async move {
                smol::Timer::after(Duration::from_millis(1)).await;
                n
            })
            .map(|n| result_fields(n, "w1"))
            .on_runtime(env.runtime.clone())
            .spawn(
                fr::sink(&url, RESULTS)
                    .batch(10)
                    .retry_for(Duration::from_secs(60)),
            );
        assert!(
            env.eventually(Duration::from_secs(60), || server_ref.len(RESULTS) >= 50)
                .await,
            "the worker did not start"
        );
        server_ref.kill();
        env.sleep(Duration::from_millis(300)).await;
        server_ref.launch();
        server_ref.fill(N / 2 + 1, N / 2);
        let done = env
            .eventually(Duration::from_secs(90), || {
                // (XINFO's lag is unknown after a restart: count results instead.)
                server_ref.pending(STREAM, GROUP) == 0
                    && results_by_n(server_ref)
                        .into_iter()
                        .collect::<BTreeSet<_>>()
                        .len()
                        == N as usize
            })
            .await;
        assert!(done, "the worker did not finish after the restart");
        let report = handle.shutdown().await.unwrap();
        let counts = fr::source_reports(&report);
        assert_eq!(counts, stats.sources());
        counts[0].clone()
    });
    // Nothing acked that was not processed: no entry is pending, and every
    // one has a result.
    let seen: BTreeSet<u64> = results_by_n(&server).into_iter().collect();
    assert_eq!(seen, (1..=N).collect::<BTreeSet<_>>());
    assert_eq!(server.pending(STREAM, GROUP), 0);
    assert!(stats.read >= N, "{stats:?}");
    // Every entry read was taken; an XACK retried after the restart counts
    // only the ids still pending, so acked never exceeds taken.
    assert_eq!(stats.taken, stats.read, "{stats:?}");
    assert!(stats.acked <= stats.taken, "{stats:?}");
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

on_smol_and_tokio!(worker_killed_with_sigkill_mid_run, server_restarted_mid_run);
