use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use pin_project_lite::pin_project;

use super::Elapsed;
use crate::run::{Pipeline, PipelineError, RunContext, StageInfo, StageKind};
use crate::runtime::{Runtime, RuntimeExt as _, Sleep};

pin_project! {
    /// Stream for [`Pipeline::then_timeout`].
    #[must_use = "streams do nothing unless polled"]
    pub struct ThenTimeout<S, F, Fut> {
        #[pin]
        upstream: S,
        f: F,
        #[pin]
        pending: Option<Fut>,
        sleep: Option<Sleep>,
        limit: Duration,
        done: bool,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: fmt::Debug, F, Fut> fmt::Debug for ThenTimeout<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThenTimeout")
            .field("upstream", &self.upstream)
            .field("limit", &self.limit)
            .field("busy", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, F, Fut> Stream for ThenTimeout<S, F, Fut>
where
    S: Stream,
    F: FnMut(S::Item) -> Fut,
    Fut: Future,
{
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(fut) = this.pending.as_mut().as_pin_mut() {
                if let Poll::Ready(out) = this.info.guard(|| fut.poll(cx)) {
                    this.pending.set(None);
                    *this.sleep = None;
                    this.info.out.bump();
                    return Poll::Ready(Some(out));
                }
                let sleep = this.sleep.as_mut().expect("a deadline per future");
                futures::ready!(sleep.as_mut().poll(cx));
                // Dropping the future cancels the late work.
                this.pending.set(None);
                *this.sleep = None;
                *this.done = true;
                this.info.failed.add(1);
                this.ctx.fail(PipelineError::failed(
                    this.info.name(),
                    Box::new(Elapsed::new(*this.limit, "an item's future")),
                ));
                return Poll::Ready(None);
            }
            match futures::ready!(this.upstream.as_mut().poll_next(cx)) {
                Some(item) => {
                    let fut = this.info.guard(|| (this.f)(item));
                    this.pending.set(Some(fut));
                    let rt = this
                        .runtime
                        .get_or_insert_with(|| this.ctx.runtime_or_free());
                    *this.sleep = Some(rt.sleep(*this.limit));
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// Like [`then`](Self::then) — each item through the async function `f`,
    /// one at a time, in order — but each future gets at most `limit`.
    ///
    /// A future that overruns is dropped (cancelling its work), the stream
    /// ends and the run returns [`PipelineError::Failed`] naming this stage,
    /// with an [`Elapsed`] as its source; the item counts as failed in the
    /// report. Timers run on the pipeline's runtime.
    ///
    /// For a time limit per item with several items in flight, put the limit
    /// inside the future given to [`map_concurrent`](Self::map_concurrent)
    /// (for example with your runtime's `timeout`) and handle the error there.
    ///
    /// # Errors
    ///
    /// The run fails with [`PipelineError::Failed`] (source [`Elapsed`]) when
    /// a future takes longer than `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=3)
    ///         .then_timeout(Duration::from_secs(5), |x| async move { x * 2 })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [2, 4, 6]);
    /// ```
    pub fn then_timeout<U, Fut, F>(
        mut self,
        limit: Duration,
        f: F,
    ) -> Pipeline<ThenTimeout<S, F, Fut>>
    where
        F: FnMut(S::Item) -> Fut,
        Fut: Future<Output = U>,
    {
        let info = self.core.add_stage("then_timeout", StageKind::Timing);
        let stream = ThenTimeout {
            upstream: self.stream,
            f,
            pending: None,
            sleep: None,
            limit,
            done: false,
            runtime: None,
            ctx: self.core.ctx.clone(),
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
