use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::queue::{poll_into, BatchOut, Batched, Reached};
use crate::run::{Counter, StageInfo};

pin_project! {
    /// Stream for [`Pipeline::filter_map`](crate::Pipeline::filter_map).
    #[must_use = "streams do nothing unless polled"]
    pub struct FilterMap<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    }
}

impl<S, F> FilterMap<S, F> {
    pub(crate) fn new(
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    ) -> Self {
        info.set_filtering();
        FilterMap {
            upstream,
            f,
            info,
            upstream_batch,
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for FilterMap<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterMap")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl<S, F, U> Stream for FilterMap<S, F>
where
    S: Stream,
    F: FnMut(S::Item) -> Option<U>,
{
    type Item = U;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let mut this = self.project();
        while let Some(item) = futures::ready!(this.upstream.as_mut().poll_next(cx)) {
            if let Some(out) = this.info.guard(|| (this.f)(item)) {
                this.info.out.bump();
                return Poll::Ready(Some(out));
            }
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.upstream.size_hint().1)
    }
}

impl<S, F, U> FilterMap<S, F>
where
    S: Stream,
    F: FnMut(S::Item) -> Option<U>,
{
    /// A batch from upstream, mapped, with the `None`s taken out (see
    /// [`PollBatch`](crate::queue::PollBatch)); only for an upstream that
    /// hands over batches.
    pub(crate) fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let mut this = self.project();
        let upstream = this.upstream_batch.as_ref().expect(
            "flowline: a batch asked of a filter_map whose upstream moves items one by one",
        );
        let keep_prefix = out.keeps_prefix();
        let out = out.items();
        let start = out.len();
        loop {
            let mut items = Vec::new();
            let more = futures::ready!(poll_into(
                upstream,
                this.upstream.as_mut(),
                cx,
                &mut items,
                max,
                keep_prefix
            ));
            let f = &mut *this.f;
            let counted = Counted::new(upstream, items.len(), &this.info.out);
            this.info.guard(|| {
                if !keep_prefix && out.is_empty() {
                    // In place: collecting a `vec::IntoIter`'s filter_map
                    // reuses its buffer when `U` fits the input's slots. If
                    // `f` unwinds, the kept items go with the batch (the
                    // caller drops it as the run fails).
                    *out = items.into_iter().filter_map(counted.wrap(f)).collect();
                } else {
                    // Extended: if `f` unwinds, `out` keeps the items
                    // mapped before, which go on as they would have one
                    // by one (see `run_fold`).
                    out.extend(items.into_iter().filter_map(counted.wrap(f)));
                }
            });
            counted.finish();
            // Everything filtered out: there may be more to read.
            if out.len() > start || !more {
                return Poll::Ready(more);
            }
        }
    }
}

/// The items of a batch `f` was called on, and those it kept: counted in
/// `out` once the batch is done — or as far as it got when `f` unwinds,
/// giving the items not reached back to upstream.
struct Counted<'a, S> {
    reached: Reached<'a, S>,
    kept: std::cell::Cell<usize>,
    done: std::cell::Cell<usize>,
    out: &'a Counter,
}

impl<'a, S> Counted<'a, S> {
    fn new(upstream: &'a Batched<S>, total: usize, out: &'a Counter) -> Self {
        Counted {
            reached: Reached::new(upstream, total),
            kept: Default::default(),
            done: Default::default(),
            out,
        }
    }

    /// `f`, counting its calls and the items it keeps.
    fn wrap<T, U>(&self, mut f: impl FnMut(T) -> Option<U>) -> impl FnMut(T) -> Option<U> {
        move |item| {
            let mapped = f(item);
            self.kept
                .set(self.kept.get() + usize::from(mapped.is_some()));
            self.done.set(self.done.get() + 1);
            mapped
        }
    }

    /// The batch was done: its kept items are counted, nothing is given back.
    fn finish(self) {
        self.out.bump_by(self.kept.get() as u64);
        // Forgets the `Reached` inside too.
        std::mem::forget(self);
    }
}

impl<S> Drop for Counted<'_, S> {
    fn drop(&mut self) {
        // Unwinding out of `f`: what it kept so far is counted; then
        // `reached` drops, giving back what came after the failure.
        self.out.bump_by(self.kept.get() as u64);
        self.reached.done = self.done.get();
    }
}
