use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::queue::{poll_into, BatchOut, Batched};
use crate::run::{Counter, StageInfo};

pin_project! {
    /// Stream for [`Pipeline::filter`](crate::Pipeline::filter).
    #[must_use = "streams do nothing unless polled"]
    pub struct Filter<S, F> {
        #[pin]
        upstream: S,
        predicate: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    }
}

impl<S, F> Filter<S, F> {
    pub(crate) fn new(
        upstream: S,
        predicate: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    ) -> Self {
        info.set_filtering();
        Filter {
            upstream,
            predicate,
            info,
            upstream_batch,
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Filter<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl<S, F> Stream for Filter<S, F>
where
    S: Stream,
    F: FnMut(&S::Item) -> bool,
{
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        while let Some(item) = futures::ready!(this.upstream.as_mut().poll_next(cx)) {
            if this.info.guard(|| (this.predicate)(&item)) {
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.upstream.size_hint().1)
    }
}

impl<S, F> Filter<S, F>
where
    S: Stream,
    F: FnMut(&S::Item) -> bool,
{
    /// A batch from upstream with the rejected items taken out (see
    /// [`PollBatch`]); only for an upstream that hands over batches.
    pub(crate) fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let mut this = self.project();
        let upstream = this
            .upstream_batch
            .as_ref()
            .expect("flowline: a batch asked of a filter whose upstream moves items one by one");
        let keep_prefix = out.keeps_prefix();
        let out = out.items();
        let mut own = Vec::new();
        loop {
            // A batch of its own, retained as a whole; appended to what
            // `out` holds, if anything.
            let items = if out.is_empty() { &mut *out } else { &mut own };
            let more = futures::ready!(poll_into(
                upstream,
                this.upstream.as_mut(),
                cx,
                items,
                max,
                keep_prefix
            ));
            let predicate = &mut *this.predicate;
            let kept = this
                .info
                .guard(|| retain(items, predicate, &this.info.out, upstream));
            if !own.is_empty() {
                out.append(&mut own);
            }
            // Everything filtered out: there may be more to read.
            if kept > 0 || !more {
                return Poll::Ready(more);
            }
        }
    }
}

/// Keeps the items of `items` that `keep` accepts, in order, counts them
/// in `out` and returns how many it kept.
///
/// If `keep` unwinds, `items` keeps only the accepted items before the
/// failure (counted: they go on, as they would have one by one), and the
/// items after it are given back to `upstream`.
fn retain<T, S>(
    items: &mut Vec<T>,
    mut keep: impl FnMut(&T) -> bool,
    out: &Counter,
    upstream: &Batched<S>,
) -> usize {
    /// Only the kept items are counted as they go: after an unwinding
    /// `retain`, `items` holds the kept ones, then the one that failed and
    /// those not reached.
    struct Retaining<'a, T, S> {
        items: &'a mut Vec<T>,
        kept: usize,
        out: &'a Counter,
        upstream: &'a Batched<S>,
    }
    impl<T, S> Drop for Retaining<'_, T, S> {
        fn drop(&mut self) {
            let unreached = self.items.len().saturating_sub(self.kept + 1);
            self.items.truncate(self.kept);
            self.out.bump_by(self.kept as u64);
            self.upstream.take_back(unreached);
        }
    }
    let mut retaining = Retaining {
        items,
        kept: 0,
        out,
        upstream,
    };
    let Retaining { items, kept, .. } = &mut retaining;
    // `retain` writes nothing until the first item goes, then moves each
    // kept item once.
    items.retain(|item| {
        let keeps = keep(item);
        *kept += usize::from(keeps);
        keeps
    });
    let kept = items.len();
    std::mem::forget(retaining);
    out.bump_by(kept as u64);
    kept
}
