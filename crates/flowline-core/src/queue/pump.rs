//! The loop that moves a stream's items into a queue in adaptive batches.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use super::{PushError, Sender};

/// Longest an upstream that never waits (a CPU-bound stage) holds a
/// part-full batch while the receiver is starving for items.
const MAX_HOLD: Duration = Duration::from_micros(500);

/// Items a pump moves between yields to its executor.
const YIELD_EVERY: usize = 4096;

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
            if self.is_closed() {
                return Err(PushError::Closed(()));
            }
            if !self.open_batch() {
                self.shared.wait_for_space().await;
                continue;
            }
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
                // What the queue can still take once this fill is done, for
                // producers that fetch in batches (`producer::free_capacity`).
                let free = (self.shared.capacity - self.shared.queued()).saturating_sub(stop_at);
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
                if self.shared.starving.load(Relaxed) {
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
            let sent = self.open.len();
            self.flush()?;
            // An upstream that never waits would otherwise keep this task
            // (and, without a runtime, the whole pipeline) busy until the
            // queue is full: let the receiver and neighbours run now and then,
            // and right away after a batch sent for a starving receiver.
            since_yield += sent;
            if step == Step::Held || since_yield >= YIELD_EVERY {
                since_yield = 0;
                yield_now().await;
            }
        }
    }
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
