use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{Pipeline, RunContext, StageInfo, StageKind};
use crate::runtime::{Runtime, Sleep};

/// Largest capacity reserved up front for a batch; bigger batches grow.
const MAX_RESERVE: usize = 4096;

/// How much an item counts towards a batch's limit.
pub(crate) trait Weigh<T> {
    /// Whether every item weighs exactly 1 (the weight is the length), which
    /// lets the per-item path skip weighing and the carry check.
    const UNIT: bool = false;

    fn weigh(&mut self, item: &T) -> usize;
}

/// Every item weighs 1: batches by count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByCount;

impl<T> Weigh<T> for ByCount {
    const UNIT: bool = true;

    #[inline(always)]
    fn weigh(&mut self, _: &T) -> usize {
        1
    }
}

pin_project! {
    /// The shared machinery of [`Batch`] and
    /// [`BatchWeighted`](super::BatchWeighted): groups items until the batch
    /// reaches `max_weight` or its oldest item has waited `max_wait`.
    ///
    /// Pull-based, so it never emits into a downstream that is not ready: a
    /// batch whose timer fired while downstream was busy is emitted at the
    /// next poll, after taking whatever upstream has ready (up to the limit).
    pub(crate) struct Batcher<S: Stream, W> {
        #[pin]
        upstream: S,
        weigh: W,
        max_weight: usize,
        max_wait: Duration,
        batch: Vec<S::Item>,
        weight: usize,
        // An item that did not fit the previous batch: first of the next.
        carry: Option<(S::Item, usize)>,
        deadline: Option<Sleep>,
        done: bool,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: Stream, W: Weigh<S::Item>> Batcher<S, W> {
    pub(crate) fn new(
        upstream: S,
        weigh: W,
        max_weight: usize,
        max_wait: Duration,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    ) -> Self {
        Batcher {
            upstream,
            weigh,
            max_weight,
            max_wait,
            batch: Self::fresh_batch(max_weight),
            weight: 0,
            carry: None,
            deadline: None,
            done: false,
            runtime: None,
            ctx,
            info,
        }
    }
}

impl<S: Stream, W: Weigh<S::Item>> Batcher<S, W> {
    /// An empty batch; by count, with room for a full one (up to a cap).
    fn fresh_batch(max_weight: usize) -> Vec<S::Item> {
        if W::UNIT {
            Vec::with_capacity(max_weight.min(MAX_RESERVE))
        } else {
            Vec::new()
        }
    }
}

impl<S: Stream, W> Batcher<S, W> {
    pub(crate) fn pending_items(&self) -> usize {
        self.batch.len() + usize::from(self.carry.is_some())
    }
}

impl<S: Stream, W: Weigh<S::Item>> Stream for Batcher<S, W> {
    type Item = Vec<S::Item>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        // Emits the current batch (and restarts from the carried item).
        macro_rules! emit {
            () => {{
                let fresh = Self::fresh_batch(*this.max_weight);
                let full = std::mem::replace(this.batch, fresh);
                *this.weight = 0;
                *this.deadline = None;
                if let Some((item, w)) = this.carry.take() {
                    *this.weight = w;
                    this.batch.push(item);
                }
                // One unit out; its other items are grouped into it.
                this.info.out.bump();
                this.info.grouped.add(full.len() as u64 - 1);
                return Poll::Ready(Some(full));
            }};
        }
        if *this.done {
            if this.batch.is_empty() {
                return Poll::Ready(None);
            }
            emit!();
        }
        // A carried item alone may already fill a batch.
        if !W::UNIT && *this.weight >= *this.max_weight {
            emit!();
        }
        loop {
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) if W::UNIT => {
                    this.batch.push(item);
                    if this.batch.len() >= *this.max_weight {
                        emit!();
                    }
                }
                Poll::Ready(Some(item)) => {
                    let w = this.info.guard(|| this.weigh.weigh(&item));
                    if !this.batch.is_empty() && this.weight.saturating_add(w) > *this.max_weight {
                        *this.carry = Some((item, w));
                        emit!();
                    }
                    this.batch.push(item);
                    *this.weight = this.weight.saturating_add(w);
                    if *this.weight >= *this.max_weight {
                        emit!();
                    }
                }
                Poll::Ready(None) => {
                    *this.done = true;
                    if this.batch.is_empty() {
                        return Poll::Ready(None);
                    }
                    emit!();
                }
                Poll::Pending => break,
            }
        }
        if this.batch.is_empty() {
            return Poll::Pending;
        }
        if this.max_wait.is_zero() {
            emit!();
        }
        if this.deadline.is_none() {
            // The clock starts when the first item of a batch waits for more.
            let rt = this
                .runtime
                .get_or_insert_with(|| this.ctx.runtime_or_free());
            *this.deadline = Some(rt.sleep_until(rt.now() + *this.max_wait));
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                emit!();
            }
        }
        Poll::Pending
    }
}

pin_project! {
    /// Stream for [`Pipeline::batch`]: vectors of up to `max_items` items.
    #[must_use = "streams do nothing unless polled"]
    pub struct Batch<S: Stream> {
        #[pin]
        inner: Batcher<S, ByCount>,
    }
}

impl<S: Stream> fmt::Debug for Batch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("max_items", &self.inner.max_weight)
            .field("max_wait", &self.inner.max_wait)
            .field("pending", &self.inner.pending_items())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Batch<S> {
    type Item = Vec<S::Item>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project().inner.poll_next(cx)
    }
}

impl<S: Stream> Pipeline<S> {
    /// Groups items into vectors of up to `max_items`, emitted when full or
    /// when the oldest item in the batch has waited `max_wait`, whichever
    /// comes first. The last batch may be smaller; no batch is ever empty.
    ///
    /// Fused and pull-based: a batch is only emitted when downstream asks for
    /// one, so a busy downstream never makes it fail or lose items (unlike
    /// Reactor's `bufferTimeout`). If the timer fires while downstream is
    /// busy, the batch stays pending; at the next request the stage first
    /// takes whatever upstream has ready (up to `max_items`) and then emits.
    /// While downstream does not ask, upstream is not pulled: backpressure.
    ///
    /// The timer runs on the pipeline's runtime (`async-io` when it has
    /// none). `max_wait` of zero emits whatever is ready as soon as upstream
    /// would wait — adaptive batching with no added latency.
    ///
    /// # Panics
    ///
    /// If `max_items` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let (batches, _) = futures::executor::block_on(
    ///     producer::iter(1..=7).batch(3, Duration::from_millis(100)).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(batches, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    /// ```
    #[track_caller]
    pub fn batch(mut self, max_items: usize, max_wait: Duration) -> Pipeline<Batch<S>> {
        if max_items == 0 {
            crate::rejection::reject(format_args!(
                "batch max_items must be at least 1, got 0; \
                 pass the largest batch to emit, e.g. .batch(1024, {})",
                crate::rejection::duration_expr(max_wait)
            ));
        }
        let info = self.core.add_stage("batch", StageKind::Batch);
        let inner = Batcher::new(
            self.stream,
            ByCount,
            max_items,
            max_wait,
            self.core.ctx.clone(),
            info,
        );
        Pipeline::from_parts(Batch { inner }, self.core)
    }
}
