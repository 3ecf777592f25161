use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::StageInfo;

pin_project! {
    /// Stream for [`Pipeline::then`](crate::Pipeline::then).
    #[must_use = "streams do nothing unless polled"]
    pub struct Then<S, F, Fut> {
        #[pin]
        upstream: S,
        f: F,
        #[pin]
        pending: Option<Fut>,
        info: Arc<StageInfo>,
    }
}

impl<S, F, Fut> Then<S, F, Fut> {
    pub(crate) fn new(upstream: S, f: F, info: Arc<StageInfo>) -> Self {
        Then {
            upstream,
            f,
            pending: None,
            info,
        }
    }
}

impl<S: fmt::Debug, F, Fut> fmt::Debug for Then<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Then")
            .field("upstream", &self.upstream)
            .field("busy", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, F, Fut> Stream for Then<S, F, Fut>
where
    S: Stream,
    F: FnMut(S::Item) -> Fut,
    Fut: Future,
{
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let mut this = self.project();
        loop {
            if let Some(fut) = this.pending.as_mut().as_pin_mut() {
                let out = futures::ready!(this.info.guard(|| fut.poll(cx)));
                this.pending.set(None);
                this.info.out.bump();
                return Poll::Ready(Some(out));
            }
            match futures::ready!(this.upstream.as_mut().poll_next(cx)) {
                Some(item) => {
                    let fut = this.info.guard(|| (this.f)(item));
                    this.pending.set(Some(fut));
                }
                None => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        let (lo, hi) = self.upstream.size_hint();
        (
            lo.saturating_add(pending),
            hi.and_then(|h| h.checked_add(pending)),
        )
    }
}
