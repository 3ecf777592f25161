use std::fmt;
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
    /// Stream for [`Pipeline::idle_timeout`].
    #[must_use = "streams do nothing unless polled"]
    pub struct IdleTimeout<S> {
        #[pin]
        upstream: S,
        limit: Duration,
        sleep: Option<Sleep>,
        done: bool,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: fmt::Debug> fmt::Debug for IdleTimeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("upstream", &self.upstream)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for IdleTimeout<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.upstream.poll_next(cx) {
            Poll::Ready(Some(item)) => {
                *this.sleep = None;
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                *this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        // The clock runs only while upstream is being waited for, so a slow
        // downstream never counts against upstream.
        let sleep = this.sleep.get_or_insert_with(|| {
            this.runtime
                .get_or_insert_with(|| this.ctx.runtime_or_free())
                .sleep(*this.limit)
        });
        futures::ready!(sleep.as_mut().poll(cx));
        *this.sleep = None;
        *this.done = true;
        this.ctx.fail(PipelineError::failed(
            this.info.name(),
            Box::new(Elapsed::new(*this.limit, "waiting for the next item")),
        ));
        Poll::Ready(None)
    }
}

impl<S: Stream> Pipeline<S> {
    /// Fails the run if upstream takes longer than `limit` to produce an
    /// item (counting from when this stage asks for it).
    ///
    /// The time downstream spends on an item does not count: the clock
    /// starts when downstream asks for the next item and upstream has none
    /// ready. When it runs out the stream ends and the run returns
    /// [`PipelineError::Failed`] naming this stage, with an [`Elapsed`] as
    /// its source. Timers run on the pipeline's runtime.
    ///
    /// # Errors
    ///
    /// The run fails with [`PipelineError::Failed`] (source [`Elapsed`]) if
    /// upstream stays silent for `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::{producer, stage::Elapsed, PipelineError};
    ///
    /// let stalls = producer::generator(|out| async move {
    ///     out.emit(1).await;
    ///     futures::future::pending::<()>().await; // never another item
    /// });
    /// let result = futures::executor::block_on(
    ///     stalls.idle_timeout(Duration::from_millis(20)).named("feed").run_collect(),
    /// );
    /// let err = result.unwrap_err();
    /// assert_eq!(err.stage(), "feed");
    /// assert!(matches!(&err, PipelineError::Failed { source, .. } if source.is::<Elapsed>()));
    /// ```
    pub fn idle_timeout(mut self, limit: Duration) -> Pipeline<IdleTimeout<S>> {
        let info = self.core.add_stage("idle_timeout", StageKind::Timing);
        let stream = IdleTimeout {
            upstream: self.stream,
            limit,
            sleep: None,
            done: false,
            runtime: None,
            ctx: self.core.ctx.clone(),
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
