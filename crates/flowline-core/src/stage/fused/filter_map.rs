use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::filter_map`](crate::Pipeline::filter_map).
    #[must_use = "streams do nothing unless polled"]
    pub struct FilterMap<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
    }
}

impl<S, F> FilterMap<S, F> {
    pub(crate) fn new(upstream: S, f: F, info: Arc<StageInfo>) -> Self {
        info.set_filtering();
        FilterMap { upstream, f, info }
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
