use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::map`](crate::Pipeline::map).
    #[must_use = "streams do nothing unless polled"]
    pub struct Map<S, F> {
        #[pin]
        upstream: S,
        f: F,
        info: Arc<StageInfo>,
    }
}

impl<S, F> Map<S, F> {
    pub(crate) fn new(upstream: S, f: F, info: Arc<StageInfo>) -> Self {
        info.set_passthrough();
        Map { upstream, f, info }
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
