//! Shared test support: run one test body on smol, tokio and runtime-free.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};
use flowline::smol::SmolRuntime;
use flowline::tokio::TokioRuntime;

/// Which executor a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Smol,
    Tokio,
    Free,
}

/// What a test body gets: the runtime to hand to `Pipeline::on_runtime`
/// (`None` when runtime-free) and runtime-appropriate timers.
#[derive(Debug, Clone)]
pub struct Env {
    pub kind: Rt,
    pub runtime: Option<Arc<dyn Runtime>>,
}

impl Env {
    /// Sleeps on the test's runtime (async-io when runtime-free).
    pub async fn sleep(&self, d: Duration) {
        match &self.runtime {
            Some(rt) => rt.sleep(d).await,
            None => RuntimeFree.sleep(d).await,
        }
    }

    /// Polls `cond` every millisecond until it holds or `limit` passes.
    pub async fn eventually(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if cond() {
                return true;
            }
            self.sleep(Duration::from_millis(1)).await;
        }
        cond()
    }
}

impl Rt {
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
            Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(async {
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
