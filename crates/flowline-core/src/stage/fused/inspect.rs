use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::inspect`](crate::Pipeline::inspect).
    #[must_use = "streams do nothing unless polled"]
    pub struct Inspect<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
    }
}

impl<S, F> Inspect<S, F> {
    pub(crate) fn new(upstream: S, f: F, info: Arc<StageInfo>) -> Self {
        info.set_passthrough();
        Inspect { upstream, f, info }
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
