use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::Receiver;
use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream of one branch of a fan-out
    /// ([`broadcast`](crate::Pipeline::broadcast),
    /// [`balance`](crate::Pipeline::balance),
    /// [`partition`](crate::Pipeline::partition)): the receiving end of the
    /// branch's queue.
    #[must_use = "streams do nothing unless polled"]
    pub struct Branch<T> {
        #[pin]
        rx: Receiver<T>,
        info: Arc<StageInfo>,
    }
}

impl<T> Branch<T> {
    pub(crate) fn new(rx: Receiver<T>, info: Arc<StageInfo>) -> Self {
        Branch { rx, info }
    }
}

impl<T> fmt::Debug for Branch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Branch")
            .field("stage", &self.info.name())
            .field("queued", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for Branch<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.project();
        let item = futures::ready!(this.rx.poll_next(cx));
        Poll::Ready(this.info.emit(item))
    }
}
