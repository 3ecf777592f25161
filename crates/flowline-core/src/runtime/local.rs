//! The local executor a thread runs, for tasks that are not `Send`: set by
//! `SmolRuntime::run_local` / `TokioRuntime::run_local` for the futures they
//! wrap, used by those runtimes' `spawn_local_boxed`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::future::LocalBoxFuture;
use pin_project_lite::pin_project;

type SpawnFn = Rc<dyn Fn(LocalBoxFuture<'static, ()>)>;

thread_local! {
    /// The runtime's name and how to spawn on its local executor.
    static CURRENT: RefCell<Option<(&'static str, SpawnFn)>> = const { RefCell::new(None) };
}

pin_project! {
    /// A future polled with a local executor current on its thread.
    pub(crate) struct LocalScope<F> {
        runtime: &'static str,
        spawn: SpawnFn,
        #[pin]
        future: F,
    }
}

impl<F> LocalScope<F> {
    /// `future`, during whose polls `spawn` spawns the local tasks of the
    /// runtime named `runtime`.
    pub(crate) fn new(
        runtime: &'static str,
        spawn: impl Fn(LocalBoxFuture<'static, ()>) + 'static,
        future: F,
    ) -> Self {
        LocalScope {
            runtime,
            spawn: Rc::new(spawn),
            future,
        }
    }
}

impl<F: Future> Future for LocalScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(Option<(&'static str, SpawnFn)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let this = self.project();
        let scope = (*this.runtime, this.spawn.clone());
        let previous = CURRENT.with(|current| current.borrow_mut().replace(scope));
        let _restore = Restore(previous);
        this.future.poll(cx)
    }
}

/// Spawns `task` on the local executor of `runtime` current on this thread,
/// or hands it back when there is none.
pub(crate) fn spawn_current(
    runtime: &'static str,
    task: LocalBoxFuture<'static, ()>,
) -> Result<(), LocalBoxFuture<'static, ()>> {
    // Cloned out of the cell: spawning may poll code that reads it.
    let spawn = CURRENT.with(|current| match &*current.borrow() {
        Some((name, spawn)) if *name == runtime => Some(spawn.clone()),
        _ => None,
    });
    match spawn {
        Some(spawn) => {
            spawn(task);
            Ok(())
        }
        None => Err(task),
    }
}
