//! The Redis Streams connector against a real `redis-server`, started by
//! each test on a free loopback port in a temporary directory and stopped
//! at its end; results are checked with plain Redis commands (XPENDING,
//! XLEN, XINFO, XRANGE). Runs on smol and tokio.
//!
//! Without `redis-server` on `PATH` these tests print that they did not run
//! and pass, unless `FLOWLINE_REQUIRE_REDIS=1` (set by `.ci/run` in CI)
//! makes a missing server a failure.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flowline::consumer;
use flowline::redis::redis::{self as client, Value};
use flowline::redis::{self as fr, ErrorKind};
use flowline::{producer, PipelineError};
use support::Rt;

const STREAM: &str = "jobs";
const GROUP: &str = "workers";

/// A `redis-server` of this test's own; killed and its directory removed
/// on drop.
struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Starts a server, or returns `None` (after saying so) when
    /// `redis-server` is missing and not required.
    fn start(extra: &[&str]) -> Option<Server> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            let msg = "redis-server is not on PATH: this Redis test did not run. \
                       Install it with `apt-get install redis-server` (Debian/Ubuntu) \
                       or `brew install redis` (macOS).";
            if std::env::var("FLOWLINE_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
                panic!("{msg} (FLOWLINE_REQUIRE_REDIS=1 makes this a failure)");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flowline-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Server {
            child: None,
            port: free_port(),
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--dir"])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while client::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| client::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the server.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self) -> client::Connection {
        client::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn query<T: client::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = client::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut self.conn()).unwrap()
    }

    /// `XPENDING <stream> <group>`: how many entries are pending.
    fn pending(&self, stream: &str, group: &str) -> u64 {
        let (count, ..): (u64, Value, Value, Value) = self.query(&["XPENDING", stream, group]);
        count
    }

    /// Pending entries of `consumer`: (id, delivery count).
    fn pending_of(&self, consumer: &str) -> Vec<(String, u64)> {
        let rows: Vec<(String, String, u64, u64)> =
            self.query(&["XPENDING", STREAM, GROUP, "-", "+", "100000", consumer]);
        rows.into_iter().map(|(id, _, _, n)| (id, n)).collect()
    }

    fn len(&self, stream: &str) -> u64 {
        self.query(&["XLEN", stream])
    }

    /// One field of `XINFO GROUPS <stream>` for `group`.
    fn group_info(&self, group: &str, field: &str) -> Value {
        let groups: Vec<BTreeMap<String, Value>> = self.query(&["XINFO", "GROUPS", STREAM]);
        let g = groups
            .into_iter()
            .find(|g| g.get("name") == Some(&Value::BulkString(group.as_bytes().to_vec())))
            .expect("group exists");
        g.get(field).cloned().unwrap_or(Value::Nil)
    }

    /// Field `field` of every entry of `stream`, in order.
    fn field_values(&self, stream: &str, field: &str) -> Vec<String> {
        let entries: Vec<(String, BTreeMap<String, String>)> =
            self.query(&["XRANGE", stream, "-", "+"]);
        entries
            .into_iter()
            .map(|(_, f)| f.get(field).cloned().unwrap_or_default())
            .collect()
    }

    /// Adds `n` entries `n` = from..from+n.
    fn fill(&self, from: u64, n: u64) {
        let mut conn = self.conn();
        let mut pipe = client::pipe();
        for i in from..from + n {
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg("n")
                .arg(i)
                .ignore();
        }
        let () = pipe.query(&mut conn).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn number(e: fr::Entry) -> u64 {
    e.get_str("n").unwrap().parse().unwrap()
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
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
            .count(500)
            .block(Duration::from_millis(50))
            .stop_when_empty()
            .connect()
            .await
            .unwrap();
        let stats = source.stats();
        let mut out = consumer::collect();
        source
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
                    .count(100)
                    .block(Duration::from_millis(50))
                    .stop_when_empty()
                    .connect()
                    .await
                    .unwrap();
                let mut out = consumer::collect();
                source
                    .map(number)
                    .on_runtime(rt)
                    .run(&mut out)
                    .await
                    .unwrap();
                out.into_vec()
            }
        };
        let (a, b) = futures::join!(worker("a"), worker("b"));
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
                .count(1)
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
        for deliveries in 1..=2 {
            let (result, _, _) = run().await;
            let Err(PipelineError::Panicked { stage, .. }) = result else {
                panic!("expected a panic, got {result:?}")
            };
            assert_eq!(stage, "work");
            assert_eq!(server.pending_of("w1"), [(poison_id.clone(), deliveries)]);
        }
        // The third delivery is over max_deliveries: dead-lettered, and the run completes.
        let (result, items, stats) = run().await;
        result.unwrap();
        assert_eq!(items, [3]);
        assert_eq!(stats.dead_lettered, 1);
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

on_smol_and_tokio!(
    end_to_end_every_entry_read_once_and_acked,
    two_workers_share_the_stream,
    panics_leave_entries_pending_then_poison_goes_to_dead_letter,
    bad_input_names_stream_and_group,
);
