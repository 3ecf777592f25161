//! W7 — scale out through Redis Streams, end to end.
//!
//! A producer `XADD`s N small entries (`n` = 0..N) while a worker reads them
//! through a consumer group with `XREADGROUP`, sums `n` and acks every
//! entry; a run counts only if the sum is right and `XPENDING` shows 0
//! pending at the end. Producer and worker run concurrently on the same
//! runtime, against a `redis-server` the bench starts on a free loopback
//! port (skipped, with a note, when `redis-server` is not on `PATH`).
//!
//! - flowline: `producer::iter(..).run(redis::sink(..))` with two `XADD`
//!   pipelines in flight (`max_in_flight(2)`: one connection executes them
//!   in order) and `redis::source(..).map(..).spawn(for_each)`, shut down
//!   once N are in.
//! - hand-written (best): pipelined `XADD`s in batches of 1000, one batch in
//!   flight; `XREADGROUP COUNT 1000 BLOCK` on its own connection, replies
//!   parsed straight from `redis::Value`, each batch's `XACK` in flight
//!   during the next read.
//! - naive: one command per item — `XADD`; `XREADGROUP COUNT 1`; `XACK` — on
//!   N / 50 items.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowline::consumer;
use flowline::producer;
use flowline::redis::redis::{self as client, aio::MultiplexedConnection, Value};
use flowline::redis::{self as fr};
use flowline::runtime::Runtime;

use crate::harness::{tokio_runtime, Config, Report};

const W: &str = "W7";
const STREAM: &str = "w7";
const GROUP: &str = "g";
const BATCH: usize = 1000;

/// The bench's own redis-server, killed on drop.
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Server {
    fn start() -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("flowline-bench-w7-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("redis://127.0.0.1:{port}/");
        let server = Server { child, dir, url };
        let start = Instant::now();
        while server.sync().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn sync(&self) -> Option<client::Connection> {
        let mut c = client::Client::open(self.url.as_str())
            .ok()?
            .get_connection()
            .ok()?;
        client::cmd("PING").query::<String>(&mut c).ok()?;
        Some(c)
    }

    /// A fresh stream with an empty group, before each run.
    fn reset(&self) {
        let mut c = self.sync().expect("redis-server");
        let _: () = client::cmd("DEL").arg(STREAM).query(&mut c).unwrap();
        let _: () = client::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut c)
            .unwrap();
    }

    fn pending(&self) -> u64 {
        let mut c = self.sync().expect("redis-server");
        let (n, ..): (u64, Value, Value, Value) = client::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query(&mut c)
            .unwrap();
        n
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Which executor a case runs on.
#[derive(Clone, Copy)]
enum On<'a> {
    Smol,
    Tokio(&'a tokio::runtime::Runtime),
}

impl On<'_> {
    fn block_on<F: std::future::Future>(self, f: F) -> F::Output {
        match self {
            On::Smol => smol::block_on(f),
            On::Tokio(rt) => rt.block_on(f),
        }
    }

    fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            On::Smol => Arc::new(flowline::smol::SmolRuntime::new()),
            On::Tokio(rt) => Arc::new(flowline::tokio::TokioRuntime::from_handle(
                rt.handle().clone(),
            )),
        }
    }
}

fn fields(n: u64) -> Vec<(String, Vec<u8>)> {
    vec![("n".to_string(), n.to_string().into_bytes())]
}

fn expected_sum(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// The flowline producer and worker pipelines; returns the sum the worker saw.
fn flowline_case(server: &Server, on: On<'_>, n: u64) -> u64 {
    server.reset();
    let url = server.url.clone();
    let rt = on.runtime();
    let sum = on.block_on(async move {
        let source = fr::source(&url, STREAM, GROUP, "worker")
            .max_count(BATCH)
            .block(Duration::from_millis(100))
            .no_reclaim()
            .connect()
            .await
            .expect("connect");
        let sum = Arc::new(AtomicU64::new(0));
        let (done_tx, done_rx) = futures::channel::oneshot::channel();
        let done_tx = Mutex::new(Some(done_tx));
        let (total, mut seen) = (sum.clone(), 0u64);
        let worker = source
            .map(|e| {
                e.get_str("n")
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .on_runtime(Some(rt.clone()))
            .spawn(consumer::for_each(move |x: u64| {
                total.fetch_add(x, Ordering::Relaxed);
                seen += 1;
                if seen == n {
                    if let Some(tx) = done_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
                async {}
            }));
        let produce = producer::iter(0..n)
            .map(fields)
            .on_runtime(Some(rt))
            .run(fr::sink(&url, STREAM).batch(BATCH).max_in_flight(2));
        let (produced, _) = futures::join!(produce, done_rx);
        produced.expect("producer");
        worker.shutdown().await.expect("worker");
        sum.load(Ordering::Relaxed)
    });
    checked(server, sum)
}

/// The sum, or 0 (a wrong result) if anything was left pending.
fn checked(server: &Server, sum: u64) -> u64 {
    if server.pending() == 0 {
        sum
    } else {
        0
    }
}

async fn connect(url: &str, response_timeout: Option<Duration>) -> MultiplexedConnection {
    let config = client::AsyncConnectionConfig::new().set_response_timeout(response_timeout);
    client::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// Ids and the sum of `n` in an `XREADGROUP` reply, parsed from `Value`.
fn parse_read(reply: Value, ids: &mut Vec<Vec<u8>>) -> u64 {
    let mut sum = 0;
    let Value::Array(streams) = reply else {
        return 0;
    };
    for stream in streams {
        let Value::Array(mut pair) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            continue;
        };
        for entry in entries {
            let Value::Array(mut parts) = entry else {
                continue;
            };
            if let Some(Value::Array(kv)) = parts.pop() {
                if let Some(Value::BulkString(v)) = kv.get(1) {
                    sum += std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
            if let Some(Value::BulkString(id)) = parts.pop() {
                ids.push(id);
            }
        }
    }
    sum
}

/// The careful hand-written client.
fn hand_written(server: &Server, on: On<'_>, n: u64) -> u64 {
    server.reset();
    let url = server.url.clone();
    let sum = on.block_on(async move {
        let mut add = connect(&url, Some(Duration::from_secs(30))).await;
        let mut read = connect(&url, None).await;
        let mut ack = connect(&url, Some(Duration::from_secs(30))).await;
        let produce = async move {
            let mut next = 0u64;
            while next < n {
                let mut pipe = client::pipe();
                for i in next..(next + BATCH as u64).min(n) {
                    pipe.cmd("XADD")
                        .arg(STREAM)
                        .arg("*")
                        .arg("n")
                        .arg(i)
                        .ignore();
                }
                next = (next + BATCH as u64).min(n);
                let () = pipe.query_async(&mut add).await.expect("XADD");
            }
        };
        let consume = async move {
            let (mut sum, mut seen) = (0u64, 0u64);
            let mut pending_ack: Option<Vec<Vec<u8>>> = None;
            while seen < n {
                let mut xread = client::cmd("XREADGROUP");
                xread
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg("hand")
                    .arg("COUNT")
                    .arg(BATCH)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(STREAM)
                    .arg(">");
                let reading = xread.query_async::<Value>(&mut read);
                // The previous batch's XACK rides along with this read.
                let acking = async {
                    if let Some(ids) = pending_ack.take() {
                        let mut xack = client::cmd("XACK");
                        xack.arg(STREAM).arg(GROUP);
                        for id in &ids {
                            xack.arg(id.as_slice());
                        }
                        let _: u64 = xack.query_async(&mut ack).await.expect("XACK");
                    }
                };
                let (reply, ()) = futures::join!(reading, acking);
                let mut ids = Vec::with_capacity(BATCH);
                sum += parse_read(reply.expect("XREADGROUP"), &mut ids);
                seen += ids.len() as u64;
                pending_ack = Some(ids);
            }
            if let Some(ids) = pending_ack {
                let mut xack = client::cmd("XACK");
                xack.arg(STREAM).arg(GROUP);
                for id in &ids {
                    xack.arg(id.as_slice());
                }
                let _: u64 = xack.query_async(&mut ack).await.expect("XACK");
            }
            sum
        };
        futures::join!(produce, consume).1
    });
    checked(server, sum)
}

/// One command per item.
fn naive(server: &Server, on: On<'_>, n: u64) -> u64 {
    server.reset();
    let url = server.url.clone();
    let sum = on.block_on(async move {
        let mut add = connect(&url, Some(Duration::from_secs(30))).await;
        let mut read = connect(&url, None).await;
        let produce = async move {
            for i in 0..n {
                let _: Value = client::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("n")
                    .arg(i)
                    .query_async(&mut add)
                    .await
                    .expect("XADD");
            }
        };
        let consume = async move {
            let (mut sum, mut seen) = (0u64, 0u64);
            while seen < n {
                let reply: Value = client::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg("naive")
                    .arg("COUNT")
                    .arg(1)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(STREAM)
                    .arg(">")
                    .query_async(&mut read)
                    .await
                    .expect("XREADGROUP");
                let mut ids = Vec::new();
                sum += parse_read(reply, &mut ids);
                for id in ids {
                    seen += 1;
                    let _: u64 = client::cmd("XACK")
                        .arg(STREAM)
                        .arg(GROUP)
                        .arg(id)
                        .query_async(&mut read)
                        .await
                        .expect("XACK");
                }
            }
            sum
        };
        futures::join!(produce, consume).1
    });
    checked(server, sum)
}

/// Runs W7.
pub fn run(cfg: &Config, report: &mut Report) {
    let Some(server) = Server::start() else {
        report.note(
            W,
            "skipped: redis-server is not on PATH (apt-get install redis-server)",
        );
        return;
    };
    let n = cfg.scale(1_000_000);
    let n_naive = (n / 50).max(100);
    let tokio = tokio_runtime();
    for (label, on) in [("smol", On::Smol), ("tokio", On::Tokio(&tokio))] {
        let (fl, hand) = report.measure_pair(
            cfg,
            W,
            n,
            expected_sum(n),
            ("flowline source → committer, sink", label, &mut || {
                flowline_case(&server, on, n)
            }),
            (
                "hand-written (Value, XACK in flight, 1000)",
                label,
                &mut || hand_written(&server, on, n),
            ),
        );
        let slow = report.measure(
            cfg,
            W,
            "naive (one command per item, N/50)",
            label,
            n_naive,
            expected_sum(n_naive),
            || naive(&server, on, n_naive),
        );
        let vs_hand = hand.ns_per_item() / fl.ns_per_item();
        report.compare(
            W,
            format!("flowline / hand-written throughput ({label})"),
            vs_hand,
            ">= 1.0",
            vs_hand >= 1.0,
        );
        let vs_naive = slow.ns_per_item() / fl.ns_per_item();
        report.compare(
            W,
            format!("flowline / naive throughput ({label})"),
            vs_naive,
            ">= 20",
            vs_naive >= 20.0,
        );
    }
}
