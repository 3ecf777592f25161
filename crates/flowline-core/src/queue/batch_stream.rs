//! How a stage hands over its items a whole batch at a time.
//!
//! A boundary's upstream task asks the stages it runs for a batch instead
//! of one item per poll: a queue's receiver hands its batch over whole, a
//! fused `map` transforms a batch in place, a `filter` retains in it (a
//! `filter_map` does both), a source takes a batch from its producer in one call. A pipeline whose
//! every stage since its last boundary (or source) can do so carries the
//! last stage's [`PollBatch`] function; any other stage leaves it out, and
//! its boundary pumps it item by item, as a stream.
//!
//! A function pointer carried beside the stream, rather than a trait every
//! stream must have, keeps `Pipeline::boundary` open to any stream (an
//! `impl Stream` from user code included) without specialization.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use crate::run::{Counter, StageInfo};

/// Appends at most `max` (≥ 1) items of a stream `S` to `out`.
///
/// `Ready(true)`: at least one was appended and more may follow;
/// `Ready(false)`: the stream ended (items appended before its end stay in
/// `out`; do not poll again); `Pending`: nothing was appended and the waker
/// is registered, as by `poll_next`.
pub(crate) type PollBatch<S> =
    fn(Pin<&mut S>, &mut Context<'_>, &mut dyn BatchOut<S>, usize) -> Poll<bool>;

/// Where a [`PollBatch`] puts its items: a `Vec` of the stream's items.
///
/// (A trait rather than `Vec<S::Item>` in the signature, so that a
/// `PollBatch<S>` can be stored for any `S`, before `S: Stream` is known.)
pub(crate) trait BatchOut<S> {
    /// The batch being filled.
    fn items(&mut self) -> &mut Vec<S::Item>
    where
        S: Stream;

    /// Whether the items a stage passed on before user code unwound
    /// must reach the caller (they are delivered: see [`KeepPrefix`]), or
    /// may go with the failure (a pump drops its open batch when the run
    /// fails), which lets a `map` transform a batch in place.
    fn keeps_prefix(&self) -> bool {
        false
    }
}

impl<S: Stream> BatchOut<S> for Vec<S::Item> {
    fn items(&mut self) -> &mut Vec<S::Item> {
        self
    }
}

/// A batch whose items passed on before a failure are delivered (by
/// `run_fold`), so every stage must leave them in it.
pub(crate) struct KeepPrefix<'a, T>(pub(crate) &'a mut Vec<T>);

impl<S: Stream> BatchOut<S> for KeepPrefix<'_, S::Item> {
    fn items(&mut self) -> &mut Vec<S::Item> {
        self.0
    }

    fn keeps_prefix(&self) -> bool {
        true
    }
}

/// Asks `upstream` for a batch into `items`, keeping its prefix on a
/// failure if `keep_prefix`.
pub(crate) fn poll_into<S>(
    upstream: &Batched<S>,
    stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    items: &mut Vec<S::Item>,
    max: usize,
    keep_prefix: bool,
) -> Poll<bool>
where
    S: Stream,
{
    if keep_prefix {
        (upstream.poll)(stream, cx, &mut KeepPrefix(items), max)
    } else {
        (upstream.poll)(stream, cx, items, max)
    }
}

/// A stream's [`PollBatch`], and the stage whose `out` counted the items it
/// hands over (the last stage with a count of its own: a source, a filter,
/// a boundary — `map` and `inspect` derive theirs).
///
/// A stage whose user code unwinds mid-batch gives the items it had not
/// reached back to that count ([`take_back`](Self::take_back)), so a failed
/// run reports what item-by-item polling would: a source is charged only
/// with the items a stage got to, a boundary still holds what nobody took.
pub(crate) struct Batched<S> {
    pub(crate) poll: PollBatch<S>,
    pub(crate) counted_by: Arc<StageInfo>,
}

impl<S> Batched<S> {
    pub(crate) fn new(poll: PollBatch<S>, counted_by: Arc<StageInfo>) -> Self {
        Batched { poll, counted_by }
    }

    /// The same count, for the stream a one-to-one stage makes of this one.
    pub(crate) fn passed_to<T>(&self, poll: PollBatch<T>) -> Batched<T> {
        Batched::new(poll, self.counted_by.clone())
    }

    /// Uncounts `n` items handed over but never reached.
    pub(crate) fn take_back(&self, n: usize) {
        let stage = &self.counted_by;
        stage.out.take_back(n as u64);
        if stage.is_filtering() {
            // A fused filter's `filtered` is what did not come out: these
            // did, as far as its predicate goes.
            stage.held.add(n as u64);
        }
    }
}

impl<S> Clone for Batched<S> {
    fn clone(&self) -> Self {
        Batched::new(self.poll, self.counted_by.clone())
    }
}

/// Calls [`Batched::take_back`] for the items of a batch not reached when
/// dropped before [`finish`](Self::finish) — by unwinding out of user code.
pub(crate) struct Reached<'a, S> {
    upstream: &'a Batched<S>,
    total: usize,
    /// Items done with (the one user code is working on not included).
    pub(crate) done: usize,
}

impl<'a, S> Reached<'a, S> {
    pub(crate) fn new(upstream: &'a Batched<S>, total: usize) -> Self {
        Reached {
            upstream,
            total,
            done: 0,
        }
    }

    /// The batch was finished: nothing to give back.
    pub(crate) fn finish(self) {
        std::mem::forget(self);
    }
}

impl<S> Drop for Reached<'_, S> {
    fn drop(&mut self) {
        // The item user code was working on failed (counted by the stage);
        // those after it were never reached.
        self.upstream
            .take_back(self.total.saturating_sub(self.done + 1));
    }
}

/// A batch that user code is working through from `start`: if it unwinds
/// (dropped before [`finish`](Self::finish)), the batch is cut to the
/// `kept` items before the failure — what item-by-item polling would have
/// passed on — the rest is dropped, and the kept items are added to
/// `counter`, if any.
pub(crate) struct Truncate<'a, T> {
    pub(crate) items: &'a mut Vec<T>,
    start: usize,
    pub(crate) kept: usize,
    counter: Option<&'a Counter>,
}

impl<'a, T> Truncate<'a, T> {
    pub(crate) fn new(items: &'a mut Vec<T>, start: usize, counter: Option<&'a Counter>) -> Self {
        Truncate {
            items,
            start,
            kept: 0,
            counter,
        }
    }

    /// The batch was finished: it stays as it is. Returns `kept`, not
    /// counted.
    pub(crate) fn finish(self) -> usize {
        let kept = self.kept;
        std::mem::forget(self);
        kept
    }
}

impl<T> Drop for Truncate<'_, T> {
    fn drop(&mut self) {
        self.items.truncate(self.start + self.kept);
        if let Some(counter) = self.counter {
            counter.bump_by(self.kept as u64);
        }
    }
}
