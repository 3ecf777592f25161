use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::{Stream, StreamExt as _};
use pin_project_lite::pin_project;

use super::BlockingPool;
use crate::run::{RunContext, StageInfo};
use crate::runtime::panic_message;
use crate::PipelineError;

/// A job that takes about this long amortises its hand-off (a condvar wake,
/// a channel send, a task wake-up: a few microseconds) to a few percent.
const TARGET_JOB_NS: u64 = 50_000;

/// Most items in one job.
const MAX_CHUNK: usize = 512;

/// What the workers share with the stage.
struct Work<F> {
    f: F,
    /// Set when the stage fails or is dropped: calls not yet started are skipped.
    cancelled: AtomicBool,
    /// Moving average of one call's cost in nanoseconds (0: not measured yet).
    cost_ns: AtomicU64,
}

enum Outcome<U> {
    Done(U),
    Panicked(Box<dyn Any + Send>),
    Skipped,
}

type Results<U> = Vec<(u64, Outcome<U>)>;

/// A slot of the ordered variant's reorder buffer.
enum Slot<U> {
    Waiting,
    Done(U),
    /// Panicked or skipped: output stops here.
    Gap,
}

/// The part of the stage that does not need pinning.
struct Engine<T, U, F> {
    work: Arc<Work<F>>,
    /// `None` once the stage has ended: dropping it lets the threads exit.
    pool: Option<BlockingPool>,
    parallelism: usize,
    limit: usize,
    ordered: bool,
    /// Pulled from upstream, not yet handed to a worker.
    pending: VecDeque<(u64, T)>,
    next_seq: u64,
    emitted: u64,
    jobs_out: usize,
    items_out: usize,
    tx: UnboundedSender<Results<U>>,
    rx: UnboundedReceiver<Results<U>>,
    /// Ordered: one slot per item from `emitted` to `next_seq`.
    slots: VecDeque<Slot<U>>,
    /// Unordered: results ready to emit.
    ready: VecDeque<U>,
    failed: bool,
    done: bool,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
}

pin_project! {
    /// Stream for [`Pipeline::map_blocking`](crate::Pipeline::map_blocking),
    /// [`map_blocking_unordered`](crate::Pipeline::map_blocking_unordered) and
    /// their `_on` variants: runs a synchronous closure on worker threads.
    #[must_use = "streams do nothing unless polled"]
    pub struct MapBlocking<S: Stream, F, U> {
        #[pin]
        upstream: S,
        upstream_done: bool,
        engine: Engine<S::Item, U, F>,
    }
}

impl<S: Stream, F, U> fmt::Debug for MapBlocking<S, F, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        f.debug_struct("MapBlocking")
            .field("ordered", &e.ordered)
            .field("parallelism", &e.parallelism)
            .field("jobs", &e.jobs_out)
            .field("limit", &e.limit())
            .field("in_flight", &(e.next_seq - e.emitted))
            .finish_non_exhaustive()
    }
}

impl<S, F, U> MapBlocking<S, F, U>
where
    S: Stream,
    S::Item: Send + 'static,
    F: Fn(S::Item) -> U + Send + Sync + 'static,
    U: Send + 'static,
{
    /// `parallelism` calls at once on `pool`, at most `2 × parallelism` items
    /// between upstream and downstream.
    pub(crate) fn new(
        upstream: S,
        f: F,
        pool: BlockingPool,
        parallelism: usize,
        ordered: bool,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded();
        MapBlocking {
            upstream,
            upstream_done: false,
            engine: Engine {
                work: Arc::new(Work {
                    f,
                    cancelled: AtomicBool::new(false),
                    cost_ns: AtomicU64::new(0),
                }),
                pool: Some(pool),
                parallelism,
                limit: 2 * parallelism,
                ordered,
                pending: VecDeque::new(),
                next_seq: 0,
                emitted: 0,
                jobs_out: 0,
                items_out: 0,
                tx,
                rx,
                slots: VecDeque::new(),
                ready: VecDeque::new(),
                failed: false,
                done: false,
                info,
                ctx,
            },
        }
    }
}

impl<T, U, F> Engine<T, U, F> {
    fn in_flight(&self) -> usize {
        (self.next_seq - self.emitted) as usize
    }

    /// Items per job: one while calls are slow (so no call waits behind
    /// another on a busy thread), more when they are cheap enough that the
    /// hand-off would dominate: about `TARGET_JOB_NS` of work per job.
    fn chunk(&self) -> usize {
        match self.work.cost_ns.load(Relaxed) {
            0 => 1,
            cost => ((TARGET_JOB_NS / cost) as usize).clamp(1, MAX_CHUNK),
        }
    }

    /// Items allowed between upstream and downstream: `2 × parallelism`, or
    /// two jobs' worth when calls are so cheap that jobs are batched. The
    /// extra room only exists for calls of under `TARGET_JOB_NS / 2` each,
    /// which cannot produce much memory per item.
    fn limit(&self) -> usize {
        self.limit.max(2 * self.chunk())
    }
}

impl<T, U, F> Engine<T, U, F>
where
    T: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
    U: Send + 'static,
{
    fn push(&mut self, item: T) {
        self.pending.push_back((self.next_seq, item));
        self.next_seq += 1;
        if self.ordered {
            self.slots.push_back(Slot::Waiting);
        }
    }

    fn submit(&mut self) {
        let Some(pool) = &self.pool else { return };
        let chunk = self.chunk();
        // Everything pulled is queued on the pool at once: a thread that
        // finishes a call takes the next without waiting for this task. The
        // pool's thread count bounds the calls running at once.
        while !self.pending.is_empty() {
            let n = chunk.min(self.pending.len());
            let batch: Vec<(u64, T)> = self.pending.drain(..n).collect();
            let work = self.work.clone();
            let tx = self.tx.clone();
            self.jobs_out += 1;
            self.items_out += n;
            pool.submit(Box::new(move || run_job(&work, batch, &tx)));
        }
    }

    fn accept(&mut self, results: Results<U>) {
        self.jobs_out -= 1;
        self.items_out -= results.len();
        for (seq, outcome) in results {
            let slot = match outcome {
                Outcome::Done(u) if self.ordered => Slot::Done(u),
                Outcome::Done(u) => {
                    if !self.failed {
                        self.ready.push_back(u);
                    }
                    continue;
                }
                Outcome::Panicked(payload) => {
                    self.fail(&*payload);
                    Slot::Gap
                }
                Outcome::Skipped => Slot::Gap,
            };
            if self.ordered {
                self.slots[(seq - self.emitted) as usize] = slot;
            }
        }
    }

    fn fail(&mut self, payload: &(dyn Any + Send)) {
        if !self.failed {
            self.failed = true;
            self.work.cancelled.store(true, Relaxed);
            self.info.failed.add(1);
            self.ctx.fail(PipelineError::panicked(
                self.info.name(),
                panic_message(payload),
            ));
            // Not started: dropped. Their slots stay `Waiting`, which ends
            // the ordered output there.
            self.pending.clear();
        }
    }

    fn pop_ready(&mut self) -> Option<U> {
        let out = if self.ordered {
            match self.slots.front() {
                Some(Slot::Done(_)) => match self.slots.pop_front() {
                    Some(Slot::Done(u)) => Some(u),
                    _ => None,
                },
                _ => None,
            }
        } else {
            self.ready.pop_front()
        };
        if out.is_some() {
            self.emitted += 1;
            self.info.out.bump();
        }
        out
    }

    /// Ends the stage: the pool handle goes, so its threads can exit.
    fn finish(&mut self) {
        self.done = true;
        self.pool = None;
        self.slots.clear();
        self.ready.clear();
    }
}

impl<T, U, F> Drop for Engine<T, U, F> {
    fn drop(&mut self) {
        // Calls already running finish; queued ones are skipped.
        self.work.cancelled.store(true, Relaxed);
    }
}

/// Runs one job on a worker thread: each call under `catch_unwind`, results
/// sent back in one message.
fn run_job<T, U, F: Fn(T) -> U>(
    work: &Work<F>,
    batch: Vec<(u64, T)>,
    tx: &UnboundedSender<Results<U>>,
) {
    let start = Instant::now();
    let n = batch.len() as u64;
    let mut results = Vec::with_capacity(batch.len());
    for (seq, item) in batch {
        if work.cancelled.load(Relaxed) {
            results.push((seq, Outcome::Skipped));
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| (work.f)(item))) {
            Ok(u) => results.push((seq, Outcome::Done(u))),
            Err(payload) => {
                work.cancelled.store(true, Relaxed);
                results.push((seq, Outcome::Panicked(payload)));
            }
        }
    }
    let sample = (start.elapsed().as_nanos() as u64 / n.max(1)).max(1);
    let old = work.cost_ns.load(Relaxed);
    let new = if old == 0 {
        sample
    } else {
        (old * 3 + sample) / 4
    };
    work.cost_ns.store(new.max(1), Relaxed);
    // Fails only if the stage is gone, and then nobody wants the results.
    let _ = tx.unbounded_send(results);
}

impl<S, F, U> Stream for MapBlocking<S, F, U>
where
    S: Stream,
    S::Item: Send + 'static,
    F: Fn(S::Item) -> U + Send + Sync + 'static,
    U: Send + 'static,
{
    type Item = U;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let mut this = self.project();
        let e = this.engine;
        if e.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(u) = e.pop_ready() {
                return Poll::Ready(Some(u));
            }
            if e.failed {
                // Wait for the calls in progress: when the run reports the
                // error, no call of this stage is still running.
                if e.items_out == 0 {
                    e.finish();
                    return Poll::Ready(None);
                }
            } else {
                while !*this.upstream_done && e.in_flight() < e.limit() {
                    match this.upstream.as_mut().poll_next(cx) {
                        Poll::Ready(Some(item)) => e.push(item),
                        Poll::Ready(None) => *this.upstream_done = true,
                        Poll::Pending => break,
                    }
                }
                e.submit();
                if *this.upstream_done && e.in_flight() == 0 {
                    e.finish();
                    return Poll::Ready(None);
                }
            }
            match e.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(results)) => e.accept(results),
                // Unreachable while `e.tx` lives.
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
