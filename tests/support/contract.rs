//! What the contract tests share (`tests/contract_paths.rs`,
//! `tests/contract_stops.rs`): a recording sink whose close means commit,
//! quiet deliberate panics, report assertions, guarded sources and futures.
#![allow(dead_code, unreachable_pub)]

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::{DropCounter, Env, Rt};
use flowline::{producer, Pipeline, PipelineError, RunReport};
use futures::{Sink, Stream};

pub const BOOM: &str = "contract-paths-boom";

pub const LIMIT: Duration = Duration::from_secs(20);

/// Keeps this file's deliberate panics out of the output.
pub fn quiet_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !text.is_some_and(|m| m.contains(BOOM)) {
                default(info);
            }
        }));
    });
}

/// Panics with this file's marker (quiet in the output).
pub fn boom(x: u64) -> ! {
    panic!("{BOOM} at {x}")
}

/// Every stage balances.
#[track_caller]
pub fn assert_balanced(report: &RunReport) {
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced stage {s:?}\n{report}");
    }
}

/// Every stage balances and holds nothing.
#[track_caller]
pub fn assert_completed(report: &RunReport) {
    assert_balanced(report);
    for s in &report.stages {
        assert_eq!(
            s.in_flight, 0,
            "a completed run holds items: {s:?}\n{report}"
        );
    }
}

/// The error is a panic of `stage` carrying this file's marker, and its
/// report balances.
#[track_caller]
pub fn assert_panicked(err: &PipelineError, stage: &str) {
    match err {
        PipelineError::Panicked {
            stage: s, message, ..
        } => {
            assert_eq!(s, stage, "{err:?}");
            assert!(message.contains(BOOM), "{message}");
        }
        other => panic!("expected a panic of {stage}, got {other:?}"),
    }
    assert_balanced(err.report());
}

/// What a [`Recorder`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub items: Mutex<Vec<u64>>,
    /// Set by user code just before it fails the run (in any stage).
    pub failing: AtomicBool,
    pub flushes_after_failure: AtomicUsize,
    pub closed: AtomicBool,
}

impl Seen {
    pub fn items(&self) -> Vec<u64> {
        self.items.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }

    /// Marks the run as failing, then panics (for user code in any stage).
    pub fn boom(&self, x: u64) -> ! {
        self.failing.store(true, SeqCst);
        boom(x)
    }

    /// The consumer was never committed after the failure. A flush racing a
    /// failure on another thread is allowed; runtime-free, nothing races.
    #[track_caller]
    pub fn assert_uncommitted(&self, env: &Env) {
        assert!(!self.closed.load(SeqCst), "a failed run closed its sink");
        if env.kind == Rt::Free {
            assert_eq!(
                self.flushes_after_failure.load(SeqCst),
                0,
                "flushed after failing"
            );
        }
    }
}

/// A sink whose close means commit; refuses item `refuse` (an error from
/// `start_send`), if any.
pub struct Recorder {
    pub seen: Arc<Seen>,
    pub refuse: Option<u64>,
    /// Whether the close (a commit) takes 50 ms.
    pub slow_close: bool,
}

pub fn recorder() -> (Recorder, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let sink = Recorder {
        seen: seen.clone(),
        refuse: None,
        slow_close: false,
    };
    (sink, seen)
}

impl Sink<u64> for Recorder {
    type Error = std::io::Error;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: u64) -> Result<(), Self::Error> {
        if self.refuse == Some(item) {
            self.seen.failing.store(true, SeqCst);
            return Err(std::io::Error::other("refused"));
        }
        self.seen.items.lock().unwrap().push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.seen.failing.load(SeqCst) {
            self.seen.flushes_after_failure.fetch_add(1, SeqCst);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.seen.closed.store(true, SeqCst);
        if self.slow_close {
            std::thread::sleep(Duration::from_millis(50));
        }
        Poll::Ready(Ok(()))
    }
}

/// An endless source 0, 1, 2, … holding a drop guard, counting what it made.
pub fn endless(
    live: &Arc<AtomicUsize>,
    made: &Arc<AtomicU64>,
) -> Pipeline<impl Stream<Item = u64> + Send + 'static> {
    let guard = DropCounter::new(live);
    let made = made.clone();
    producer::generator(move |out| async move {
        let _guard = guard;
        for i in 0u64.. {
            made.fetch_add(1, SeqCst);
            out.emit(i).await;
        }
    })
}

/// A future that holds a drop guard and sleeps 1 ms every few items.
pub fn guarded_future(
    live: &Arc<AtomicUsize>,
    env: &Env,
) -> impl FnMut(u64) -> futures::future::BoxFuture<'static, u64> + Send + Clone + 'static {
    let (live, env) = (live.clone(), env.clone());
    move |x: u64| {
        let (guard, env) = (DropCounter::new(&live), env.clone());
        Box::pin(async move {
            let _guard = guard;
            if x % 4 == 0 {
                env.sleep(Duration::from_millis(1)).await;
            }
            x
        })
    }
}

/// Counts of one stage: (in, out, grouped, discarded, failed, in flight).
pub fn counts(report: &RunReport, stage: &str) -> (u64, u64, u64, u64, u64, u64) {
    let s = report
        .stage(stage)
        .unwrap_or_else(|| panic!("no stage {stage}\n{report}"));
    (
        s.items_in,
        s.items_out,
        s.grouped,
        s.discarded,
        s.failed,
        s.in_flight,
    )
}
