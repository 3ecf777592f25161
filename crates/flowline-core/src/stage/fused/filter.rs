use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::filter`](crate::Pipeline::filter).
    #[must_use = "streams do nothing unless polled"]
    pub struct Filter<S, F> {
        #[pin]
        upstream: S,
        predicate: F,
        info: Arc<StageInfo>,
    }
}

impl<S, F> Filter<S, F> {
    pub(crate) fn new(upstream: S, predicate: F, info: Arc<StageInfo>) -> Self {
        info.set_filtering();
        Filter {
            upstream,
            predicate,
            info,
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
