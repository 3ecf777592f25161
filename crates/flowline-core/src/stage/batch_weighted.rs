use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use pin_project_lite::pin_project;

use super::batch::{Batcher, Weigh};
use crate::run::{Pipeline, StageKind};

/// A user weight function, as a [`Weigh`].
pub(crate) struct WeightFn<F>(F);

impl<T, F: FnMut(&T) -> usize> Weigh<T> for WeightFn<F> {
    #[inline]
    fn weigh(&mut self, item: &T) -> usize {
        (self.0)(item)
    }
}

pin_project! {
    /// Stream for [`Pipeline::batch_weighted`]: vectors of up to
    /// `max_weight` total weight.
    #[must_use = "streams do nothing unless polled"]
    pub struct BatchWeighted<S: Stream, F> {
        #[pin]
        inner: Batcher<S, WeightFn<F>>,
    }
}

impl<S: Stream, F> fmt::Debug for BatchWeighted<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchWeighted")
            .field("pending", &self.inner.pending_items())
            .finish_non_exhaustive()
    }
}

impl<S, F> Stream for BatchWeighted<S, F>
where
    S: Stream,
    F: FnMut(&S::Item) -> usize,
{
    type Item = Vec<S::Item>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().inner.poll_next(cx)
    }
}

impl<S: Stream> Pipeline<S> {
    /// Groups items into vectors whose total weight (by `weight_fn`, e.g. a
    /// length in bytes) stays within `max_weight`, emitted when the next item
    /// would not fit, when the weight reaches `max_weight`, or when the oldest
    /// item has waited `max_wait` — whichever comes first.
    ///
    /// An item that does not fit starts the next batch; an item heavier than
    /// `max_weight` on its own is emitted alone (never dropped, never split).
    /// Backpressure and timing behave as in [`batch`](Self::batch).
    ///
    /// # Panics
    ///
    /// If `max_weight` is 0. A panic in `weight_fn` ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let lines = ["ab", "cde", "f", "ghijklmn", "o"];
    /// let (batches, _) = futures::executor::block_on(
    ///     producer::iter(lines)
    ///         .batch_weighted(5, Duration::from_millis(100), |s: &&str| s.len())
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(batches, [vec!["ab", "cde"], vec!["f"], vec!["ghijklmn"], vec!["o"]]);
    /// ```
    #[track_caller]
    pub fn batch_weighted<F>(
        mut self,
        max_weight: usize,
        max_wait: Duration,
        weight_fn: F,
    ) -> Pipeline<BatchWeighted<S, F>>
    where
        F: FnMut(&S::Item) -> usize,
    {
        if max_weight == 0 {
            crate::rejection::reject(format_args!(
                "batch_weighted max_weight must be at least 1, got 0; \
                 pass the largest total weight of a batch, e.g. .batch_weighted(65536, {}, weight_fn)",
                crate::rejection::duration_expr(max_wait)
            ));
        }
        let info = self.core.add_stage("batch_weighted", StageKind::Batch);
        let weigh = WeightFn(weight_fn);
        let inner = Batcher::new(
            self.stream,
            weigh,
            max_weight,
            max_wait,
            self.core.ctx.clone(),
            info,
        );
        Pipeline::from_parts(BatchWeighted { inner }, self.core)
    }
}
