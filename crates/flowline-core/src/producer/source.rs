use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{Core, Pipeline, StageInfo};

pin_project! {
    /// The source stage of a pipeline: counts what its producer yields and
    /// names it if it panics.
    #[must_use = "streams do nothing unless polled"]
    pub struct Source<S> {
        #[pin]
        inner: S,
        info: Arc<StageInfo>,
    }
}

impl<S> Source<S> {
    pub(crate) fn pipeline(name: &str, inner: S) -> Pipeline<Self>
    where
        S: Stream,
    {
        let (core, info) = Core::new(name);
        Pipeline::from_parts(Source { inner, info }, core)
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
        let inner = this.inner;
        let item = futures::ready!(this.info.guard(|| inner.poll_next(cx)));
        if item.is_some() {
            this.info.out.bump();
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
