//! [`LocalTasks`]: the stage tasks of a pipeline that are not `Send` (the
//! `_local` stages: `boundary_local`, …), kept on the thread that built them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};

use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};

type Set = FuturesUnordered<LocalBoxFuture<'static, ()>>;

thread_local! {
    static PARKED: RefCell<HashMap<u64, Set>> = RefCell::new(HashMap::new());
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// A `Send` handle to tasks that are not: the futures stay in a table of the
/// thread that made them, the handle holds only their key.
///
/// Why: a pipeline's [`Core`](super::Core) must stay `Send` so that pipelines
/// of `Send` stages can be spawned; a pipeline with local tasks is itself
/// never `Send` (its stream holds a `BoundaryLocal`), so its core is only
/// ever used on that thread, which [`with`](Self::with) checks.
#[derive(Debug)]
pub(crate) struct LocalTasks {
    key: u64,
    thread: ThreadId,
}

impl LocalTasks {
    pub(crate) fn new() -> Self {
        LocalTasks {
            key: NEXT_KEY.fetch_add(1, Relaxed),
            thread: thread::current().id(),
        }
    }

    /// Runs `f` on the tasks. They are out of the table meanwhile: polling a
    /// task may build, poll or drop another pipeline's local tasks.
    fn with<R>(&self, f: impl FnOnce(&mut Set) -> R) -> R {
        assert_eq!(
            thread::current().id(),
            self.thread,
            "flowline: a pipeline with a `_local` stage was used on another thread \
             than the one that built it"
        );
        struct PutBack(u64, Option<Set>);
        impl Drop for PutBack {
            fn drop(&mut self) {
                if let Some(set) = self.1.take() {
                    PARKED.with(|p| p.borrow_mut().insert(self.0, set));
                }
            }
        }
        let set = PARKED.with(|p| p.borrow_mut().remove(&self.key));
        let mut guard = PutBack(self.key, Some(set.unwrap_or_default()));
        let result = f(guard.1.as_mut().expect("put in above"));
        drop(guard);
        result
    }

    pub(crate) fn push(&self, task: LocalBoxFuture<'static, ()>) {
        self.with(|set| set.push(task));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.with(|set| set.is_empty())
    }

    /// Every task, to start them somewhere else.
    pub(crate) fn take_all(&self) -> Vec<LocalBoxFuture<'static, ()>> {
        self.with(|set| std::mem::take(set).into_iter().collect())
    }

    /// Drops every task: they are cancelled.
    pub(crate) fn clear(&self) {
        let tasks = self.with(std::mem::take);
        drop(tasks);
    }

    /// Polls the tasks; ready once all of them have finished.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.with(|set| {
            while futures::ready!(set.poll_next_unpin(cx)).is_some() {}
            Poll::Ready(())
        })
    }
}

impl Drop for LocalTasks {
    fn drop(&mut self) {
        if thread::current().id() != self.thread {
            // Unreachable through the API (see the type's docs); the tasks
            // then stay in their thread's table until it exits.
            return;
        }
        // Dropped outside the borrow: a task's drop may drop other local tasks.
        let tasks = PARKED
            .try_with(|p| p.borrow_mut().remove(&self.key))
            .ok()
            .flatten();
        drop(tasks);
    }
}
