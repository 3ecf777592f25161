//! [`Pipeline::into_try_stream`]: a pipeline read as a stream of results.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use super::Pipeline;
use crate::run::PipelineError;

pin_project! {
    /// Stream for [`Pipeline::into_try_stream`]: the pipeline's items as
    /// `Ok`, then its failure, if any, as one `Err`.
    #[must_use = "streams do nothing unless polled"]
    pub struct TryPipeline<S> {
        #[pin]
        pipeline: Pipeline<S>,
        done: bool,
    }
}

impl<S> fmt::Debug for TryPipeline<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryPipeline")
            .field("pipeline", &self.pipeline)
            .field("done", &self.done)
            .finish()
    }
}

impl<S: Stream> Pipeline<S> {
    /// The pipeline as a stream of `Result`s, for code that reads it as a
    /// `Stream` and needs to tell a failure from the end: items come as
    /// `Ok`, and a failed or aborted run ends with one `Err` (its
    /// [`PipelineError`], counts included) before the stream ends. A panic in
    /// a fused stage is caught and comes as `Err` too.
    ///
    /// The plain [`Stream`] impl of [`Pipeline`] yields items only: a failure
    /// just ends it early, so use this (or a terminal method such as
    /// [`run`](Self::run)) whenever failures matter.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use flowline_core::{producer, PipelineError};
    ///
    /// let results: Vec<_> = futures::executor::block_on(
    ///     producer::iter(1..=4u32)
    ///         .try_map(|x| if x == 3 { Err("three") } else { Ok(x) })
    ///         .named("parse")
    ///         .into_try_stream()
    ///         .collect(),
    /// );
    /// assert_eq!(results.len(), 3);
    /// assert_eq!(results[0].as_ref().unwrap(), &1);
    /// assert_eq!(results[1].as_ref().unwrap(), &2);
    /// assert!(matches!(&results[2], Err(PipelineError::Failed { stage, .. }) if stage == "parse"));
    /// ```
    pub fn into_try_stream(self) -> TryPipeline<S> {
        TryPipeline {
            pipeline: self,
            done: false,
        }
    }
}

impl<S: Stream> Stream for TryPipeline<S> {
    type Item = Result<S::Item, PipelineError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let ctx = this.pipeline.core.ctx.clone();
        let start = ctx.lifecycle.start(|| ctx.runtime_or_free().now());
        match catch_unwind(AssertUnwindSafe(|| this.pipeline.as_mut().poll_next(cx))) {
            Ok(Poll::Ready(Some(item))) => return Poll::Ready(Some(Ok(item))),
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(None)) => {}
            Err(payload) => ctx.fail_with_panic(&*payload, "stream"),
        }
        *this.done = true;
        ctx.lifecycle.finish();
        let error = ctx
            .take_error()
            .or_else(|| ctx.lifecycle.is_halted().then(PipelineError::aborted));
        match error {
            Some(error) => {
                this.pipeline.project().core.cancel_tasks();
                let report =
                    ctx.report(ctx.runtime_or_free().now().saturating_duration_since(start));
                Poll::Ready(Some(Err(error.with_report(report))))
            }
            None => Poll::Ready(None),
        }
    }
}
