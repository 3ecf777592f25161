use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::queue::{poll_into, BatchOut, Batched, Reached};
use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::map`](crate::Pipeline::map).
    #[must_use = "streams do nothing unless polled"]
    pub struct Map<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    }
}

impl<S, F> Map<S, F> {
    pub(crate) fn new(
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    ) -> Self {
        info.set_passthrough();
        Map {
            upstream,
            f,
            info,
            upstream_batch,
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Map<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl<S, F, U> Stream for Map<S, F>
where
    S: Stream,
    F: FnMut(S::Item) -> U,
{
    type Item = U;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let this = self.project();
        match futures::ready!(this.upstream.poll_next(cx)) {
            Some(item) => {
                // Not counted: `out` is derived (see `set_passthrough`).
                Poll::Ready(Some(this.info.guard(|| (this.f)(item))))
            }
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.upstream.size_hint()
    }
}

impl<S, F, U> Map<S, F>
where
    S: Stream,
    F: FnMut(S::Item) -> U,
{
    /// A batch from upstream, mapped as a whole (see
    /// [`PollBatch`]); only for an upstream that hands over batches.
    pub(crate) fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let this = self.project();
        let upstream = this
            .upstream_batch
            .as_ref()
            .expect("flowline: a batch asked of a map whose upstream moves items one by one");
        let keep_prefix = out.keeps_prefix();
        let mut items = Vec::new();
        let more = futures::ready!(poll_into(
            upstream,
            this.upstream,
            cx,
            &mut items,
            max,
            keep_prefix
        ));
        let (f, out) = (this.f, out.items());
        if !keep_prefix && out.is_empty() {
            // In place: collecting a mapped `vec::IntoIter` reuses its
            // buffer when `U` fits the input's slots. If `f` unwinds the
            // mapped items go with the batch (the caller drops it as the
            // run fails); those not reached are given back.
            let mut reached = Reached::new(upstream, items.len());
            let done = &mut reached.done;
            this.info.guard(|| {
                *out = items
                    .into_iter()
                    .map(|item| {
                        let item = f(item);
                        *done += 1;
                        item
                    })
                    .collect();
            });
            reached.finish();
            return Poll::Ready(more);
        }
        let mut batch = Mapping {
            start: out.len(),
            out,
            reached: Reached::new(upstream, items.len()),
        };
        let Mapping { out, .. } = &mut batch;
        // One guard for the batch: a panic marks the stage all the same.
        // Extended, so that if `f` unwinds `out` keeps the items mapped
        // before: they go on as they would have one by one (see
        // `run_fold`), and their count is `out`'s growth, with no counting
        // per item.
        this.info.guard(|| out.extend(items.into_iter().map(f)));
        batch.finish();
        Poll::Ready(more)
    }
}

/// A batch being mapped into `out` from `start`: if `f` unwinds, the items
/// mapped so far are `out`'s growth, and the rest is given back.
struct Mapping<'a, U, S> {
    out: &'a mut Vec<U>,
    start: usize,
    reached: Reached<'a, S>,
}

impl<U, S> Mapping<'_, U, S> {
    fn finish(self) {
        // Nothing to give back: forgets the `Reached` inside too.
        std::mem::forget(self);
    }
}

impl<U, S> Drop for Mapping<'_, U, S> {
    fn drop(&mut self) {
        // Then `reached` drops, giving back what came after the failure.
        self.reached.done = self.out.len() - self.start;
    }
}
