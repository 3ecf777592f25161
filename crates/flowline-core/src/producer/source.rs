use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use futures::task::AtomicWaker;

use crate::pipeline::Pipeline;
use crate::run::{Core, Lifecycle, StageInfo};

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
        let (core, info) = Core::new(name);
        let lifecycle = core.ctx.lifecycle.clone();
        let waker = lifecycle.register_source();
        let source = Source {
            inner,
            info,
            lifecycle,
            waker,
        };
        Pipeline::from_parts(source, core)
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
