use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures::Stream;
use pin_project_lite::pin_project;

use crate::producer::Source;
use crate::run::Pipeline;
use crate::stage::batch_geometry;

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
}

type Start<T> = Box<dyn FnOnce(Sender<Msg<T>>) + Send + 'static>;

/// A pipeline whose source is a blocking iterator (stage `blocking_iter#0`).
///
/// `next()` runs on a thread of its own (named `flowline-blk-it`), started on
/// the first poll, so an iterator that reads files, a database cursor or a
/// sync client never blocks the executor. Items reach the pipeline through a
/// bounded queue of 256 items, in batches: a batch is sent when it is full
/// (64 items), once its first item is 1 ms old, or — so that a slow
/// iterator's items are never held back — as soon as a `next()` call took
/// 20 µs or more while the pipeline waits for items. All checked after each
/// `next()`.
///
/// # Panics
///
/// A panic in the iterator is caught on its thread and resumed in the task
/// polling the pipeline, after the items it yielded before: the run fails
/// with [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming
/// `blocking_iter#0`.
///
/// # Caveats
///
/// Dropping the pipeline cannot interrupt a `next()` call in progress: the
/// thread exits as soon as that call returns.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let lines = std::io::Cursor::new("alpha\nbeta\n");
/// let (out, _) = futures::executor::block_on(
///     producer::from_blocking_iter(std::io::BufRead::lines(lines).map(Result::unwrap)).collect(),
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
    let start: Start<I::Item> = Box::new(move |tx| {
        let spawned = thread::Builder::new()
            .name("flowline-blk-it".into())
            .spawn(move || produce(items, batch, &tx));
        if let Err(e) = spawned {
            panic!("flowline: cannot start a thread for from_blocking_iter: {e}");
        }
    });
    let stream = FromBlockingIter {
        start: Some((start, tx)),
        rx,
        current: Vec::new().into_iter(),
    };
    Source::pipeline("blocking_iter", stream)
}

/// The iterator's thread: batches items into `tx` until the iterator ends,
/// panics, or the pipeline is dropped.
fn produce<I: IntoIterator>(items: I, max_batch: usize, tx: &Sender<Msg<I::Item>>) {
    let mut iter = match catch_unwind(AssertUnwindSafe(|| items.into_iter())) {
        Ok(iter) => iter,
        Err(payload) => {
            let _ = tx.send_blocking(Msg::Panicked(payload));
            return;
        }
    };
    let mut batch = Vec::with_capacity(max_batch);
    let mut first = Instant::now();
    loop {
        if tx.is_closed() {
            return;
        }
        let called = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| iter.next())) {
            Ok(Some(item)) => {
                let now = Instant::now();
                if batch.is_empty() {
                    first = now;
                }
                batch.push(item);
                let hungry = tx.is_empty() && now - called >= SLOW_NEXT;
                if (hungry || batch.len() >= max_batch || now - first >= MAX_BATCH_DELAY)
                    && tx
                        .send_blocking(Msg::Items(std::mem::take(&mut batch)))
                        .is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                if !batch.is_empty() {
                    let _ = tx.send_blocking(Msg::Items(batch));
                }
                return;
            }
            Err(payload) => {
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
        #[pin]
        rx: Receiver<Msg<T>>,
        current: std::vec::IntoIter<T>,
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
        if let Some((start, tx)) = this.start.take() {
            start(tx);
        }
        loop {
            if let Some(item) = this.current.next() {
                return Poll::Ready(Some(item));
            }
            match futures::ready!(this.rx.as_mut().poll_next(cx)) {
                Some(Msg::Items(batch)) => *this.current = batch.into_iter(),
                Some(Msg::Panicked(payload)) => resume_unwind(payload),
                None => return Poll::Ready(None),
            }
        }
    }
}
