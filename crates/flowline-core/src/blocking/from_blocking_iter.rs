use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures::Stream;
use pin_project_lite::pin_project;

use super::holding::{Holding, Released, WaitOnDrop};
use super::pool::run_in;
use super::BlockingPool;
use crate::pipeline::Pipeline;
use crate::producer::Source;
use crate::run::{RunContext, StageInfo};
use crate::runtime::panic_message;
use crate::stage::batch_geometry;
use crate::PipelineError;

/// Items the queue between the iterator's thread and the pipeline holds.
const CAPACITY: usize = 256;

/// A batch is sent once its first item has waited this long, even if the
/// pipeline still has items queued.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(1);

/// A `next()` call slower than this is worth sending on its own when the
/// pipeline is waiting; faster ones are batched, as the next item is near.
const SLOW_NEXT: Duration = Duration::from_micros(20);

enum Msg<T> {
    Items(Vec<T>),
    Panicked(Box<dyn Any + Send>),
    /// The iterator ran out: the only end of stream. A queue closed without
    /// it means the thread stopped for the run's failure.
    End,
}

type Start<T> = Box<dyn FnOnce(Sender<Msg<T>>, Arc<RunContext>) -> BlockingPool + Send + 'static>;

/// The run this source belongs to, known once its pipeline exists.
type Link = Arc<OnceLock<(Arc<RunContext>, Arc<StageInfo>)>>;

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
/// `next()`. Each `next()` counts as one of the run's blocking calls, and
/// none starts once the run has failed elsewhere.
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
    let (batch, slots) = batch_geometry(CAPACITY);
    let (tx, rx) = async_channel::bounded(slots);
    let holding = Holding::new();
    let thread_holding = holding.clone();
    // Released when the job ends, or is dropped unrun (with the pool, or
    // never started).
    let released = Released(thread_holding);
    let start: Start<I::Item> = Box::new(move |tx, ctx| {
        let pool = BlockingPool::named(1, "flowline-blk-it");
        let runtime = ctx.runtime();
        pool.queue().submit(Box::new(move || {
            let released = released;
            run_in(runtime, || produce(items, batch, &tx, &ctx, &released.0));
        }));
        pool
    });
    let link = Link::default();
    let stream = FromBlockingIter {
        start: Some((start, tx)),
        link: link.clone(),
        pool: None,
        failed: false,
        rx,
        current: Vec::new().into_iter(),
        holding: WaitOnDrop(holding),
    };
    let pipeline = Source::pipeline("blocking_iter", stream);
    let ctx = pipeline.core.ctx.clone();
    let info = ctx.stage(0);
    let _ = link.set((ctx, info));
    pipeline
}

/// Runs one user call counted as a blocking call of the run, unless the run
/// has halted (then `None`).
/// Whether the iterator's thread should stop (checked inside a call).
fn stopping<T>(ctx: &RunContext, tx: &Sender<T>) -> bool {
    // Pairs with the halt: either this sees it, or the run sees the call.
    fence(Ordering::SeqCst);
    ctx.lifecycle.is_halted() || tx.is_closed()
}

/// Runs the user's iterator on its thread, inside counted calls: the guard
/// is held across `next()` calls and let go only to send a batch, and the
/// iterator is dropped inside one, before an end or a panic is sent.
fn produce<I: IntoIterator>(
    items: I,
    max_batch: usize,
    tx: &Sender<Msg<I::Item>>,
    ctx: &RunContext,
    holding: &Holding,
) {
    let guard = ctx.calls.enter();
    if stopping(ctx, tx) {
        drop(items);
        return;
    }
    let mut iter = match holding.user(|| items.into_iter()) {
        Ok(iter) => iter,
        Err(payload) => {
            drop(guard);
            let _ = tx.send_blocking(Msg::Panicked(payload));
            return;
        }
    };
    let mut guard = guard;
    let mut batch = Vec::with_capacity(max_batch);
    let mut first = Instant::now();
    loop {
        let called = Instant::now();
        match holding.user(|| iter.next()) {
            Ok(Some(item)) => {
                let now = Instant::now();
                if batch.is_empty() {
                    first = now;
                }
                batch.push(item);
                let hungry = tx.is_empty() && now - called >= SLOW_NEXT;
                if hungry || batch.len() >= max_batch || now - first >= MAX_BATCH_DELAY {
                    drop(guard);
                    let sent = tx.send_blocking(Msg::Items(std::mem::take(&mut batch)));
                    guard = ctx.calls.enter();
                    if sent.is_err() {
                        drop(iter);
                        drop(guard);
                        return;
                    }
                }
                if stopping(ctx, tx) {
                    drop(iter);
                    drop(guard);
                    return;
                }
            }
            Ok(None) => {
                // Dropped before `End` is sent: the run cannot complete first.
                drop(iter);
                drop(guard);
                if !batch.is_empty() {
                    let _ = tx.send_blocking(Msg::Items(batch));
                }
                let _ = tx.send_blocking(Msg::End);
                return;
            }
            Err(payload) => {
                drop(iter);
                drop(guard);
                if !batch.is_empty() {
                    let _ = tx.send_blocking(Msg::Items(std::mem::take(&mut batch)));
                }
                let _ = tx.send_blocking(Msg::Panicked(payload));
                return;
            }
        }
    }
}

pin_project! {
    /// Stream for [`from_blocking_iter`](crate::producer::from_blocking_iter).
    #[must_use = "streams do nothing unless polled"]
    pub struct FromBlockingIter<T> {
        start: Option<(Start<T>, Sender<Msg<T>>)>,
        link: Link,
        // Keeps the thread's pool alive; dropping it lets the thread go.
        pool: Option<BlockingPool>,
        failed: bool,
        #[pin]
        rx: Receiver<Msg<T>>,
        current: std::vec::IntoIter<T>,
        // Last: waits, once the receiver is gone, for the thread to let go
        // of the user's iterator (see `Holding`).
        holding: WaitOnDrop,
    }
}

impl<T> fmt::Debug for FromBlockingIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromBlockingIter")
            .field("started", &self.start.is_none())
            .field("queued_batches", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for FromBlockingIter<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        let Some((ctx, info)) = this.link.get() else {
            unreachable!("linked when the pipeline is built")
        };
        if let Some((start, tx)) = this.start.take() {
            *this.pool = Some(start(tx, ctx.clone()));
        }
        loop {
            if let Some(item) = this.current.next() {
                return Poll::Ready(Some(item));
            }
            if *this.failed {
                return Poll::Pending;
            }
            match futures::ready!(this.rx.as_mut().poll_next(cx)) {
                Some(Msg::Items(batch)) => *this.current = batch.into_iter(),
                Some(Msg::Panicked(payload)) => {
                    *this.failed = true;
                    *this.pool = None;
                    ctx.fail(PipelineError::panicked(
                        info.name(),
                        panic_message(&*payload),
                    ));
                    return Poll::Pending;
                }
                Some(Msg::End) => {
                    *this.pool = None;
                    return Poll::Ready(None);
                }
                // The thread stopped for the run's failure: not an end.
                None => {
                    *this.failed = true;
                    return Poll::Pending;
                }
            }
        }
    }
}
