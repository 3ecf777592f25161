//! A `redis-server` per test, for the Redis connector's tests: started on
//! a free port of a loopback address of its own, in a temporary directory,
//! killed and removed on drop, and queried with plain Redis commands.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flowline::redis::redis::{self as client, Value};

pub const STREAM: &str = "jobs";
pub const GROUP: &str = "workers";

/// A `redis-server` of this test's own; killed and its directory removed
/// on drop.
pub struct Server {
    child: Option<Child>,
    /// A loopback address of this server's own where the system has them
    /// (Linux routes all of 127.0.0.0/8 to the loopback device), so that a
    /// server restarted on its port cannot find it taken by another test
    /// binary's socket in between; else 127.0.0.1.
    host: String,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A loopback address for the `n`th server of this process, and a free port
/// on it.
fn own_address(n: usize) -> (String, u16) {
    let pid = std::process::id();
    let host = format!("127.{}.{}.{}", (pid >> 8) & 0xff, pid & 0xff, n % 250 + 2);
    match TcpListener::bind((host.as_str(), 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => (host, addr.port()),
        Err(_) => ("127.0.0.1".to_string(), free_port()),
    }
}

impl Server {
    /// Starts a server, or returns `None` (after saying so) when
    /// `redis-server` is missing and not required.
    pub fn start(extra: &[&str]) -> Option<Server> {
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
            // Written to stderr directly, past the test harness's capture,
            // once per test binary.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
            });
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("flowline-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (host, port) = own_address(n);
        let mut server = Server {
            child: None,
            host,
            port,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.launch();
        Some(server)
    }

    /// A handle for queries on the server at `url` (owned elsewhere).
    pub fn attach(url: &str) -> Server {
        let addr = url.trim_start_matches("redis://").trim_end_matches('/');
        let (host, port) = addr.rsplit_once(':').unwrap();
        Server {
            child: None,
            host: host.to_string(),
            port: port.parse().unwrap(),
            dir: PathBuf::new(),
            args: Vec::new(),
        }
    }

    pub fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", &self.host])
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
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}/", self.host, self.port)
    }

    pub fn conn(&self) -> client::Connection {
        client::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn query<T: client::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = client::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut self.conn()).unwrap()
    }

    /// `XPENDING <stream> <group>`: how many entries are pending.
    pub fn pending(&self, stream: &str, group: &str) -> u64 {
        let (count, ..): (u64, Value, Value, Value) = self.query(&["XPENDING", stream, group]);
        count
    }

    /// Pending entries of `consumer`: (id, delivery count).
    pub fn pending_of(&self, consumer: &str) -> Vec<(String, u64)> {
        let rows: Vec<(String, String, u64, u64)> =
            self.query(&["XPENDING", STREAM, GROUP, "-", "+", "100000", consumer]);
        rows.into_iter().map(|(id, _, _, n)| (id, n)).collect()
    }

    pub fn len(&self, stream: &str) -> u64 {
        self.query(&["XLEN", stream])
    }

    /// One field of `XINFO GROUPS <stream>` for `group`.
    pub fn group_info(&self, group: &str, field: &str) -> Value {
        let groups: Vec<BTreeMap<String, Value>> = self.query(&["XINFO", "GROUPS", STREAM]);
        let g = groups
            .into_iter()
            .find(|g| g.get("name") == Some(&Value::BulkString(group.as_bytes().to_vec())))
            .expect("group exists");
        g.get(field).cloned().unwrap_or(Value::Nil)
    }

    /// Field `field` of every entry of `stream`, in order.
    pub fn field_values(&self, stream: &str, field: &str) -> Vec<String> {
        let entries: Vec<(String, BTreeMap<String, String>)> =
            self.query(&["XRANGE", stream, "-", "+"]);
        entries
            .into_iter()
            .map(|(_, f)| f.get(field).cloned().unwrap_or_default())
            .collect()
    }

    /// Adds `n` entries `n` = from..from+n.
    pub fn fill(&self, from: u64, n: u64) {
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
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The integer in `v`.
pub fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `limit` (a
/// generous bound against hangs, not a performance check).
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The counts of the one Redis source of a run, from its report:
/// `[read, taken, settled, acked, pending, reclaimed, redelivered,
/// dead_lettered]`. Checks that the report's table shows them and, for a
/// completed run, that they balance.
pub fn source_counts(report: &flowline::RunReport) -> [u64; 8] {
    let sources = flowline::redis::source_reports(report);
    assert_eq!(sources.len(), 1, "one Redis source in\n{report}");
    let s = &sources[0];
    let header = report.to_string();
    let header = header.lines().next().unwrap_or_default();
    assert!(
        header.ends_with(
            "read  taken  settled  acked  pending  reclaimed  redelivered  dead-lettered"
        ),
        "{header}"
    );
    [
        s.read,
        s.taken,
        s.settled,
        s.acked,
        s.pending(),
        s.reclaimed,
        s.redelivered,
        s.dead_lettered,
    ]
}
