use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use futures::task::AtomicWaker;

use crate::pipeline::Pipeline;
use crate::queue::{BatchOut, PollBatch};
use crate::run::{Core, CountOnDrop, Counter, Lifecycle, StageInfo};

pin_project! {
    /// The source stage of a pipeline: counts what its producer yields,
    /// names it if it panics, and stops pulling from it once the run is
    /// asked to shut down ([`PipelineHandle::shutdown`](crate::PipelineHandle::shutdown)).
    #[must_use = "streams do nothing unless polled"]
    pub struct Source<S> {
        #[pin]
        inner: S,
        info: Arc<StageInfo>,
        lifecycle: Arc<Lifecycle>,
        waker: Arc<AtomicWaker>,
    }
}

impl<S> Source<S> {
    pub(crate) fn pipeline(name: &str, inner: S) -> Pipeline<Self>
    where
        S: Stream,
    {
        Self::pipeline_with(name, inner, Source::poll_batch)
    }

    /// [`pipeline`](Self::pipeline) whose source hands over batches with
    /// `batch`.
    pub(crate) fn pipeline_with(name: &str, inner: S, batch: PollBatch<Self>) -> Pipeline<Self>
    where
        S: Stream,
    {
        let (core, info) = Core::new(name);
        let lifecycle = core.ctx.lifecycle.clone();
        let waker = lifecycle.register_source();
        let source = Source {
            inner,
            info,
            lifecycle,
            waker,
        };
        Pipeline::from_batched(source, core, batch)
    }
}

impl<S: fmt::Debug> fmt::Debug for Source<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Source<S> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        // Checked before polling the producer, so an item the producer hands
        // over is always counted and passed on: shutdown never strands one.
        if this.lifecycle.is_stopping() {
            return Poll::Ready(None);
        }
        let inner = this.inner;
        match this.info.guard(|| inner.poll_next(cx)) {
            Poll::Ready(item) => Poll::Ready(this.info.emit(item)),
            Poll::Pending => {
                this.waker.register(cx.waker());
                if this.lifecycle.is_stopping() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: Stream> Source<S> {
    /// A batch of the producer's items (see
    /// [`PollBatch`](crate::queue::PollBatch)), taken from the producer (a
    /// plain stream) item by item in one call: the stop check, the panic
    /// guard and the count are paid once per batch, so a shutdown lets at
    /// most the batch being taken through (each of its items counted and
    /// passed on, as item by item).
    pub(crate) fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let this = self.project();
        if this.lifecycle.is_stopping() {
            return Poll::Ready(false);
        }
        let out = out.items();
        let (lower, _) = this.inner.size_hint();
        out.reserve(max.min(lower.max(1)));
        // Counted also when the producer unwinds: what it handed over is in
        // the batch (in flight), as it would be item by item.
        let mut taken = CountOnDrop::new(&this.info.out);
        let inner = this.inner;
        let polled = this
            .info
            .guard(|| take_items(inner, cx, out, max, &mut taken.n));
        match polled {
            Poll::Pending if taken.n > 0 => Poll::Ready(true),
            Poll::Pending => {
                this.waker.register(cx.waker());
                if this.lifecycle.is_stopping() {
                    return Poll::Ready(false);
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

/// Moves at most `max` items from `stream` to `out`, counting them in
/// `taken`: `Ready(true)` when it took `max`, `Ready(false)` when the
/// stream ended, `Pending` when it would wait.
///
/// Out of line with its state as `&mut` parameters, which nothing the loop
/// calls can reach: the batch's length and the count then live in
/// registers instead of a store and a load per item (as the per-item
/// pump's `fill`).
#[inline(never)]
fn take_items<S: Stream>(
    mut stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    out: &mut Vec<S::Item>,
    max: usize,
    taken: &mut usize,
) -> Poll<bool> {
    while *taken < max {
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                out.push(item);
                *taken += 1;
            }
            Poll::Ready(None) => return Poll::Ready(false),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(true)
}

impl<I: Iterator> Source<futures::stream::Iter<I>> {
    /// [`poll_batch`](Source::poll_batch) for an iterator: the batch is
    /// extended from the iterator directly (for a `TrustedLen` one such as
    /// a range, in a single reservation and a tight loop), with the same
    /// stop check and counting.
    pub(crate) fn poll_iter_batch(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let this = self.project();
        if this.lifecycle.is_stopping() {
            return Poll::Ready(false);
        }
        // Counted when dropped, also if the iterator unwinds: what it
        // handed over is in the batch (in flight), as item by item.
        let batch = Growth::new(out.items(), &this.info.out);
        let items = this.inner.get_mut().get_mut();
        this.info
            .guard(|| batch.items.extend(items.by_ref().take(max)));
        // Fewer than asked: the iterator returned `None`.
        Poll::Ready(batch.grown() == max)
    }
}

/// A producer that hands over whole batches itself (the receiving end of a
/// queue fed by a thread): its source's batch path takes them as they are.
pub(crate) trait BatchProducer: Stream {
    /// Appends at most `max` (≥ 1) items to `out`, as
    /// [`PollBatch`](crate::queue::PollBatch) says.
    fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut Vec<Self::Item>,
        max: usize,
    ) -> Poll<bool>;
}

/// [`Source::poll_batch`] for a producer that hands over whole batches: one
/// call per batch, with the same stop check and counting.
pub(crate) fn poll_producer_batch<S: BatchProducer>(
    source: Pin<&mut Source<S>>,
    cx: &mut Context<'_>,
    out: &mut dyn BatchOut<Source<S>>,
    max: usize,
) -> Poll<bool> {
    let this = source.project();
    if this.lifecycle.is_stopping() {
        return Poll::Ready(false);
    }
    let batch = Growth::new(out.items(), &this.info.out);
    let inner = this.inner;
    let polled = this.info.guard(|| inner.poll_batch(cx, batch.items, max));
    drop(batch);
    if polled.is_pending() {
        this.waker.register(cx.waker());
        if this.lifecycle.is_stopping() {
            return Poll::Ready(false);
        }
    }
    polled
}

/// A batch being extended, whose growth is added to a counter when dropped.
struct Growth<'a, T> {
    items: &'a mut Vec<T>,
    before: usize,
    counter: &'a Counter,
}

impl<'a, T> Growth<'a, T> {
    fn new(items: &'a mut Vec<T>, counter: &'a Counter) -> Self {
        let before = items.len();
        Growth {
            items,
            before,
            counter,
        }
    }

    fn grown(&self) -> usize {
        self.items.len() - self.before
    }
}

impl<T> Drop for Growth<'_, T> {
    fn drop(&mut self) {
        self.counter.bump_by(self.grown() as u64);
    }
}
