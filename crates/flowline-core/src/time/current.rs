//! The runtime that is current while a pipeline polls user code.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::LocalKey;

use pin_project_lite::pin_project;

use crate::runtime::{default_runtime, Runtime, RuntimeFree};

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Runtime>>> = const { RefCell::new(None) };
}

/// The runtime timers of [`crate::time`] use here: the one of the pipeline
/// polling this code, else [`default_runtime`], else [`RuntimeFree`].
///
/// # Examples
///
/// ```
/// let rt = flowline_core::time::current_runtime();
/// # #[cfg(feature = "smol")]
/// assert_eq!(rt.name(), "smol"); // no pipeline here: the default runtime
/// ```
pub fn current_runtime() -> Arc<dyn Runtime> {
    CURRENT
        .with(|current| current.borrow().clone())
        .or_else(default_runtime)
        .unwrap_or_else(|| Arc::new(RuntimeFree))
}

/// The runtime of the pipeline polling this code, if any (no fallback).
pub(crate) fn pipeline_runtime() -> Option<Arc<dyn Runtime>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `f` with the value in `slot` as this thread's `current` one
/// (restoring the previous one after, also when `f` unwinds); a `None`
/// slot leaves the current value as it is. The value is moved into place
/// and back instead of cloned, so no reference count changes — a run's
/// tasks, polled on several threads, would otherwise contend on that count
/// at every poll. `slot` holds the previous value while `f` runs. Both
/// "current" thread-locals use it: the runtime ([`enter_in`]) and the run
/// (`run::scope::scope_in`).
pub(crate) fn swap_in<T: 'static, R>(
    current: &'static LocalKey<RefCell<Option<T>>>,
    slot: &mut Option<T>,
    f: impl FnOnce() -> R,
) -> R {
    if slot.is_none() {
        return f();
    }
    struct Restore<'a, T: 'static>(&'static LocalKey<RefCell<Option<T>>>, &'a mut Option<T>);
    impl<T: 'static> Drop for Restore<'_, T> {
        fn drop(&mut self) {
            self.0
                .with(|c| std::mem::swap(&mut *c.borrow_mut(), self.1));
        }
    }
    current.with(|c| std::mem::swap(&mut *c.borrow_mut(), slot));
    let _restore = Restore(current, slot);
    f()
}

/// Runs `f` with the runtime in `slot` current (see [`swap_in`]; a `None`
/// slot, a runtime-free run, leaves the current runtime as it is).
pub(crate) fn enter_in<R>(slot: &mut Option<Arc<dyn Runtime>>, f: impl FnOnce() -> R) -> R {
    swap_in(&CURRENT, slot, f)
}

pin_project! {
    /// A task future polled with its pipeline's runtime current.
    pub(crate) struct InRuntime<F> {
        #[pin]
        future: F,
        // Moved into the thread's current runtime for each poll (`enter_in`).
        runtime: Option<Arc<dyn Runtime>>,
    }
}

impl<F> InRuntime<F> {
    pub(crate) fn new(future: F, runtime: Arc<dyn Runtime>) -> Self {
        InRuntime {
            future,
            runtime: Some(runtime),
        }
    }
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        enter_in(this.runtime, || future.poll(cx))
    }
}
