//! The executor abstraction: [`Runtime`], [`JoinHandle`] and the runtime-free
//! fallback [`RuntimeFree`].
//!
//! A [`Runtime`] is four operations — spawn a task, spawn a blocking call, make a
//! timer, read the clock — in object-safe form, so a pipeline can hold an
//! `Arc<dyn Runtime>` chosen at run time. [`RuntimeExt`] adds the typed
//! conveniences (`spawn`, `spawn_blocking`, `sleep`) on top of every runtime.
//!
//! Inside: `join.rs` (the typed join handle with panic capture and abort),
//! `free.rs` (the runtime-free fallback built on `async-io` and `blocking`),
//! `local.rs` (the local executor a thread runs, for tasks that are not
//! `Send`), `smol.rs`, `tokio.rs`.

mod free;
mod join;
#[cfg(any(feature = "smol", feature = "tokio"))]
mod local;
#[cfg(feature = "smol")]
mod smol;
#[cfg(feature = "tokio")]
mod tokio;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, LocalBoxFuture};

#[cfg(feature = "smol")]
pub use self::smol::SmolRuntime;
#[cfg(feature = "tokio")]
pub use self::tokio::{NoTokioRuntime, TokioRuntime};
pub use free::RuntimeFree;
pub(crate) use join::{local_task, panic_message};
pub use join::{JoinError, JoinHandle};

/// A boxed timer future returned by [`Runtime::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A boxed blocking closure, as handed to [`Runtime::spawn_blocking_boxed`].
pub type BlockingFn = Box<dyn FnOnce() + Send + 'static>;

/// An executor that flowline can run tasks, blocking calls and timers on.
///
/// Implemented by `flowline_smol::SmolRuntime`, `flowline_tokio::TokioRuntime`
/// and [`RuntimeFree`]. The trait is object safe: pipelines hold an
/// `Arc<dyn Runtime>`. Use the typed helpers of [`RuntimeExt`] rather than the
/// boxed methods directly.
///
/// # Implementing
///
/// `spawn_boxed` must run the future to completion (or until it is dropped by
/// the executor shutting down) without the caller polling anything; the caller
/// keeps no handle. Cancellation and panic capture are layered on top by
/// [`RuntimeExt::spawn`], so an implementation stays a one-liner per method.
///
/// # Examples
///
/// ```
/// use flowline_core::runtime::{Runtime, RuntimeExt, RuntimeFree};
///
/// let rt = RuntimeFree;
/// let answer = futures::executor::block_on(async {
///     rt.spawn_blocking(|| 6 * 7).await
/// });
/// assert_eq!(answer.unwrap(), 42);
/// assert_eq!(rt.name(), "runtime-free");
/// ```
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// A short name for reports and errors: `"smol"`, `"tokio"`, `"runtime-free"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// assert_eq!(RuntimeFree.name(), "runtime-free");
    /// ```
    fn name(&self) -> &'static str;

    /// Spawns a task and detaches it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// RuntimeFree.spawn_boxed(Box::pin(async move { tx.send(7).unwrap() }));
    /// assert_eq!(futures::executor::block_on(rx), Ok(7));
    /// ```
    fn spawn_boxed(&self, task: BoxFuture<'static, ()>);

    /// Spawns a task that is not `Send` on this runtime's local executor on
    /// the current thread, detached; hands the task back if there is none.
    ///
    /// A pipeline's `!Send` stage tasks
    /// ([`boundary_local`](crate::Pipeline::boundary_local)) go here; a task
    /// handed back is polled by the run's own future instead, on the same
    /// thread, so refusing is always correct. The default refuses.
    /// `SmolRuntime` accepts inside `SmolRuntime::run_local` (smol's
    /// `LocalExecutor`), `TokioRuntime` inside `TokioRuntime::run_local`
    /// (tokio's `LocalSet`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let task = Box::pin(async {});
    /// assert!(RuntimeFree.spawn_local_boxed(task).is_err()); // nothing to spawn on
    /// ```
    fn spawn_local_boxed(
        &self,
        task: LocalBoxFuture<'static, ()>,
    ) -> Result<(), LocalBoxFuture<'static, ()>> {
        Err(task)
    }

    /// Runs a blocking closure on a thread where blocking is allowed, detached.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// RuntimeFree.spawn_blocking_boxed(Box::new(move || tx.send(6 * 7).unwrap()));
    /// assert_eq!(rx.recv(), Ok(42));
    /// ```
    fn spawn_blocking_boxed(&self, f: BlockingFn);

    /// A future that completes at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// futures::executor::block_on(RuntimeFree.sleep_until(deadline));
    /// assert!(Instant::now() >= deadline);
    /// ```
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// The current instant on this runtime's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let before = Instant::now();
    /// assert!(RuntimeFree.now() >= before); // the default: the system clock
    /// ```
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Runs `f` inside this runtime's context on the current thread, so that
    /// code in `f` finds the runtime the way it would on one of its own
    /// threads (on tokio, `Handle::current()` and `tokio::spawn` work).
    ///
    /// Blocking workers wrap their whole loop in it, so a `map_blocking`
    /// closure can use its runtime's APIs. The default just calls `f`: a
    /// runtime with no thread-local context has nothing to enter.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// let mut called = false;
    /// RuntimeFree.enter(&mut || called = true);
    /// assert!(called);
    /// ```
    fn enter(&self, f: &mut dyn FnMut()) {
        f()
    }

    /// Whether [`spawn_boxed`](Self::spawn_boxed) hands tasks to an executor
    /// of its own. `false` for [`RuntimeFree`]: a pipeline on it polls its
    /// tasks inside its own future and starts no thread for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{Runtime, RuntimeFree};
    ///
    /// assert!(!RuntimeFree.has_executor());
    /// # #[cfg(feature = "smol")]
    /// assert!(flowline_core::runtime::SmolRuntime::new().has_executor());
    /// ```
    fn has_executor(&self) -> bool {
        true
    }
}

/// The runtime a pipeline runs on when none is named, by cargo feature:
///
/// - `tokio` enabled and called inside a tokio runtime: that runtime;
/// - otherwise, `smol` enabled: smol's global executor;
/// - otherwise `None`: runtime-free, the pipeline is one future.
///
/// A pipeline resolves this when its run starts (its first poll, or
/// `spawn`), not when it is built, so building outside a tokio runtime and
/// running inside one picks tokio. [`Pipeline::on`](crate::Pipeline::on) /
/// [`on_runtime`](crate::Pipeline::on_runtime) always win.
///
/// # Examples
///
/// ```
/// let rt = flowline_core::runtime::default_runtime();
/// # #[cfg(feature = "smol")]
/// assert_eq!(rt.unwrap().name(), "smol"); // not inside tokio here
/// # #[cfg(not(any(feature = "smol", feature = "tokio")))]
/// assert!(rt.is_none());
/// ```
pub fn default_runtime() -> Option<Arc<dyn Runtime>> {
    #[cfg(feature = "tokio")]
    if let Ok(rt) = TokioRuntime::try_current() {
        return Some(Arc::new(rt));
    }
    #[cfg(feature = "smol")]
    return Some(Arc::new(SmolRuntime::new()));
    #[allow(unreachable_code)]
    None
}

impl<R: Runtime + ?Sized> Runtime for Arc<R> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        (**self).spawn_boxed(task)
    }
    fn spawn_local_boxed(
        &self,
        task: LocalBoxFuture<'static, ()>,
    ) -> Result<(), LocalBoxFuture<'static, ()>> {
        (**self).spawn_local_boxed(task)
    }
    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        (**self).spawn_blocking_boxed(f)
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        (**self).sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn enter(&self, f: &mut dyn FnMut()) {
        (**self).enter(f)
    }
    fn has_executor(&self) -> bool {
        (**self).has_executor()
    }
}

/// Typed conveniences available on every [`Runtime`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::runtime::{Runtime, RuntimeExt, RuntimeFree};
///
/// futures::executor::block_on(async {
///     let rt = RuntimeFree;
///     let before = rt.now();
///     rt.sleep(Duration::from_millis(5)).await;
///     assert!(rt.now() - before >= Duration::from_millis(5));
/// });
/// ```
pub trait RuntimeExt: Runtime {
    /// Spawns `future` as a task.
    ///
    /// The returned [`JoinHandle`] resolves to the output, to
    /// [`JoinError::Panicked`] if the task panicked (the panic is caught and the
    /// process carries on), or to [`JoinError::Cancelled`] if it was aborted.
    /// Dropping the handle cancels the task, like `smol::Task`; call
    /// [`JoinHandle::detach`] to let it run on.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{JoinError, RuntimeExt, RuntimeFree};
    ///
    /// futures::executor::block_on(async {
    ///     let task = RuntimeFree.spawn(async { "done" });
    ///     assert_eq!(task.await, Ok("done"));
    ///     let stuck = RuntimeFree.spawn(futures::future::pending::<()>());
    ///     stuck.abort();
    ///     assert_eq!(stuck.await, Err(JoinError::Cancelled));
    /// });
    /// ```
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = join::task(future);
        self.spawn_boxed(task);
        handle
    }

    /// Runs `f` on a thread where blocking is allowed.
    ///
    /// A panic in `f` comes back as [`JoinError::Panicked`]. Aborting the handle
    /// cannot interrupt a call that has started; it only discards the result.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::runtime::{JoinError, RuntimeExt, RuntimeFree};
    ///
    /// futures::executor::block_on(async {
    ///     let sum = RuntimeFree.spawn_blocking(|| (1..=10).sum::<u32>());
    ///     assert_eq!(sum.await, Ok(55));
    ///     let failed = RuntimeFree.spawn_blocking(|| -> u32 { panic!("boom") });
    ///     assert_eq!(failed.await, Err(JoinError::Panicked("boom".into())));
    /// });
    /// ```
    fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (call, handle) = join::blocking_call(f);
        self.spawn_blocking_boxed(call);
        handle
    }

    /// A future that completes after `duration`; one that never completes
    /// when the deadline is past what an `Instant` can hold (a `Duration::MAX`
    /// wait means "no time limit").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::FutureExt as _;
    /// use flowline_core::runtime::{RuntimeExt, RuntimeFree};
    ///
    /// futures::executor::block_on(RuntimeFree.sleep(Duration::from_millis(1)));
    /// // Past what an `Instant` can hold: a timer that never fires.
    /// assert!(RuntimeFree.sleep(Duration::MAX).now_or_never().is_none());
    /// ```
    fn sleep(&self, duration: Duration) -> Sleep {
        match self.now().checked_add(duration) {
            Some(deadline) => self.sleep_until(deadline),
            None => Box::pin(std::future::pending()),
        }
    }
}

impl<R: Runtime + ?Sized> RuntimeExt for R {}
