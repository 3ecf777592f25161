//! The worker side of a blocking stage: the queues it shares with the
//! stage, and the loop that takes items from the inbound queue, calls the
//! user's function and puts results on the outbound queue — no task in
//! between.

use std::any::Any;
use std::collections::VecDeque;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures::task::AtomicWaker;

use super::pool::{run_in, PoolQueue};
use crate::run::RunContext;

/// A chunk of calls that takes about this long amortises its hand-offs (two
/// lock round trips and maybe a task wake-up: a few microseconds) to a few
/// percent.
const TARGET_CHUNK_NS: u64 = 50_000;

/// Most items a worker takes at once.
const MAX_CHUNK: usize = 512;

/// What became of one item.
pub(crate) enum Outcome<U> {
    Done(U),
    Panicked(Box<dyn Any + Send>),
    /// Not called: the stage failed or the run halted first.
    Skipped,
}

/// The queues between the stage and its workers, under one lock held only
/// to move items in and out (never across a user call).
pub(crate) struct Queues<T, U> {
    pub(crate) inbound: VecDeque<(u64, T)>,
    pub(crate) outbound: Vec<(u64, Outcome<U>)>,
    /// Worker loops started and not yet returned.
    pub(crate) workers: usize,
    /// The stage found nothing to take and is waiting for `waker`.
    pub(crate) receiver_waiting: bool,
}

/// Shared by a blocking stage and its workers.
pub(crate) struct Shared<T, U, F> {
    /// The user's function, taken out (dropped) when the stage ends. A
    /// worker holds a clone only inside a counted call, so the last clone
    /// goes before the run can resolve: nothing of the user's outlives it,
    /// whatever an idle worker thread still holds.
    f: Mutex<Option<Arc<F>>>,
    queues: Mutex<Queues<T, U>>,
    pub(crate) waker: AtomicWaker,
    /// Most worker loops at once.
    parallelism: usize,
    /// Items with a higher sequence number are not called: set to the
    /// lowest one that panicked, so ordered output is exactly the items
    /// before it.
    stop_after: AtomicU64,
    /// Set when the stage ends or is dropped: workers start no new call.
    closed: AtomicBool,
    /// Moving average of one call's cost in nanoseconds (0: not measured yet).
    cost_ns: AtomicU64,
    ctx: Arc<RunContext>,
    pool: PoolQueue,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, U, F> Shared<T, U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    pub(crate) fn new(f: F, parallelism: usize, ctx: Arc<RunContext>, pool: PoolQueue) -> Self {
        Shared {
            f: Mutex::new(Some(Arc::new(f))),
            queues: Mutex::new(Queues {
                inbound: VecDeque::new(),
                outbound: Vec::new(),
                workers: 0,
                receiver_waiting: false,
            }),
            waker: AtomicWaker::new(),
            parallelism,
            stop_after: AtomicU64::new(u64::MAX),
            closed: AtomicBool::new(false),
            cost_ns: AtomicU64::new(0),
            ctx,
            pool,
        }
    }

    /// Items a worker takes at once: one while calls are slow (so no call
    /// waits behind another on a busy thread), more when they are so cheap
    /// that the hand-off would dominate — about `TARGET_CHUNK_NS` of work.
    pub(crate) fn chunk(&self) -> usize {
        match self.cost_ns.load(Ordering::Relaxed) {
            0 => 1,
            cost => ((TARGET_CHUNK_NS / cost) as usize).clamp(1, MAX_CHUNK),
        }
    }

    /// Appends `items` to the inbound queue and starts as many worker loops
    /// as the queued work can keep busy, up to `parallelism`.
    pub(crate) fn feed(self: &Arc<Self>, items: &mut Vec<(u64, T)>) {
        let chunk = self.chunk();
        let start = {
            let mut q = self.queues();
            q.inbound.extend(items.drain(..));
            let wanted = q.inbound.len().div_ceil(chunk).min(self.parallelism);
            let start = wanted.saturating_sub(q.workers);
            q.workers += start;
            start
        };
        for _ in 0..start {
            self.start_worker();
        }
    }

    /// Queues one worker loop on the pool, inside the run's runtime context.
    fn start_worker(self: &Arc<Self>) {
        let shared = self.clone();
        let runtime = self.ctx.runtime();
        self.pool
            .submit(Box::new(move || run_in(runtime, move || shared.work())));
    }

    fn stopping(&self) -> bool {
        self.closed.load(Ordering::Relaxed) || self.ctx.lifecycle.is_halted()
    }

    /// A worker loop: takes chunks from the inbound queue until it is empty,
    /// the stage ends or the run halts. Returns its thread to the pool (and
    /// requeues itself) when other jobs wait for a thread.
    fn work(self: Arc<Self>) {
        let mut results = Vec::new();
        loop {
            let chunk = self.chunk();
            let taken: Vec<(u64, T)> = {
                let mut q = self.queues();
                if self.stopping() || q.inbound.is_empty() {
                    q.workers -= 1;
                    return;
                }
                let n = chunk.min(q.inbound.len());
                q.inbound.drain(..n).collect()
            };
            self.call_all(taken, &mut results);
            let wake = {
                let mut q = self.queues();
                if q.outbound.is_empty() {
                    mem::swap(&mut q.outbound, &mut results);
                } else {
                    q.outbound.append(&mut results);
                }
                mem::take(&mut q.receiver_waiting)
            };
            if wake {
                self.waker.wake();
            }
            if self.pool.is_contended() {
                // Others wait for a thread: go to the back of the line.
                self.start_worker();
                return;
            }
        }
    }

    /// Calls `f` on each item, under a call guard so the run can wait for
    /// the calls to return, and catching panics.
    fn call_all(&self, taken: Vec<(u64, T)>, results: &mut Vec<(u64, Outcome<U>)>) {
        let start = Instant::now();
        let n = taken.len() as u64;
        let guard = self.ctx.calls.enter();
        // Pairs with the halt and the run's idle check: either this worker
        // sees the halt below, or the run sees this call in progress.
        fence(Ordering::SeqCst);
        let f = lock(&self.f).clone();
        for (seq, item) in taken {
            let Some(f) = f
                .as_ref()
                .filter(|_| seq <= self.stop_after.load(Ordering::Relaxed) && !self.stopping())
            else {
                results.push((seq, Outcome::Skipped));
                continue;
            };
            match catch_unwind(AssertUnwindSafe(|| f(item))) {
                Ok(u) => results.push((seq, Outcome::Done(u))),
                Err(payload) => {
                    self.stop_after.fetch_min(seq, Ordering::Relaxed);
                    results.push((seq, Outcome::Panicked(payload)));
                }
            }
        }
        // The last clone may be this one (the stage has ended): dropped
        // while the call still counts, so before the run can resolve.
        drop(f);
        drop(guard);
        let sample = (start.elapsed().as_nanos() as u64 / n.max(1)).max(1);
        let old = self.cost_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 3 + sample) / 4
        };
        self.cost_ns.store(new.max(1), Ordering::Relaxed);
    }
}

impl<T, U, F> Shared<T, U, F> {
    pub(crate) fn queues(&self) -> MutexGuard<'_, Queues<T, U>> {
        lock(&self.queues)
    }

    /// Ends the stage's side: workers start no new call, queued items are
    /// dropped, and so is the user's function (unless a call in progress
    /// holds it: that worker drops it as its call ends).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let dropped = mem::take(&mut self.queues().inbound);
        drop(dropped);
        let f = lock(&self.f).take();
        drop(f);
    }
}
