//! Which run the current thread is driving, for consumers that cannot be
//! told: a `Sink` such as [`consumer::blocking`](crate::consumer::blocking)
//! is handed to `Pipeline::run` as any sink is, yet its calls belong to the
//! run (counted among its blocking calls, stopped when it halts, inside its
//! runtime context). The driver marks each poll with [`scope`]; the sink
//! reads [`current`] when its first item arrives.

use std::cell::RefCell;
use std::sync::Arc;

use super::RunContext;

thread_local! {
    static CURRENT: RefCell<Option<Arc<RunContext>>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` as the current run of this thread (restored after,
/// also on unwind, so nested runs see their own).
pub(crate) fn scope<R>(ctx: &Arc<RunContext>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<RunContext>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(ctx.clone()));
    let _restore = Restore(previous);
    f()
}

/// The run this thread is driving, if any.
pub(crate) fn current() -> Option<Arc<RunContext>> {
    CURRENT.with(|c| c.borrow().clone())
}
