use std::convert::Infallible;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

use event_listener::EventListener;
use futures::channel::oneshot;
use futures::{FutureExt as _, Sink};
use pin_project_lite::pin_project;

use super::holding::{Holding, Released, WaitOnDrop};
use super::pool::run_in;
use super::BlockingPool;
use crate::queue::{self, PushError, Resume, Sender};
use crate::run::scope as run_scope;
use crate::run::{End, RunContext};

/// Items the queue to the worker thread holds.
const CAPACITY: usize = 128;
/// Items handed to the worker thread at once, at most.
const MAX_BATCH: usize = 64;

/// A consumer that calls the blocking closure `f` on each item, in order, on
/// a [`BlockingPool`] thread of its own (named `flowline-blk-cs`), so that
/// writing to a file, a sync database client or any blocking API never
/// blocks the executor.
///
/// The thread starts with the first item. Items cross to it in batches of up
/// to 64 (sent when full, or when the pipeline flushes the consumer because
/// it has nothing more for now) through a queue of 128 items: a slow `f`
/// slows the pipeline down instead of growing memory. Closing the consumer (the end of a completed
/// [`Pipeline::run`](crate::Pipeline::run)) waits until `f` has seen every
/// item and the thread has exited. Run by a pipeline, `f`'s calls count among
/// the run's blocking calls (the run returns only once none is in
/// progress), stop when the run fails, and run inside the pipeline's runtime
/// context (on tokio, `Handle::current()` works in `f`).
///
/// # Panics
///
/// A panic in `f` is caught on the worker thread and resumed in the task
/// that polls this consumer, so a run fails with
/// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming the
/// `consumer#N` stage. Items after the panicking one are not passed to `f`.
///
/// # Caveats
///
/// Dropping the consumer mid-run stops the thread after the call in
/// progress; queued items are dropped.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::sync::{Arc, Mutex};
/// use flowline_core::{consumer, producer};
///
/// let file = Arc::new(Mutex::new(Vec::<u8>::new())); // stands in for a std::fs::File
/// let out = file.clone();
/// futures::executor::block_on(
///     producer::iter(1..=3).run(consumer::blocking(move |n: u32| {
///         writeln!(out.lock().unwrap(), "line {n}").unwrap();
///     })),
/// )
/// .unwrap();
/// assert_eq!(String::from_utf8(file.lock().unwrap().clone()).unwrap(), "line 1\nline 2\nline 3\n");
/// ```
pub fn blocking<T, F>(f: F) -> BlockingConsumer<T, F>
where
    F: FnMut(T) + Send + 'static,
    T: Send + 'static,
{
    BlockingConsumer {
        f: Some(f),
        tx: None,
        room: None,
        done: None,
        cancel: CancelOnDrop(Arc::new(AtomicBool::new(false))),
        pool: None,
        holding: None,
    }
}

type Started<T> = (
    Sender<T>,
    oneshot::Receiver<thread::Result<()>>,
    BlockingPool,
);

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

pin_project! {
    /// Sink for [`consumer::blocking`](crate::consumer::blocking).
    #[must_use = "sinks do nothing unless used"]
    pub struct BlockingConsumer<T, F> {
        f: Option<F>,
        // The queue to the worker thread, made when it starts.
        tx: Option<Sender<T>>,
        // Registered while waiting for room in the queue.
        room: Option<EventListener>,
        done: Option<oneshot::Receiver<thread::Result<()>>>,
        cancel: CancelOnDrop,
        // Keeps the thread's pool alive; dropping it lets the thread go.
        pool: Option<BlockingPool>,
        // Last: once the queue is gone, waits for the thread to let go of
        // the closure (see `Holding`); set when the thread starts.
        holding: Option<WaitOnDrop>,
    }
}

impl<T, F> fmt::Debug for BlockingConsumer<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingConsumer")
            .field("started", &self.f.is_none())
            .field("queued", &self.tx.as_ref().map(Sender::open_len))
            .finish_non_exhaustive()
    }
}

impl<T, F> BlockingConsumer<T, F>
where
    F: FnMut(T) + Send + 'static,
    T: Send + 'static,
{
    /// Starts the worker thread. Inside a run (`run`), its calls count
    /// among the run's blocking calls, stop when the run halts, and run in
    /// the run's runtime context.
    fn start(
        f: F,
        cancel: Arc<AtomicBool>,
        run: Option<Arc<RunContext>>,
        holding: &Holding,
    ) -> Started<T> {
        // The queue has a context of its own, used or not in a run: its
        // end only tells the worker to stop. The run's failure reaches the
        // worker through `run`, the worker's panic the sink through `done`.
        let queue_ctx = Arc::new(RunContext::default());
        let (tx, mut rx) = queue::bounded_with(CAPACITY, MAX_BATCH, Resume::HalfEmpty, queue_ctx);
        let (done_tx, done_rx) = oneshot::channel();
        let pool = BlockingPool::named(1, "flowline-blk-cs");
        let runtime = run.as_ref().and_then(|ctx| ctx.runtime());
        let stopping = move |run: &Option<Arc<RunContext>>| {
            cancel.load(Relaxed) || run.as_ref().is_some_and(|c| c.lifecycle.is_halted())
        };
        let holding = holding.clone();
        // Released when the job ends, or is dropped unrun with the pool.
        let released = Released(holding.clone());
        pool.queue().submit(Box::new(move || {
            let released = released;
            run_in(runtime, move || {
                let mut f = f;
                let mut guard = None;
                let result = catch_unwind(AssertUnwindSafe(|| {
                    while let Some(batch) = rx.recv_batch_blocking() {
                        guard = run.as_ref().map(|ctx| ctx.calls.enter());
                        // Pairs with the halt: either this sees it, or the
                        // run sees the calls in progress and waits.
                        fence(SeqCst);
                        if stopping(&run) {
                            // Still marked outside user code: the consumer's
                            // drop waits for the closure's drop below.
                            return;
                        }
                        holding.calling(true);
                        for item in batch {
                            if stopping(&run) {
                                return;
                            }
                            f(item);
                        }
                        holding.calling(false);
                        guard = None;
                    }
                }));
                // A sink waiting for room learns that the worker is gone.
                drop(rx);
                // Stopped or panicked mid-batch: still inside the counted
                // call; at the end, before `done` tells the consumer.
                drop(f);
                drop(guard);
                drop(released);
                let _ = done_tx.send(result);
            });
        }));
        (tx, done_rx, pool)
    }
}

/// Resumes the worker's panic, or returns once it has exited cleanly.
fn poll_done(
    done: &mut Option<oneshot::Receiver<thread::Result<()>>>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(rx) = done else {
        return Poll::Ready(());
    };
    let result = futures::ready!(rx.poll_unpin(cx));
    *done = None;
    if let Ok(Err(payload)) = result {
        resume_unwind(payload);
    }
    Poll::Ready(())
}

impl<T, F> BlockingConsumer<T, F> {
    /// Resumes the worker's panic when the worker is gone (its queue
    /// closed); `Ready` also when it is running or stopped cleanly (its run
    /// halted: the items are dropped with the run).
    fn poll_worker(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match this.tx {
            Some(tx) if tx.is_closed() => poll_done(this.done, cx),
            _ => Poll::Ready(()),
        }
    }
}

impl<T, F> Sink<T> for BlockingConsumer<T, F>
where
    F: FnMut(T) + Send + 'static,
    T: Send + 'static,
{
    type Error = Infallible;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let this = self.as_mut().project();
        if let Some(tx) = this.tx {
            futures::ready!(tx.poll_room(cx, this.room));
        }
        futures::ready!(self.poll_worker(cx));
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        let this = self.project();
        if let Some(f) = this.f.take() {
            let run = run_scope::current();
            let holding = Holding::new();
            let (tx, done, pool) = Self::start(f, this.cancel.0.clone(), run, &holding);
            *this.holding = Some(WaitOnDrop(holding));
            *this.tx = Some(tx);
            *this.done = Some(done);
            *this.pool = Some(pool);
        }
        let tx = this.tx.as_mut().expect("started above");
        match tx.try_push(item) {
            // The worker is gone: `poll_ready` / `poll_flush` says why.
            Ok(()) | Err(PushError::Closed(_)) => Ok(()),
            Err(PushError::Full(_)) => {
                panic!("flowline: consumer::blocking: start_send without poll_ready")
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if let Some(tx) = self.as_mut().project().tx {
            let _ = tx.flush();
        }
        futures::ready!(self.poll_worker(cx));
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let this = self.project();
        // Completing the queue lets the worker finish what it has and exit.
        if let Some(tx) = this.tx.take() {
            tx.finish(End::Completed);
        }
        futures::ready!(poll_done(this.done, cx));
        *this.pool = None;
        Poll::Ready(Ok(()))
    }
}
