use std::fmt;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use event_listener::Event;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use pin_project_lite::pin_project;

use super::overflow::yield_now;
use crate::run::{RunContext, StageInfo};

/// Largest micro-batch a boundary moves at once.
const MAX_BATCH: usize = 2048;

/// Longest an upstream that never waits (a CPU-bound stage) holds a
/// partial batch while downstream is starving for items.
const MAX_HOLD: Duration = Duration::from_micros(500);

/// The largest batch for a boundary of `capacity` items: a quarter of it,
/// between 1 and [`MAX_BATCH`].
pub(crate) fn max_batch(capacity: usize) -> usize {
    (capacity / 4).clamp(1, MAX_BATCH)
}

/// Batch size and slot count for a bounded `async-channel` of batches that
/// should hold about `capacity` items: `slots * batch + batch ≤ capacity +
/// batch`, counting the batch a sender fills while the channel is full.
/// For stages that queue batches on a plain channel rather than a [`Budget`].
pub(crate) fn batch_geometry(capacity: usize) -> (usize, usize) {
    let batch = max_batch(capacity);
    let slots = (capacity / batch).saturating_sub(1).max(1);
    (batch, slots)
}

/// Items an upstream task moves between yields to its executor.
const YIELD_EVERY: usize = 4096;

/// What both ends of a boundary share: the item budget.
///
/// Batches (`Vec<T>`) travel over an unbounded channel; memory is bounded by counting
/// items instead. Upstream pulls an item only while the queued items plus its
/// open batch stay within `capacity`. When the budget is spent it waits until
/// downstream has drained the queue to half — so a producer that outruns its
/// consumer is woken once per half-capacity of items, not once per batch.
#[derive(Debug)]
struct Budget {
    capacity: usize,
    queued: AtomicUsize,
    /// Notified when `queued` drops to `capacity / 2` or the receiver goes.
    space: Event,
    closed: AtomicBool,
    /// Set while downstream waits for a batch: upstream then sends a batch
    /// it has held for [`MAX_HOLD`] even if it is not full.
    starving: AtomicBool,
}

impl Budget {
    fn low_water(&self) -> usize {
        self.capacity / 2
    }

    /// Waits until the queue is at or below half capacity (or closed).
    async fn wait_for_space(&self) {
        loop {
            if self.queued.load(SeqCst) <= self.low_water() || self.closed.load(SeqCst) {
                return;
            }
            let listener = self.space.listen();
            if self.queued.load(SeqCst) <= self.low_water() || self.closed.load(SeqCst) {
                return;
            }
            listener.await;
        }
    }

    /// Downstream took `n` items out of the queue.
    fn release(&self, n: usize) {
        let before = self.queued.fetch_sub(n, SeqCst);
        let low = self.low_water();
        if before > low && before - n <= low {
            self.space.notify(1);
        }
    }
}

/// Marks the boundary closed when its receiving end is dropped, so a waiting
/// upstream task stops instead of waiting for room forever.
#[derive(Debug)]
struct CloseOnDrop(Arc<Budget>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, SeqCst);
        self.0.space.notify(usize::MAX);
    }
}

pin_project! {
    /// Stream for [`Pipeline::boundary`](crate::Pipeline::boundary): the
    /// downstream end of the bounded queue.
    #[must_use = "streams do nothing unless polled"]
    pub struct Boundary<T> {
        #[pin]
        rx: Receiver<Vec<T>>,
        recycle: Sender<Vec<T>>,
        current: Vec<T>,
        budget: CloseOnDrop,
        info: Arc<StageInfo>,
    }
}

impl<T> fmt::Debug for Boundary<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boundary")
            .field("capacity", &self.budget.0.capacity)
            .field("queued", &self.budget.0.queued.load(SeqCst))
            .field("draining", &self.current.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Boundary<T> {
    /// Returns the downstream stream and the upstream task.
    pub(crate) fn new<S>(
        upstream: S,
        capacity: usize,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> (Self, BoxFuture<'static, ()>)
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let budget = Arc::new(Budget {
            capacity,
            queued: AtomicUsize::new(0),
            space: Event::new(),
            closed: AtomicBool::new(false),
            // Downstream has nothing yet.
            starving: AtomicBool::new(true),
        });
        // Unbounded in batches, bounded in items by `Budget`.
        let (tx, rx) = async_channel::unbounded();
        // Emptied batches travel back upstream, so a busy boundary reuses a
        // handful of buffers instead of allocating one per batch on one
        // thread and freeing it on another.
        let (recycle_tx, recycle_rx) = async_channel::bounded(4);
        let fallback = info.clone();
        let pump = Pump {
            tx,
            recycled: recycle_rx,
            budget: budget.clone(),
            max_batch: max_batch(capacity),
        };
        let task = async move {
            if let Err(payload) = AssertUnwindSafe(pump.run(upstream)).catch_unwind().await {
                ctx.fail_with_panic(&*payload, &fallback.name());
            }
        }
        .boxed();
        let stream = Boundary {
            rx,
            recycle: recycle_tx,
            current: Vec::new(),
            budget: CloseOnDrop(budget),
            info,
        };
        (stream, task)
    }
}

/// The upstream half of a boundary.
struct Pump<T> {
    tx: Sender<Vec<T>>,
    recycled: Receiver<Vec<T>>,
    budget: Arc<Budget>,
    max_batch: usize,
}

impl<T> Pump<T> {
    /// Moves items from `upstream` downstream in adaptive batches: a batch is
    /// sent when it is full, when the item budget is spent, or as soon as
    /// upstream would wait — so a trickle is never held back waiting for a
    /// batch to fill.
    async fn run<S: Stream<Item = T>>(self, upstream: S) {
        let mut upstream = pin!(upstream);
        let budget = &*self.budget;
        let mut since_yield = 0;
        loop {
            let room = budget.capacity.saturating_sub(budget.queued.load(SeqCst));
            if room == 0 {
                budget.wait_for_space().await;
                if budget.closed.load(SeqCst) {
                    return;
                }
                continue;
            }
            let limit = room.min(self.max_batch);
            let mut batch = self
                .recycled
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(self.max_batch));
            // While downstream starves, check the batch's age at items 1, 2,
            // 4, … 64, then every 64: a CPU-bound upstream that never waits
            // still hands over its first items within `MAX_HOLD`, at the cost
            // of a few clock reads per batch.
            let mut next_check = 1;
            let mut held_since: Option<Instant> = None;
            let held_since = &mut held_since;
            let ended = poll_fn(|cx| loop {
                match upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => {
                        batch.push(item);
                        if batch.len() == limit {
                            return Poll::Ready(false);
                        }
                        if batch.len() == next_check {
                            next_check += next_check.min(64);
                            if budget.starving.load(Relaxed) {
                                let now = Instant::now();
                                if now - *held_since.get_or_insert(now) >= MAX_HOLD {
                                    return Poll::Ready(false);
                                }
                            }
                        }
                    }
                    Poll::Ready(None) => return Poll::Ready(true),
                    Poll::Pending if batch.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(false),
                }
            })
            .await;
            let sent = batch.len();
            if sent > 0 {
                budget.queued.fetch_add(sent, SeqCst);
                if self.tx.try_send(batch).is_err() {
                    return; // downstream is gone
                }
            }
            if ended {
                return;
            }
            // An upstream that never waits would otherwise keep this task
            // (and, without a runtime, the whole pipeline) busy until the
            // budget is spent: let downstream and neighbours run now and then,
            // and right away after a batch sent for a starving downstream.
            since_yield += sent;
            if held_since.is_some() || since_yield >= YIELD_EVERY {
                since_yield = 0;
                yield_now().await;
            }
        }
    }
}

impl<T> Boundary<T> {
    /// The slow path: wait for the next batch and make it current.
    #[inline(never)]
    fn poll_refill(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut this = self.project();
        let budget = &this.budget.0;
        let next = match this.rx.as_mut().poll_next(cx) {
            Poll::Pending => {
                budget.starving.store(true, Relaxed);
                return Poll::Pending;
            }
            Poll::Ready(next) => next,
        };
        if budget.starving.load(Relaxed) {
            budget.starving.store(false, Relaxed);
        }
        match next {
            Some(mut batch) => {
                budget.release(batch.len());
                // Drained from the back: `pop` is the cheapest way to move
                // items out of a `Vec` one at a time, and reversing a batch
                // that is already in cache costs less than a deque's
                // wrap-around arithmetic on every item.
                batch.reverse();
                let empty = std::mem::replace(this.current, batch);
                if empty.capacity() > 0 {
                    let _ = this.recycle.try_send(empty);
                }
                Poll::Ready(true)
            }
            None => Poll::Ready(false),
        }
    }
}

impl<T> Stream for Boundary<T> {
    type Item = T;

    #[inline(always)]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            let this = self.as_mut().project();
            if let Some(item) = this.current.pop() {
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
            if !futures::ready!(self.as_mut().poll_refill(cx)) {
                return Poll::Ready(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::max_batch;

    #[test]
    fn batches_are_a_quarter_of_capacity_within_bounds() {
        assert_eq!(max_batch(1), 1);
        assert_eq!(max_batch(16), 4);
        assert_eq!(max_batch(1024), 256);
        assert_eq!(max_batch(1 << 20), 2048);
    }
}
