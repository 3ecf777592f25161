use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use super::holding::{Holding, Released, WaitOnDrop};
use super::pool::run_in;
use super::BlockingPool;
use crate::pipeline::Pipeline;
use crate::producer::{poll_producer_batch, BatchProducer, Source};
use crate::queue::{self, PushError, Receiver, Sender};
use crate::run::{End, RunContext};
use crate::runtime::panic_message;
use crate::PipelineError;

/// Items the queue between the iterator's thread and the pipeline holds
/// (batches of up to 64, a quarter of it).
const CAPACITY: usize = 256;

/// A batch is sent once its first item has waited this long, even if the
/// pipeline still has items queued.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(1);

/// A `next()` call slower than this is worth sending on its own when the
/// pipeline is waiting; faster ones are batched, as the next item is near.
const SLOW_NEXT: Duration = Duration::from_micros(20);

/// Starts the iterator's thread, sending into the queue; gets the run and
/// the stage's name.
type Start<T> = Box<dyn FnOnce(Sender<T>, Arc<RunContext>, String) -> BlockingPool + Send>;

/// The run this source belongs to, known once its pipeline exists.
type Link = Arc<OnceLock<(Arc<RunContext>, String)>>;

/// A pipeline whose source is a blocking iterator (stage `blocking_iter#0`).
///
/// `next()` runs on a [`BlockingPool`] thread of its own (named
/// `flowline-blk-it`), started on the first poll and inside the pipeline's
/// runtime context, so an iterator that reads files, a database cursor or a
/// sync client never blocks the executor. Items reach the pipeline through a
/// bounded queue of 256 items, in batches: a batch is sent when it is full
/// (64 items), once its first item is 1 ms old, or — so that a slow
/// iterator's items are never held back — as soon as a `next()` call took
/// 20 µs or more while the pipeline waits for items. All checked after each
/// `next()`. The queue holds at most 256 items whatever the iterator's
/// rhythm (a part-full batch holds only its items' memory), and its batches
/// move on whole: a `map`, `boundary` or `run_fold` after this source takes
/// a batch at a time. Each `next()` counts as one of the run's blocking
/// calls, and none starts once the run has failed elsewhere.
///
/// # Errors
///
/// A panic in the iterator is caught on its thread; the items it yielded
/// before are delivered, then the run fails with
/// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming
/// `blocking_iter#0`.
///
/// # Caveats
///
/// Dropping the pipeline cannot interrupt a `next()` call in progress: the
/// thread drops the iterator and exits as soon as that call returns (a run
/// waits for that call). Otherwise the iterator is dropped before the drop
/// of the pipeline returns, and always before a run's future resolves.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let lines = std::io::Cursor::new("alpha\nbeta\n");
/// let (out, _) = futures::executor::block_on(
///     producer::from_blocking_iter(std::io::BufRead::lines(lines).map(Result::unwrap)).run_collect(),
/// )
/// .unwrap();
/// assert_eq!(out, ["alpha", "beta"]);
/// ```
pub fn from_blocking_iter<I>(items: I) -> Pipeline<Source<FromBlockingIter<I::Item>>>
where
    I: IntoIterator + Send + 'static,
    I::Item: Send + 'static,
{
    let holding = Holding::new();
    // Released when the job ends, or is dropped unrun (with the pool, or
    // never started).
    let released = Released(holding.clone());
    let start: Start<I::Item> = Box::new(move |tx, ctx, stage| {
        let pool = BlockingPool::named(1, "flowline-blk-it");
        let runtime = ctx.runtime();
        pool.queue().submit(Box::new(move || {
            let released = released;
            run_in(runtime, || produce(items, tx, &ctx, stage, &released.0));
        }));
        pool
    });
    let link = Link::default();
    let stream = FromBlockingIter {
        start: Some(start),
        link: link.clone(),
        rx: None,
        pool: None,
        _holding: WaitOnDrop(holding),
    };
    let pipeline = Source::pipeline_with("blocking_iter", stream, poll_producer_batch);
    let ctx = pipeline.core.ctx.clone();
    let name = ctx.stage(0).name();
    let _ = link.set((ctx, name));
    pipeline
}

/// Whether the iterator's thread should stop, checked right after it
/// enters a counted call.
fn stopping<T>(ctx: &RunContext, tx: &Sender<T>) -> bool {
    // Pairs with the halt: either this sees it, or the run sees the call.
    fence(Ordering::SeqCst);
    still_stopping(ctx, tx)
}

/// [`stopping`] between two items, inside the same counted call: the run
/// waits for that call, so the thread need only see the halt soon, not at
/// once (no fence per item).
fn still_stopping<T>(ctx: &RunContext, tx: &Sender<T>) -> bool {
    ctx.lifecycle.is_halted() || tx.is_closed()
}

/// Runs the user's iterator on its thread, inside counted calls, into
/// `tx`: the guard is held across `next()` calls and let go only while the
/// thread waits for room, and the iterator is dropped inside one, before
/// the queue ends. A stop (the run halted, the pipeline dropped) drops
/// `tx` unfinished: the queue ends [`End::Aborted`].
fn produce<I: IntoIterator>(
    items: I,
    mut tx: Sender<I::Item>,
    ctx: &RunContext,
    stage: String,
    holding: &Holding,
) {
    let guard = ctx.calls.enter();
    if stopping(ctx, &tx) {
        drop(items);
        return;
    }
    let mut iter = match holding.user(|| items.into_iter()) {
        Ok(iter) => iter,
        Err(payload) => {
            drop(guard);
            tx.fail(PipelineError::panicked(stage, panic_message(&*payload)));
            return;
        }
    };
    let mut guard = guard;
    // One clock read per item: the read after an item is the start of the
    // next call (what lies between is a push, a few nanoseconds).
    let mut last = Instant::now();
    let mut first = last;
    loop {
        let item = match holding.user(|| iter.next()) {
            Ok(Some(item)) => item,
            Ok(None) => {
                // Dropped before the queue completes: the run cannot
                // complete first.
                drop(iter);
                drop(guard);
                tx.finish(End::Completed);
                return;
            }
            Err(payload) => {
                drop(iter);
                drop(guard);
                // The items before the panic are delivered first.
                tx.fail(PipelineError::panicked(stage, panic_message(&*payload)));
                return;
            }
        };
        let now = Instant::now();
        let took = now - last;
        last = now;
        if tx.open_len() == 0 {
            first = now;
        }
        let sent = match tx.try_push(item) {
            Err(PushError::Full(item)) => {
                // Not counted while it waits: a halted run stops reading.
                drop(guard);
                let sent = tx.send_blocking(item);
                guard = ctx.calls.enter();
                last = Instant::now();
                first = last;
                if stopping(ctx, &tx) {
                    drop(iter);
                    drop(guard);
                    return;
                }
                sent
            }
            pushed => pushed,
        };
        let hungry = tx.receiver_waiting() && took >= SLOW_NEXT;
        let flushed = if hungry || last - first >= MAX_BATCH_DELAY {
            tx.flush()
        } else {
            Ok(())
        };
        if sent.is_err() || flushed.is_err() || still_stopping(ctx, &tx) {
            drop(iter);
            drop(guard);
            return;
        }
    }
}

/// Stream for [`from_blocking_iter`](crate::producer::from_blocking_iter):
/// the receiving end of the queue the iterator's thread fills.
#[must_use = "streams do nothing unless polled"]
pub struct FromBlockingIter<T> {
    start: Option<Start<T>>,
    link: Link,
    /// Made with the thread, on the first poll (when the run is known).
    rx: Option<Receiver<T>>,
    // Keeps the thread's pool alive; dropping it lets the thread go.
    pool: Option<BlockingPool>,
    // Last: waits, once the receiver is gone, for the thread to let go of
    // the user's iterator (see `Holding`).
    _holding: WaitOnDrop,
}

impl<T> fmt::Debug for FromBlockingIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromBlockingIter")
            .field("started", &self.start.is_none())
            .field("queued", &self.rx.as_ref().map_or(0, Receiver::queued))
            .finish_non_exhaustive()
    }
}

impl<T> FromBlockingIter<T> {
    /// The queue's receiver, starting the thread on the first call.
    fn receiver(&mut self) -> &mut Receiver<T> {
        if let Some(start) = self.start.take() {
            let Some((ctx, stage)) = self.link.get() else {
                unreachable!("linked when the pipeline is built")
            };
            let (tx, rx) = queue::bounded(CAPACITY, ctx.clone());
            self.rx = Some(rx);
            self.pool = Some(start(tx, ctx.clone(), stage.clone()));
        }
        self.rx.as_mut().expect("started above")
    }

    /// Lets the thread's pool go once the queue has completed.
    fn ended<R>(&mut self, polled: Poll<R>, more: impl FnOnce(&R) -> bool) -> Poll<R> {
        if let Poll::Ready(r) = &polled {
            if !more(r) {
                self.pool = None;
            }
        }
        polled
    }
}

// Nothing is pinned: the receiver moves items out by value.
impl<T> Unpin for FromBlockingIter<T> {}

impl<T> Stream for FromBlockingIter<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let polled = Pin::new(this.receiver()).poll_next(cx);
        this.ended(polled, Option::is_some)
    }
}

impl<T> BatchProducer for FromBlockingIter<T> {
    fn poll_batch(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut Vec<T>,
        max: usize,
    ) -> Poll<bool> {
        let this = self.get_mut();
        let polled = this.receiver().poll_batch(cx, out, max);
        this.ended(polled, |more| *more)
    }
}
