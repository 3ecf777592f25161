use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable, BoxFuture, LocalBoxFuture};
use futures::FutureExt;

use super::BlockingFn;

/// Why a task did not produce its output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The task panicked; the panic message is kept.
    Panicked(String),
    /// The task was aborted (or its runtime shut down) before it finished.
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            JoinError::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Turns a panic payload into its message (`&str` and `String` payloads), the
/// way the default panic hook prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// A handle to a spawned task: await it for the output, [`abort`](Self::abort)
/// it, or [`detach`](Self::detach) it.
///
/// Dropping a `JoinHandle` aborts the task (the smol convention), so a task can
/// never outlive the code that forgot about it.
///
/// # Examples
///
/// ```
/// use flowline_core::runtime::{JoinError, RuntimeExt, RuntimeFree};
///
/// futures::executor::block_on(async {
///     let failing = RuntimeFree.spawn(async { panic!("boom") });
///     assert_eq!(failing.await, Err(JoinError::Panicked("boom".into())));
/// });
/// ```
#[must_use = "dropping a JoinHandle cancels the task; call .detach() to let it run"]
pub struct JoinHandle<T> {
    result: oneshot::Receiver<std::thread::Result<T>>,
    abort: Option<AbortHandle>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("detached", &self.abort.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> JoinHandle<T> {
    /// Asks the task to stop. It is dropped the next time its executor would
    /// poll it; awaiting the handle then gives [`JoinError::Cancelled`] (unless
    /// it had already finished).
    pub fn abort(&self) {
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }

    /// Lets the task run to completion even though nobody awaits it.
    pub fn detach(mut self) {
        self.abort = None;
    }

    /// Whether the task has finished (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.result.is_terminated()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match futures::ready!(self.result.poll_unpin(cx)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(payload)) => Err(JoinError::Panicked(panic_message(&*payload))),
            Err(oneshot::Canceled) => Err(JoinError::Cancelled),
        })
    }
}

use futures::future::FusedFuture as _;

/// Wraps `future` for spawning: abortable, panic-catching, result sent to the
/// returned handle.
pub(crate) fn task<F>(future: F) -> (BoxFuture<'static, ()>, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, handle) = guarded(future);
    (task.boxed(), handle)
}

/// [`task`] for a future that is not `Send`, to spawn on the current thread.
/// The handle is `Send` when the output is: only the future stays put.
pub(crate) fn local_task<F>(future: F) -> (LocalBoxFuture<'static, ()>, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (task, handle) = guarded(future);
    (task.boxed_local(), handle)
}

fn guarded<F: Future>(future: F) -> (impl Future<Output = ()>, JoinHandle<F::Output>) {
    let (tx, rx) = oneshot::channel();
    let (abort, registration) = AbortHandle::new_pair();
    let guarded = Abortable::new(AssertUnwindSafe(future).catch_unwind(), registration);
    let task = async move {
        if let Ok(result) = guarded.await {
            let _ = tx.send(result);
        }
    };
    (
        task,
        JoinHandle {
            result: rx,
            abort: Some(abort),
        },
    )
}

/// Wraps a blocking closure: panic-catching, result sent to the returned
/// handle; skipped if the handle was aborted before the call started.
pub(crate) fn blocking_call<F, T>(f: F) -> (BlockingFn, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let (abort, registration) = AbortHandle::new_pair();
    let call = Box::new(move || {
        if registration.handle().is_aborted() {
            return;
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    (
        call,
        JoinHandle {
            result: rx,
            abort: Some(abort),
        },
    )
}
