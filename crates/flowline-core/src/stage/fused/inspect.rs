use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::queue::{poll_into, BatchOut, Batched, Reached, Truncate};
use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::inspect`](crate::Pipeline::inspect).
    #[must_use = "streams do nothing unless polled"]
    pub struct Inspect<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    }
}

impl<S, F> Inspect<S, F> {
    pub(crate) fn new(
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
        upstream_batch: Option<Batched<S>>,
    ) -> Self {
        info.set_passthrough();
        Inspect {
            upstream,
            f,
            info,
            upstream_batch,
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Inspect<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspect")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl<S, F> Stream for Inspect<S, F>
where
    S: Stream,
    F: FnMut(&S::Item),
{
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let item = futures::ready!(this.upstream.poll_next(cx));
        if let Some(item) = &item {
            // Not counted: `out` is derived (see `set_passthrough`).
            this.info.guard(|| (this.f)(item));
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.upstream.size_hint()
    }
}

impl<S, F> Inspect<S, F>
where
    S: Stream,
    F: FnMut(&S::Item),
{
    /// A batch from upstream, each item inspected (see [`PollBatch`]);
    /// only for an upstream that hands over batches.
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
            .expect("flowline: a batch asked of an inspect whose upstream moves items one by one");
        let keep_prefix = out.keeps_prefix();
        let out = out.items();
        let start = out.len();
        let more = futures::ready!(poll_into(
            upstream,
            this.upstream,
            cx,
            out,
            max,
            keep_prefix
        ));
        let f = this.f;
        let mut reached = Reached::new(upstream, out.len() - start);
        // If `f` unwinds, `out` keeps only the items it saw (they went on,
        // as one by one): the one it failed on and those after it go.
        let mut seen = Truncate::new(out, start, None);
        let Truncate { items, kept, .. } = &mut seen;
        this.info.guard(|| {
            for item in &items[start..] {
                f(item);
                *kept += 1;
                reached.done += 1;
            }
        });
        seen.finish();
        reached.finish();
        Poll::Ready(more)
    }
}
