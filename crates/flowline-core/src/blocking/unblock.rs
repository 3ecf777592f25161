use std::panic::resume_unwind;
use std::sync::Arc;

use crate::run::scope as run_scope;
use crate::runtime::{JoinError, Runtime, RuntimeExt as _, RuntimeFree};

/// Runs the blocking call `f` off the executor and returns its result: the
/// one-shot helper for a blocking call inside an async stage (`then`, an
/// async generator, an async consumer). Like Python's
/// `await asyncio.to_thread(f)`.
///
/// `f` runs on the `blocking` crate's thread pool, which works under every
/// executor. To use a runtime's own blocking pool, see [`unblock_on`]. The
/// call starts when the future is first polled.
///
/// Awaited inside a run (a fused stage such as `then`, an async consumer, a
/// stage behind a `boundary`), the call counts among the run's blocking calls, as a
/// `map_blocking` call does: a run that fails or is aborted while it is in
/// progress resolves only after it has returned (a blocking call cannot be
/// cancelled). Outside a run, nothing is counted.
///
/// # Panics
///
/// A panic in `f` is resumed in the task awaiting the result, so a stage
/// awaiting it fails with an error naming that stage.
///
/// # Examples
///
/// ```
/// use flowline_core::{blocking::unblock, producer};
///
/// let (lens, _) = futures::executor::block_on(
///     producer::iter(["a", "bb"])
///         .then(|name| unblock(move || name.len())) // e.g. std::fs::metadata
///         .run_collect(),
/// )
/// .unwrap();
/// assert_eq!(lens, [1, 2]);
/// ```
pub async fn unblock<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unblock_on(None, f).await
}

/// Like [`unblock`], on `runtime`'s blocking pool (tokio's
/// `spawn_blocking`, smol's `blocking` pool), or runtime-free when `None` —
/// pass the runtime the pipeline runs on, e.g. `flowline::default_runtime()`.
/// Counted among a run's blocking calls as [`unblock`]'s call is.
///
/// # Panics
///
/// As [`unblock`]; also if the runtime shuts down before the call returns.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use flowline_core::{blocking::unblock_on, runtime::{Runtime, RuntimeFree}};
///
/// let rt: Option<Arc<dyn Runtime>> = Some(Arc::new(RuntimeFree));
/// let n = futures::executor::block_on(unblock_on(rt, || 6 * 7));
/// assert_eq!(n, 42);
/// ```
pub async fn unblock_on<T, F>(runtime: Option<Arc<dyn Runtime>>, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Entered before the call is queued, not when it starts: the run must
    // not find itself idle while the call waits for a thread.
    let call = run_scope::current().map(|run| run.calls.enter());
    let f = move || {
        // Held until `f` returns or unwinds, even if this future is dropped.
        let _call = call;
        f()
    };
    let handle = match runtime {
        Some(rt) => rt.spawn_blocking(f),
        None => RuntimeFree.spawn_blocking(f),
    };
    match handle.await {
        Ok(value) => value,
        Err(JoinError::Panicked(message)) => resume_unwind(Box::new(message)),
        Err(e) => panic!("flowline: blocking call did not complete: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::mpsc;
    use std::task::Context;

    use super::*;
    use crate::run::RunContext;

    #[test]
    fn a_call_inside_a_run_counts_until_it_returns_even_if_abandoned() {
        let run = Arc::new(RunContext::default());
        let (release, wait) = mpsc::channel::<()>();
        let mut call = Box::pin(unblock(move || wait.recv().unwrap()));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let first = run_scope::scope(&run, || call.as_mut().poll(&mut cx));
        assert!(first.is_pending());
        assert_eq!(run.calls.active(), 1);
        // Abandoned (its stage dropped): the call still runs, and counts.
        drop(call);
        assert_eq!(run.calls.active(), 1);
        release.send(()).unwrap();
        futures::executor::block_on(run.calls.idle());
        assert_eq!(run.calls.active(), 0);
    }

    #[test]
    fn a_call_outside_a_run_counts_nowhere() {
        let run = Arc::new(RunContext::default());
        // A run's scope ends with the poll it covers.
        run_scope::scope(&run, || {});
        let (release, wait) = mpsc::channel::<()>();
        let mut call = Box::pin(unblock(move || wait.recv().unwrap()));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(call.as_mut().poll(&mut cx).is_pending());
        assert_eq!(run.calls.active(), 0);
        release.send(()).unwrap();
        futures::executor::block_on(call);
        assert_eq!(run.calls.active(), 0);
    }
}
