use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{BlockingFn, Runtime, Sleep};

/// The runtime-free fallback: timers from `async-io`, blocking calls on the
/// `blocking` crate's thread pool.
///
/// A pipeline with no runtime never spawns: it runs as one future, polling its
/// boundary tasks itself, so it works under `futures::executor::block_on` or
/// any executor flowline has no adapter for. `RuntimeFree` is what its stages
/// use for timers and blocking work.
///
/// [`spawn_boxed`](Runtime::spawn_boxed) has no executor to spawn onto, so it
/// drives the task on a thread of the blocking pool with
/// `futures::executor::block_on`: correct, but a thread per task — prefer a
/// real runtime when you spawn many tasks.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::runtime::{RuntimeExt, RuntimeFree};
///
/// futures::executor::block_on(async {
///     RuntimeFree.sleep(Duration::from_millis(1)).await;
///     let task = RuntimeFree.spawn(async { 1 + 1 });
///     assert_eq!(task.await.unwrap(), 2);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeFree;

impl Runtime for RuntimeFree {
    fn name(&self) -> &'static str {
        "runtime-free"
    }

    fn spawn_boxed(&self, task: BoxFuture<'static, ()>) {
        blocking::unblock(move || futures::executor::block_on(task)).detach();
    }

    fn spawn_blocking_boxed(&self, f: BlockingFn) {
        blocking::unblock(f).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        async_io::Timer::at(deadline).map(drop).boxed()
    }

    fn has_executor(&self) -> bool {
        false
    }
}
