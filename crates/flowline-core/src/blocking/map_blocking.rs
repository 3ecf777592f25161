use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use super::worker::{Outcome, Shared};
use super::BlockingPool;
use crate::run::{RunContext, StageInfo};
use crate::runtime::panic_message;
use crate::PipelineError;

/// A slot of the ordered variant's reorder buffer.
enum Slot<U> {
    Waiting,
    Done(U),
    /// Panicked or skipped: ordered output stops here.
    Gap,
}

/// How the stage is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// A call panicked at this sequence number (the lowest so far): results
    /// before it are still emitted, then the stage fails.
    Failing(u64),
    /// The error is recorded: the stage's output never ends.
    Failed,
    /// Upstream completed and every result is out.
    Done,
}

/// The receiving half: admits items, restores order, emits.
struct Receiver<T, U, F> {
    shared: Arc<Shared<T, U, F>>,
    /// Keeps the pool alive while the stage runs; `None` once it has ended,
    /// so that a pool of the stage's own lets its threads go.
    pool: Option<BlockingPool>,
    ordered: bool,
    /// Most items between upstream and downstream (see [`limit`](Self::limit)).
    base_limit: usize,
    next_seq: u64,
    emitted: u64,
    /// Pulled from upstream, not yet on the inbound queue (reused buffer).
    admitted: Vec<(u64, T)>,
    /// Taken from the outbound queue (reused buffer).
    arrived: Vec<(u64, Outcome<U>)>,
    /// Ordered: one slot per item from `emitted` to `next_seq`.
    slots: VecDeque<Slot<U>>,
    /// Unordered: results ready to emit.
    ready: VecDeque<U>,
    panic_message: Option<String>,
    state: State,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
}

pin_project! {
    /// Stream for [`Pipeline::map_blocking`](crate::Pipeline::map_blocking)
    /// and [`Pipeline::map_blocking_with`](crate::Pipeline::map_blocking_with):
    /// runs a synchronous closure on worker threads.
    #[must_use = "streams do nothing unless polled"]
    pub struct MapBlocking<S: Stream, F, U> {
        #[pin]
        upstream: S,
        upstream_done: bool,
        receiver: Receiver<S::Item, U, F>,
    }
}

impl<T, U, F> Drop for Receiver<T, U, F> {
    fn drop(&mut self) {
        // Calls in progress finish; queued items are dropped.
        self.shared.close();
    }
}

impl<S: Stream, F, U> fmt::Debug for MapBlocking<S, F, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.receiver;
        f.debug_struct("MapBlocking")
            .field("ordered", &r.ordered)
            .field("limit", &r.base_limit)
            .field("in_flight", &(r.next_seq - r.emitted))
            .field("state", &r.state)
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
    /// `parallelism` calls at once on `pool`, at most `2 × parallelism`
    /// items between upstream and downstream (more for cheap calls, see
    /// [`Receiver::limit`]).
    pub(crate) fn new(
        upstream: S,
        f: F,
        pool: BlockingPool,
        parallelism: usize,
        ordered: bool,
        info: Arc<StageInfo>,
        ctx: Arc<RunContext>,
    ) -> Self {
        let shared = Arc::new(Shared::new(f, parallelism, ctx.clone(), pool.queue()));
        MapBlocking {
            upstream,
            upstream_done: false,
            receiver: Receiver {
                shared,
                pool: Some(pool),
                ordered,
                base_limit: 2 * parallelism,
                next_seq: 0,
                emitted: 0,
                admitted: Vec::new(),
                arrived: Vec::new(),
                slots: VecDeque::new(),
                ready: VecDeque::new(),
                panic_message: None,
                state: State::Running,
                info,
                ctx,
            },
        }
    }
}

impl<T, U, F> Receiver<T, U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    fn in_flight(&self) -> usize {
        (self.next_seq - self.emitted) as usize
    }

    /// Items allowed between upstream and downstream: `2 × parallelism`, or
    /// two chunks when calls are so cheap that workers take them in chunks
    /// (at most `2 × 512`, only for calls under 50 µs ÷ 2 each, which
    /// cannot hold much memory per item).
    fn limit(&self) -> usize {
        self.base_limit.max(2 * self.shared.chunk())
    }

    /// Whether there is room for a worthwhile batch of new items: one item
    /// while calls are slow, a chunk when they are cheap (so the stage takes
    /// the queue's lock once per chunk, not once per item).
    fn has_room(&self) -> bool {
        let limit = self.limit();
        let in_flight = self.in_flight();
        in_flight < limit && (in_flight == 0 || limit - in_flight >= self.shared.chunk())
    }

    fn admit(&mut self, item: T) {
        self.admitted.push((self.next_seq, item));
        self.next_seq += 1;
        if self.ordered {
            self.slots.push_back(Slot::Waiting);
        }
    }

    /// Hands admitted items to the workers.
    fn feed(&mut self) {
        if !self.admitted.is_empty() {
            self.shared.feed(&mut self.admitted);
        }
    }

    /// Takes the workers' results; when there are none, registers to be
    /// woken by the next ones. Returns whether any arrived.
    fn collect(&mut self, cx: &mut Context<'_>) -> bool {
        {
            let mut q = self.shared.queues();
            if q.outbound.is_empty() {
                self.shared.waker.register(cx.waker());
                q.receiver_waiting = true;
                return false;
            }
            mem::swap(&mut q.outbound, &mut self.arrived);
        }
        let mut arrived = mem::take(&mut self.arrived);
        for (seq, outcome) in arrived.drain(..) {
            self.accept(seq, outcome);
        }
        self.arrived = arrived;
        true
    }

    fn accept(&mut self, seq: u64, outcome: Outcome<U>) {
        let slot = match outcome {
            Outcome::Done(u) if self.ordered => Slot::Done(u),
            Outcome::Done(u) => {
                if self.state == State::Running {
                    self.ready.push_back(u);
                }
                return;
            }
            Outcome::Panicked(payload) => {
                let earliest = match self.state {
                    State::Failing(at) => seq < at,
                    State::Running => true,
                    State::Failed | State::Done => false,
                };
                if earliest {
                    self.state = State::Failing(seq);
                    self.panic_message = Some(panic_message(&*payload));
                }
                Slot::Gap
            }
            Outcome::Skipped => Slot::Gap,
        };
        if self.ordered {
            if let Some(s) = self.slots.get_mut((seq - self.emitted) as usize) {
                *s = slot;
            }
        }
    }

    /// The next result to emit, if it is ready: in order of sequence number
    /// when ordered, else in order of arrival; none after a panic (ordered:
    /// none from the panicking item on).
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

    /// After a panic: fails the stage once every earlier result is out
    /// (ordered) or the results that arrived before it are (unordered).
    fn try_fail(&mut self) -> bool {
        let State::Failing(at) = self.state else {
            return self.state == State::Failed;
        };
        let earlier_out = if self.ordered {
            self.emitted >= at
        } else {
            self.ready.is_empty()
        };
        if !earlier_out {
            return false;
        }
        self.state = State::Failed;
        self.info.failed.add(1);
        self.ctx.fail(PipelineError::panicked(
            self.info.name(),
            self.panic_message.take().unwrap_or_default(),
        ));
        self.end();
        true
    }

    /// Ends the stage's side: workers stop, and the pool handle goes, so a
    /// pool of the stage's own lets its threads exit.
    fn end(&mut self) {
        self.shared.close();
        self.pool = None;
        self.slots.clear();
        self.ready.clear();
    }
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
        let r = this.receiver;
        loop {
            match r.state {
                State::Done => return Poll::Ready(None),
                // The run is failing: it stops on its own, and ending the
                // stream here would look like a completed one downstream.
                State::Failed => return Poll::Pending,
                State::Running => {
                    // Refill first, so the workers have work while the item
                    // returned below is being consumed.
                    if !*this.upstream_done && r.has_room() {
                        while r.in_flight() < r.limit() {
                            match this.upstream.as_mut().poll_next(cx) {
                                Poll::Ready(Some(item)) => r.admit(item),
                                Poll::Ready(None) => {
                                    *this.upstream_done = true;
                                    break;
                                }
                                Poll::Pending => break,
                            }
                        }
                        r.feed();
                    }
                }
                State::Failing(_) => {}
            }
            if let Some(u) = r.pop_ready() {
                return Poll::Ready(Some(u));
            }
            if r.try_fail() {
                return Poll::Pending;
            }
            if r.state == State::Running && *this.upstream_done && r.in_flight() == 0 {
                r.state = State::Done;
                r.end();
                return Poll::Ready(None);
            }
            if !r.collect(cx) {
                return Poll::Pending;
            }
        }
    }
}
