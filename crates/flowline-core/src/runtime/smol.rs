//! [`SmolRuntime`]: tasks on smol's executor, timers on `async-io`, blocking
//! calls on the `blocking` pool (feature `smol`).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{BlockingFn, Runtime, Sleep};
use futures::future::BoxFuture;
use futures::FutureExt;

/// A flowline [`Runtime`] backed by smol.
///
/// Tasks go to smol's global executor (`smol::spawn`, whose threads smol
/// starts on demand; `SMOL_THREADS` sets how many) unless the runtime was made
/// with [`with_executor`](Self::with_executor).
///
/// # Examples
///
/// ```
/// use flowline_core::runtime::{Runtime, RuntimeExt};
/// use flowline_core::runtime::SmolRuntime;
///
/// let rt = SmolRuntime::new();
/// let answer = smol::block_on(rt.spawn(async { 42 })).unwrap();
/// assert_eq!((answer, rt.name()), (42, "smol"));
/// ```
#[derive(Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<smol::Executor<'static>>>,
}

impl fmt::Debug for SmolRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolRuntime")
            .field("own_executor", &self.executor.is_some())
            .finish()
    }
}

impl SmolRuntime {
    /// Spawns on smol's global executor.
    pub fn new() -> Self {
        SmolRuntime { executor: None }
    }

    /// Spawns on `executor`, which the caller must keep running (for example
    /// with `executor.run(..)` on some threads).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowline_core::producer;
    /// use flowline_core::runtime::SmolRuntime;
    ///
    /// let ex = Arc::new(smol::Executor::new());
    /// let rt = SmolRuntime::with_executor(ex.clone());
    /// let (n, _) = smol::block_on(ex.run(producer::iter(0..10).boundary(4).on(rt).run_count())).unwrap();
    /// assert_eq!(n, 10);
    /// ```
    pub fn with_executor(executor: Arc<smol::Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(executor),
        }
    }
}

impl Runtime for SmolRuntime {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        smol::unblock(f).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        smol::Timer::at(deadline).map(drop).boxed()
    }
}
