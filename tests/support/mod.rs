//! Shared test support: run one test body on smol, tokio and runtime-free,
//! and (for timing logic) on the test kit's virtual clock.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};
use flowline::smol::SmolRuntime;
use flowline::tokio::TokioRuntime;
use flowline_test::VirtualRuntime;

/// Which executor a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Smol,
    Tokio,
    Free,
    /// The test kit's virtual clock: timers take no real time and fire at
    /// exact virtual instants, so timing logic can be asserted exactly.
    Virtual,
}

/// What a test body gets: the runtime to hand to `Pipeline::on_runtime`
/// (`None` when runtime-free) and runtime-appropriate timers.
#[derive(Debug, Clone)]
pub struct Env {
    pub kind: Rt,
    pub runtime: Option<Arc<dyn Runtime>>,
}

impl Env {
    /// The runtime timers and the clock come from (async-io and the real
    /// clock when runtime-free).
    pub fn clock(&self) -> Arc<dyn Runtime> {
        self.runtime
            .clone()
            .unwrap_or_else(|| Arc::new(RuntimeFree))
    }

    /// Now, on the test's clock: virtual on `Rt::Virtual`, real otherwise.
    pub fn now(&self) -> Instant {
        self.clock().now()
    }

    /// Whether the clock is virtual (timings are exact and upper bounds
    /// can be asserted).
    pub fn is_virtual(&self) -> bool {
        self.kind == Rt::Virtual
    }

    /// Sleeps on the test's runtime (async-io when runtime-free).
    pub async fn sleep(&self, d: Duration) {
        match &self.runtime {
            Some(rt) => rt.sleep(d).await,
            None => RuntimeFree.sleep(d).await,
        }
    }

    /// Polls `cond` every millisecond until it holds or `limit` passes.
    pub async fn eventually(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let start = self.now();
        while self.now() - start < limit {
            if cond() {
                return true;
            }
            self.sleep(Duration::from_millis(1)).await;
        }
        cond()
    }
}

/// How [`Env::stop_when`] stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Shutdown,
    Abort,
}

impl Env {
    /// Awaits `handle` until `cond` holds (asserted within `limit`), then
    /// stops the run with `stop` and returns its result. Awaited together
    /// because a runtime-free run progresses only while its handle is.
    pub async fn stop_when(
        &self,
        handle: flowline::PipelineHandle,
        limit: Duration,
        cond: impl FnMut() -> bool,
        stop: Stop,
    ) -> Result<flowline::RunReport, flowline::PipelineError> {
        let stopper = handle.stop_handle();
        let (result, ()) = futures::join!(handle, async {
            assert!(
                self.eventually(limit, cond).await,
                "the condition never held"
            );
            match stop {
                Stop::Shutdown => stopper.shutdown(),
                Stop::Abort => stopper.abort(),
            }
        });
        result
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An executor kept across many test bodies (a property test's cases), so
/// each case does not pay for starting and joining a tokio runtime's
/// threads. Every body still gets a fresh [`Env`].
#[derive(Debug)]
pub struct Reused {
    rt: Rt,
    tokio: Option<tokio::runtime::Runtime>,
}

impl Reused {
    /// Runs `body` to completion on the kept executor.
    pub fn block_on<F, Fut>(&self, body: F) -> Fut::Output
    where
        F: FnOnce(Env) -> Fut,
        Fut: Future,
    {
        match &self.tokio {
            Some(tokio) => tokio.block_on(async {
                body(Env {
                    kind: Rt::Tokio,
                    runtime: Some(Arc::new(TokioRuntime::current())),
                })
                .await
            }),
            None => self.rt.block_on(body),
        }
    }
}

impl Rt {
    /// This executor, kept for many [`Reused::block_on`] calls.
    pub fn reused(self) -> Reused {
        Reused {
            rt: self,
            tokio: (self == Rt::Tokio).then(tokio_runtime),
        }
    }

    /// Runs `body` to completion on this executor.
    pub fn block_on<F, Fut>(self, body: F) -> Fut::Output
    where
        F: FnOnce(Env) -> Fut,
        Fut: Future,
    {
        match self {
            Rt::Smol => smol::block_on(body(Env {
                kind: self,
                runtime: Some(Arc::new(SmolRuntime::new())),
            })),
            Rt::Tokio => tokio_runtime().block_on(async {
                body(Env {
                    kind: self,
                    runtime: Some(Arc::new(TokioRuntime::current())),
                })
                .await
            }),
            Rt::Free => futures::executor::block_on(body(Env {
                kind: self,
                runtime: None,
            })),
            Rt::Virtual => {
                let rt = VirtualRuntime::new();
                let out = rt.block_on(body(Env {
                    kind: self,
                    runtime: Some(Arc::new(rt.handle())),
                }));
                assert_eq!(rt.handle().live_tasks(), 0, "a task outlived the test body");
                out
            }
        }
    }
}

/// Counts live instances: increments on creation, decrements on drop.
#[derive(Debug)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        DropCounter(live.clone())
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Instantiates each listed `fn name(rt: Rt)` as a test on smol, tokio and
/// runtime-free.
#[macro_export]
macro_rules! on_all_runtimes {
    ($($name:ident),* $(,)?) => {
        mod smol_rt {
            $( #[test] fn $name() { super::$name($crate::support::Rt::Smol) } )*
        }
        mod tokio_rt {
            $( #[test] fn $name() { super::$name($crate::support::Rt::Tokio) } )*
        }
        mod runtime_free {
            $( #[test] fn $name() { super::$name($crate::support::Rt::Free) } )*
        }
    };
}

/// [`on_all_runtimes!`], plus each test on the virtual clock (module
/// `virtual_clock`), for tests of timing logic.
#[macro_export]
macro_rules! on_all_clocks {
    ($($name:ident),* $(,)?) => {
        $crate::on_all_runtimes!($($name),*);
        $crate::on_virtual_clock!($($name),*);
    };
}

/// Each listed test on the virtual clock only (module `virtual_clock`).
/// Not for endless pipelines without timers: virtual time passes only when
/// every task waits, so their sleeps never end.
#[macro_export]
macro_rules! on_virtual_clock {
    ($($name:ident),* $(,)?) => {
        mod virtual_clock {
            $( #[test] fn $name() { super::$name($crate::support::Rt::Virtual) } )*
        }
    };
}

/// A CPU-bound upstream: `0..items` through a `map` that takes 2 ms of CPU
/// per item and never waits; `made` counts the items it has made.
pub fn cpu_bound(
    items: u32,
    made: Arc<AtomicUsize>,
) -> flowline::Pipeline<impl futures::Stream<Item = u32> + Send + 'static> {
    flowline::producer::iter(0..items).map(move |x| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(2) {}
        made.fetch_add(1, Ordering::SeqCst);
        x
    })
}

/// Runs `pipeline` (fed by [`cpu_bound`] with `made`) on `runtime` and
/// checks, by order rather than time, that its first item arrived while
/// upstream was still busy: how many items upstream had made when it
/// arrived (all `items` means it was held back to the end). Returns the
/// run's report.
pub async fn assert_not_held_back<S: futures::Stream>(
    pipeline: flowline::Pipeline<S>,
    runtime: Option<Arc<dyn Runtime>>,
    made: &AtomicUsize,
    items: usize,
    what: &str,
) -> flowline::RunReport {
    let mut made_at_arrival = Vec::new();
    let report = pipeline
        .on_runtime(runtime)
        .run_for_each(|_| {
            made_at_arrival.push(made.load(Ordering::SeqCst));
            async {}
        })
        .await
        .unwrap();
    assert_eq!(made_at_arrival.len(), items, "{what}");
    assert!(
        made_at_arrival[0] < items,
        "{what}: the first item arrived only after upstream made all {items}: {made_at_arrival:?}"
    );
    report
}
