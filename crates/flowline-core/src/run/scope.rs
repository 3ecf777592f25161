//! Which run the current thread is driving, for consumers that cannot be
//! told: a `Sink` such as [`consumer::blocking`](crate::consumer::blocking)
//! is handed to `Pipeline::run` as any sink is, yet its calls belong to the
//! run (counted among its blocking calls, stopped when it halts, inside its
//! runtime context). The driver and each stage task (`InRun` in `core.rs`)
//! mark each poll with [`scope_in`]; the sink, and an `unblock` call, read
//! [`current`] when they start.

use std::cell::RefCell;
use std::sync::Arc;

use super::RunContext;

thread_local! {
    static CURRENT: RefCell<Option<Arc<RunContext>>> = const { RefCell::new(None) };
}

/// Runs `f` with the run whose context is in `slot` current on this thread
/// (restored after, also on unwind, so nested runs see their own), moved
/// in and back rather than cloned (see [`swap_in`](crate::time::swap_in)).
pub(crate) fn scope_in<R>(slot: &mut Option<Arc<RunContext>>, f: impl FnOnce() -> R) -> R {
    crate::time::swap_in(&CURRENT, slot, f)
}

/// [`scope_in`] with a context of its own (for tests).
#[cfg(test)]
pub(crate) fn scope<R>(ctx: &Arc<RunContext>, f: impl FnOnce() -> R) -> R {
    scope_in(&mut Some(ctx.clone()), f)
}

/// The run this thread is driving, if any.
pub(crate) fn current() -> Option<Arc<RunContext>> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_is_moved_in_and_back_not_cloned() {
        // A clone per poll made a run's tasks on two threads contend on
        // the context's reference count (W1 on tokio at 8192: 1.5x slower).
        let ctx = Arc::new(RunContext::default());
        let mut slot = Some(ctx.clone());
        let count = Arc::strong_count(&ctx);
        let inside = scope_in(&mut slot, || {
            let count_inside = Arc::strong_count(&ctx);
            let current_is_ctx = current().is_some_and(|c| Arc::ptr_eq(&c, &ctx));
            (count_inside, current_is_ctx)
        });
        assert_eq!(inside, (count, true));
        assert!(slot.is_some_and(|c| Arc::ptr_eq(&c, &ctx)));
        assert!(current().is_none());
    }
}
