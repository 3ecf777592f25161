//! [`SmolRuntime`]: tasks on smol's executor, timers on `async-io`, blocking
//! calls on the `blocking` pool (feature `smol`).

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::local::{spawn_current, LocalScope};
use super::{BlockingFn, Runtime, Sleep};
use futures::future::{BoxFuture, LocalBoxFuture};
use futures::FutureExt;
use smol::LocalExecutor;

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

    /// Runs `future` on `executor` (as `executor.run(future)` does), with
    /// `executor` as where pipelines on a `SmolRuntime` polled inside it
    /// spawn their stage tasks that are not `Send`
    /// ([`boundary_local`](crate::Pipeline::boundary_local)).
    ///
    /// Outside it such tasks are polled by the run's own future, on the same
    /// thread: also correct, with the run as their only executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use flowline_core::{producer, runtime::SmolRuntime};
    ///
    /// let ex = Rc::new(smol::LocalExecutor::new());
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// let (n, _) = smol::block_on(SmolRuntime::run_local(&ex, async move {
    ///     producer::iter(0..4u32)
    ///         .map(Rc::new)
    ///         .boundary_local(2)
    ///         .inspect(move |x| log.borrow_mut().push(**x))
    ///         .run_count()
    ///         .await
    /// }))
    /// .unwrap();
    /// assert_eq!((n, seen.borrow().clone()), (4, vec![0, 1, 2, 3]));
    /// ```
    pub fn run_local<F: Future>(
        executor: &Rc<LocalExecutor<'static>>,
        future: F,
    ) -> impl Future<Output = F::Output> {
        let on = executor.clone();
        let spawn = move |task| on.spawn(task).detach();
        let executor = executor.clone();
        LocalScope::new("smol", spawn, async move { executor.run(future).await })
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

    /// Accepted inside [`SmolRuntime::run_local`] (smol's `LocalExecutor`).
    fn spawn_local_boxed(
        &self,
        task: LocalBoxFuture<'static, ()>,
    ) -> Result<(), LocalBoxFuture<'static, ()>> {
        spawn_current("smol", task)
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        smol::unblock(f).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        smol::Timer::at(deadline).map(drop).boxed()
    }
}
