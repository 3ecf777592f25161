//! The loop that moves a stream's items into a queue in adaptive batches.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use super::{PollBatch, PushError, Sender};

/// Longest an upstream that never waits (a CPU-bound stage) holds a
/// part-full batch while the receiver is starving for items.
const MAX_HOLD: Duration = Duration::from_micros(500);

/// Items a pump moves between yields to its executor.
const YIELD_EVERY: usize = 4096;

/// For a task that pushes item by item into queues (a fan-out, a buffer
/// with a drop policy) instead of pumping them: sends an item at once to a
/// receiver waiting for it, and tells the task when to yield so that such a
/// receiver can take it. Without a runtime the receiver's consumer runs
/// only when the task yields, so an upstream that never waits (a CPU-bound
/// `map`) must yield once it has fed a waiting receiver for [`MAX_HOLD`] —
/// as a pump sends a batch it held that long. A receiver that has not
/// polled yet counts as waiting for the yield (not for the early send).
/// The clock is read only while a receiver waits.
#[derive(Default)]
pub(crate) struct Feeding {
    since: Option<Instant>,
}

impl Feeding {
    /// After an item was queued on `tx`.
    pub(crate) fn fed<T>(&mut self, tx: &mut Sender<T>) {
        tx.flush_if_starving();
        if self.since.is_none() && tx.shared.may_starve() {
            self.since = Some(crate::time::now());
        }
    }

    /// Whether the task has fed a waiting receiver for [`MAX_HOLD`]: it
    /// should now send its open batches and yield. Starts over if so.
    pub(crate) fn should_yield(&mut self) -> bool {
        let long = self
            .since
            .is_some_and(|since| crate::time::now() - since >= MAX_HOLD);
        if long {
            self.since = None;
        }
        long
    }
}

/// Why a batch stopped filling.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It reached its limit.
    Full,
    /// Upstream would wait.
    Waiting,
    /// Held for [`MAX_HOLD`] while the receiver starves.
    Held,
    /// Upstream ended.
    Ended,
}

impl<T> Sender<T> {
    /// Moves every item of `upstream` into the queue and returns when
    /// upstream ends (the open batch is left for [`finish`](Self::finish)).
    ///
    /// A batch is sent when it is full, as soon as upstream would wait (so a
    /// trickle crosses item by item with no added latency), or — for an
    /// upstream that never waits — once it has been held for half a
    /// millisecond (at most about one) while the receiver waits for items.
    /// When the queue is full the pump sleeps until the queue lets it go on
    /// (see [`Resume`](super::Resume)).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone.
    pub(crate) async fn pump<S>(&mut self, mut upstream: Pin<&mut S>) -> Result<(), PushError<()>>
    where
        S: Stream<Item = T>,
    {
        let mut since_yield = 0;
        loop {
            self.wait_to_open().await?;
            let limit = self.limit;
            // While the receiver starves, the batch's age is checked at items
            // 1, 2, 4, 8, …: a handful of clock reads per batch, none while
            // the receiver has items, and a batch held at most about twice
            // `MAX_HOLD`. The open batch grows at the same points, never
            // past its limit, starting at the size of the last batch sent.
            let mut stop_at = 1;
            self.reserve_to(self.hint.max(stop_at));
            let mut held_since: Option<Instant> = None;
            let step = poll_fn(|cx| loop {
                let free = self.room_after(stop_at);
                let filled = crate::producer::feeding(free, || {
                    fill(&mut self.open, stop_at, upstream.as_mut(), cx)
                });
                match filled {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Fill::Waiting) => return Poll::Ready(Step::Waiting),
                    Poll::Ready(Fill::Ended) => return Poll::Ready(Step::Ended),
                    Poll::Ready(Fill::Reached) => {}
                }
                if stop_at == limit {
                    return Poll::Ready(Step::Full);
                }
                stop_at = (stop_at * 2).min(limit);
                self.reserve_to(stop_at);
                if self.shared.may_starve() {
                    // The pipeline's clock (a test kit's virtual clock sees it).
                    let now = crate::time::now();
                    if now - *held_since.get_or_insert(now) >= MAX_HOLD {
                        return Poll::Ready(Step::Held);
                    }
                }
            })
            .await;
            if step == Step::Ended {
                return Ok(());
            }
            self.send_open(step, &mut since_yield).await?;
        }
    }
}

impl<T> Sender<T> {
    /// [`pump`](Self::pump) for an upstream whose stages move whole
    /// batches, asked through `poll_batch`: each request asks upstream for
    /// as many items as the open batch has room for, so a queue's receiver
    /// hands over its batch whole and a fused `map` transforms it in one
    /// go, instead of one poll per item per stage.
    ///
    /// The same rules as [`pump`](Self::pump): a batch is sent when full,
    /// as soon as upstream would wait, or once it has been held for about
    /// half a millisecond while the receiver waits for items. So that a
    /// request for a whole batch cannot hold a starving receiver for long,
    /// the first request of a batch asks for as many items as upstream
    /// makes in a quarter of that time, estimated from the time its
    /// requests took while the receiver starved (and doubling from there,
    /// as the per-item pump does); the clock is read only while the
    /// receiver starves.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone.
    pub(crate) async fn pump_batches<S>(
        &mut self,
        mut upstream: Pin<&mut S>,
        poll_batch: PollBatch<S>,
    ) -> Result<(), PushError<()>>
    where
        S: Stream<Item = T>,
    {
        let batch = self.shared.batch;
        let mut since_yield = 0;
        // Items the first request of a batch asks for.
        let mut first = 1;
        loop {
            self.wait_to_open().await?;
            let limit = self.limit;
            let mut stop_at = first.min(limit);
            // Time spent in requests that returned items, measured while
            // the receiver starves (`None`: not measured).
            let mut busy: Option<Duration> = None;
            let step = poll_fn(|cx| loop {
                let started = self.shared.may_starve().then(crate::time::now);
                let want = stop_at - self.open.len();
                let free = self.room_after(stop_at);
                let polled = crate::producer::feeding(free, || {
                    poll_batch(upstream.as_mut(), cx, &mut self.open, want)
                });
                if let (Some(started), Poll::Ready(_)) = (started, &polled) {
                    *busy.get_or_insert(Duration::ZERO) += crate::time::now() - started;
                }
                match polled {
                    Poll::Pending if self.open.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(Step::Waiting),
                    Poll::Ready(false) => return Poll::Ready(Step::Ended),
                    Poll::Ready(true) if self.open.len() < stop_at => continue,
                    Poll::Ready(true) => {}
                }
                if stop_at == limit {
                    return Poll::Ready(Step::Full);
                }
                if busy.is_some_and(|busy| busy >= MAX_HOLD) {
                    return Poll::Ready(Step::Held);
                }
                stop_at = (stop_at * 2).min(limit);
            })
            .await;
            first = match busy {
                Some(busy) => items_within(self.open.len(), busy, MAX_HOLD / 4).clamp(1, batch),
                // Nobody waited for this batch: no hurry, so larger
                // requests, until a starving receiver times them.
                None if step == Step::Full => (first * 2).min(batch),
                None => first,
            };
            if step == Step::Ended {
                return Ok(());
            }
            self.send_open(step, &mut since_yield).await?;
        }
    }
}

impl<T> Sender<T> {
    /// [`pump_batches`](Self::pump_batches) with `poll_batch` when upstream
    /// hands over whole batches, else [`pump`](Self::pump).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] when every receiver is gone.
    pub(crate) async fn pump_with<S>(
        &mut self,
        upstream: Pin<&mut S>,
        poll_batch: Option<PollBatch<S>>,
    ) -> Result<(), PushError<()>>
    where
        S: Stream<Item = T>,
    {
        match poll_batch {
            Some(poll_batch) => self.pump_batches(upstream, poll_batch).await,
            None => self.pump(upstream).await,
        }
    }
}

impl<T> Sender<T> {
    /// Waits until the sender has an open batch to fill (room in the
    /// queue), the start of each round of both pumps.
    async fn wait_to_open(&mut self) -> Result<(), PushError<()>> {
        loop {
            if self.is_closed() {
                return Err(PushError::Closed(()));
            }
            if self.open_batch() {
                return Ok(());
            }
            self.shared.wait_for_space().await;
        }
    }

    /// What the queue can still take once the open batch holds `stop_at`
    /// items, for producers that fetch in batches
    /// (`producer::free_capacity`).
    fn room_after(&self, stop_at: usize) -> usize {
        (self.shared.capacity - self.shared.queued()).saturating_sub(stop_at)
    }

    /// Sends the open batch, which stopped filling at `step`, and yields to
    /// the executor now and then: an upstream that never waits would
    /// otherwise keep this task (and, without a runtime, the whole
    /// pipeline) busy until the queue is full. It yields every
    /// [`YIELD_EVERY`] items, and right away after a batch sent for a
    /// starving receiver.
    async fn send_open(
        &mut self,
        step: Step,
        since_yield: &mut usize,
    ) -> Result<(), PushError<()>> {
        let sent = self.open.len();
        self.flush()?;
        *since_yield += sent;
        if step == Step::Held || *since_yield >= YIELD_EVERY {
            *since_yield = 0;
            yield_now().await;
        }
        Ok(())
    }
}

/// How many items an upstream that made `items` in `busy` makes in `span`.
fn items_within(items: usize, busy: Duration, span: Duration) -> usize {
    let busy = busy.as_nanos().max(1);
    usize::try_from(items as u128 * span.as_nanos() / busy).unwrap_or(usize::MAX)
}

/// How [`fill`] returned.
enum Fill {
    /// The batch holds the items asked for.
    Reached,
    /// Upstream would wait, and the batch holds something.
    Waiting,
    /// Upstream ended.
    Ended,
}

/// Moves items from `upstream` into `open` until it holds `stop_at` items,
/// upstream ends, or upstream would wait (`Pending` only while `open` is
/// empty). `open` has room for `stop_at` items.
///
/// The one per-item loop of every pump. Kept out of line with the batch as
/// a parameter: a `&mut` argument cannot be reached by anything the loop
/// calls, so the batch's length can live in a register instead of making
/// a store-to-load round trip through memory for every item.
#[inline(never)]
fn fill<S: Stream>(
    open: &mut Vec<S::Item>,
    stop_at: usize,
    mut upstream: Pin<&mut S>,
    cx: &mut Context<'_>,
) -> Poll<Fill> {
    loop {
        match upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                open.push(item);
                if open.len() == stop_at {
                    return Poll::Ready(Fill::Reached);
                }
            }
            Poll::Ready(None) => return Poll::Ready(Fill::Ended),
            Poll::Pending if open.is_empty() => return Poll::Pending,
            Poll::Pending => return Poll::Ready(Fill::Waiting),
        }
    }
}

/// Yields once to the executor.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
