use std::panic::resume_unwind;
use std::sync::Arc;

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
