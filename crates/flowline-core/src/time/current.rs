//! The runtime that is current while a pipeline polls user code.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// Runs `f` with `runtime` current (restoring the previous one after, also
/// when `f` unwinds).
pub(crate) fn enter<R>(runtime: Option<&Arc<dyn Runtime>>, f: impl FnOnce() -> R) -> R {
    let Some(runtime) = runtime else {
        return f();
    };
    struct Restore(Option<Arc<dyn Runtime>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|current| current.borrow_mut().replace(runtime.clone()));
    let _restore = Restore(previous);
    f()
}

pin_project! {
    /// A task future polled with its pipeline's runtime current.
    pub(crate) struct InRuntime<F> {
        #[pin]
        future: F,
        runtime: Arc<dyn Runtime>,
    }
}

impl<F> InRuntime<F> {
    pub(crate) fn new(future: F, runtime: Arc<dyn Runtime>) -> Self {
        InRuntime { future, runtime }
    }
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        enter(Some(this.runtime), || future.poll(cx))
    }
}
