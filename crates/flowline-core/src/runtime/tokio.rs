//! [`TokioRuntime`]: a tokio runtime, the current one or a given `Handle`
//! (feature `tokio`).

use std::fmt;
use std::time::Instant;

use std::future::Future;

use super::local::{spawn_current, LocalScope};
use super::{BlockingFn, Runtime, Sleep};
use futures::future::{BoxFuture, LocalBoxFuture};
use tokio::runtime::Handle;
use tokio::task::LocalSet;

/// A flowline [`Runtime`] backed by a tokio runtime.
///
/// Timers need the runtime's time driver (`Builder::enable_time` or
/// `enable_all`; `#[tokio::main]` enables it).
#[derive(Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl fmt::Debug for TokioRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioRuntime")
            .field("flavor", &self.handle.runtime_flavor())
            .finish()
    }
}

/// Returned by [`TokioRuntime::try_current`] outside a tokio runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoTokioRuntime(());

impl fmt::Display for NoTokioRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "flowline: no tokio runtime is running on this thread; \
             call from inside `Runtime::block_on`/`#[tokio::main]`, or pass a \
             handle with `TokioRuntime::from_handle`",
        )
    }
}

impl std::error::Error for NoTokioRuntime {}

impl TokioRuntime {
    /// The tokio runtime this code is running in.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, with the message of [`NoTokioRuntime`]. Use
    /// [`try_current`](Self::try_current) to get an error instead.
    pub fn current() -> Self {
        Self::try_current().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The tokio runtime this code is running in, or an error outside one.
    ///
    /// # Errors
    ///
    /// [`NoTokioRuntime`] when called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flowline_core::runtime::TokioRuntime::try_current().unwrap_err();
    /// assert!(err.to_string().contains("no tokio runtime"));
    /// ```
    pub fn try_current() -> Result<Self, NoTokioRuntime> {
        Handle::try_current()
            .map(Self::from_handle)
            .map_err(|_| NoTokioRuntime(()))
    }

    /// The tokio runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        TokioRuntime { handle }
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on `local` (as [`LocalSet::run_until`] does), with
    /// `local` as where pipelines on a `TokioRuntime` polled inside it spawn
    /// their stage tasks that are not `Send`
    /// ([`boundary_local`](crate::Pipeline::boundary_local)), with
    /// `tokio::task::spawn_local`.
    ///
    /// Outside it such tasks are polled by the run's own future, on the same
    /// thread: also correct, with the run as their only executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use flowline_core::{producer, runtime::TokioRuntime};
    ///
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// let (out, _) = rt.block_on(TokioRuntime::run_local(&local, async {
    ///     producer::iter((0..4u32).map(Rc::new)).boundary_local(2).map(|x| *x).run_collect().await
    /// }))
    /// .unwrap();
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    pub fn run_local<'a, F>(local: &'a LocalSet, future: F) -> impl Future<Output = F::Output> + 'a
    where
        F: Future + 'a,
    {
        let spawn = |task| drop(tokio::task::spawn_local(task));
        LocalScope::new("tokio", spawn, local.run_until(future))
    }
}

impl Runtime for TokioRuntime {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        drop(self.handle.spawn(task));
    }

    /// Accepted inside [`TokioRuntime::run_local`] (tokio's `LocalSet`).
    fn spawn_local_boxed(
        &self,
        task: LocalBoxFuture<'static, ()>,
    ) -> Result<(), LocalBoxFuture<'static, ()>> {
        spawn_current("tokio", task)
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        drop(self.handle.spawn_blocking(f));
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        // A tokio `Sleep` registers with the time driver of the runtime it is
        // created in, so create it inside ours.
        let _guard = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    /// tokio's clock, so that a paused clock (`tokio::time::pause`, with
    /// tokio's `test-util` feature) drives flowline's timers too.
    fn now(&self) -> Instant {
        let _guard = self.handle.enter();
        tokio::time::Instant::now().into_std()
    }

    fn enter(&self, f: &mut dyn FnMut()) {
        let _guard = self.handle.enter();
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_makes_the_runtime_current_on_another_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let flowline_rt = TokioRuntime::from_handle(rt.handle().clone());
        let seen = std::thread::spawn(move || {
            assert!(Handle::try_current().is_err());
            let mut seen = None;
            flowline_rt.enter(&mut || seen = Some(Handle::current().id()));
            (seen, Handle::try_current().is_err())
        })
        .join()
        .unwrap();
        assert_eq!(seen, (Some(rt.handle().id()), true));
    }
}
