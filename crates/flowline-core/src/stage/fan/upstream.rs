//! The task a fan-out's branches share: it owns the upstream pipeline.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream};

use super::Branch;
use crate::queue::Receiver;
use crate::queue::{self, poll_into, yield_now, BatchOut, Batched, PollBatch, PushError};
use crate::queue::{Feeding, Resume, Sender};
use crate::run::{Core, End, RunContext, StageInfo, StageKind};
use crate::stage::overflow::{queue_batch, Overflow};
use crate::Pipeline;

/// The upstream pipeline, owned by the fan-out task. Its own tasks (earlier
/// boundaries) are polled whenever the fan-out task waits, as a run does.
pub(crate) struct Upstream<S> {
    driven: Driven<S>,
    budget: u32,
    yield_every: u32,
    feeding: Feeding,
}

impl<S: Stream> Upstream<S> {
    /// Owns `pipeline`, yielding every `yield_every` items (see
    /// [`yield_every`](crate::stage::overflow::yield_every)).
    pub(crate) fn new(pipeline: Pipeline<S>, yield_every: u32) -> Self {
        Upstream {
            driven: Driven::new(pipeline).0,
            budget: yield_every,
            yield_every,
            feeding: Feeding::default(),
        }
    }

    /// After an item was queued for `tx`'s branch: a branch waiting for
    /// items gets it now, and the task yields in time for it (see
    /// [`Feeding`]).
    pub(crate) fn fed<T>(&mut self, tx: &mut Sender<T>) {
        self.feeding.fed(tx);
    }

    /// The next upstream item, yielding to the executor now and then so an
    /// always-ready upstream with never-waiting queues cannot hog the thread.
    /// Calls `on_wait` whenever upstream would wait, and before yielding:
    /// the moments to send the branches' open batches.
    pub(crate) async fn next(&mut self, mut on_wait: impl FnMut()) -> Option<S::Item> {
        self.budget -= 1;
        if self.budget == 0 || self.feeding.should_yield() {
            self.budget = self.yield_every;
            // An upstream that never waits still hands its batches over.
            on_wait();
            yield_now().await;
        }
        let driven = &mut self.driven;
        poll_fn(|cx| {
            let next = Pin::new(&mut *driven).poll_next(cx);
            if next.is_pending() {
                on_wait();
            }
            next
        })
        .await
    }

    /// Awaits `fut` (a send into a full queue) while the upstream's tasks
    /// keep running.
    pub(crate) async fn wait<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let core = &mut self.driven.core;
        poll_fn(|cx| {
            core.poll_tasks(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Sends `item` to branch `i`, waiting for room in its queue while the
    /// upstream's tasks keep running.
    ///
    /// Before it waits, every branch's open batch is sent: no branch may
    /// wait for items held back while another is full (a `zip` of two
    /// branches would never finish). A branch whose receiver is waiting for
    /// items gets this one at once.
    pub(crate) async fn send<T>(
        &mut self,
        senders: &mut [Sender<T>],
        i: usize,
        item: T,
    ) -> Result<(), PushError<T>> {
        let item = match senders[i].try_push(item) {
            Err(PushError::Full(item)) => item,
            done => {
                self.fed(&mut senders[i]);
                return done;
            }
        };
        senders.iter_mut().for_each(|tx| drop(tx.flush()));
        self.wait(senders[i].send(item)).await
    }

    /// After the last item: waits for the upstream's tasks to finish.
    pub(crate) async fn finish(mut self) {
        self.driven.finish().await
    }
}

/// The upstream pipeline as one stream for a queue's pump (a fan-out that
/// feeds one queue, `balance`): polling it polls the upstream's own tasks
/// first, as [`Upstream::next`] does, and it keeps the upstream's batch path.
pub(crate) struct Driven<S> {
    stream: Pin<Box<S>>,
    core: Core,
    batch: Option<Batched<S>>,
}

impl<S: Stream> Driven<S> {
    /// Owns `pipeline`; with the [`PollBatch`] to pump it with, if its
    /// stages hand over whole batches.
    pub(crate) fn new(pipeline: Pipeline<S>) -> (Self, Option<PollBatch<Self>>) {
        let Pipeline {
            stream,
            core,
            batch,
        } = pipeline;
        let poll_batch = batch
            .is_some()
            .then_some(Self::poll_batch as PollBatch<Self>);
        let driven = Driven {
            stream: Box::pin(stream),
            core,
            batch,
        };
        (driven, poll_batch)
    }

    fn poll_batch(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let this = &mut *self;
        this.core.poll_tasks(cx);
        let batched = (this.batch.as_ref()).expect("a Driven pumped in batches has a PollBatch");
        let keep_prefix = out.keeps_prefix();
        poll_into(
            batched,
            this.stream.as_mut(),
            cx,
            out.items(),
            max,
            keep_prefix,
        )
    }

    /// After the last item: waits for the upstream's tasks to finish.
    pub(crate) async fn finish(&mut self) {
        poll_fn(|cx| self.core.poll_finish(cx)).await
    }
}

impl<S: Stream> Stream for Driven<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        this.core.poll_tasks(cx);
        this.stream.as_mut().poll_next(cx)
    }
}

/// The stage records and contexts of a fan-out's branches, before the task
/// that feeds them exists.
pub(crate) struct Split {
    root: Arc<RunContext>,
    name: String,
    pub(crate) contexts: Vec<Arc<RunContext>>,
    pub(crate) infos: Vec<Arc<StageInfo>>,
    index: usize,
    /// Whether the branches take from one shared queue (`balance`): each
    /// then counts what it took as its input.
    pub(crate) shared: bool,
}

impl Split {
    /// Registers `branches` branch stages named `<prefix>#<index>.<branch>`,
    /// each in a context of its own that starts with the upstream's stages.
    pub(crate) fn new(core: &Core, prefix: &str, branches: usize) -> Self {
        let mut contexts = Vec::with_capacity(branches);
        let mut infos = Vec::with_capacity(branches);
        let mut index = 0;
        for branch in 0..branches {
            // Named `<prefix>#<index>.<branch>`, like every stage of the branch.
            let ctx = RunContext::branch_of(&core.ctx, branch);
            let (i, info) = ctx.add_stage(prefix, StageKind::FanOut, vec![core.last_index()]);
            index = i;
            contexts.push(ctx);
            infos.push(info);
        }
        Split {
            root: core.ctx.clone(),
            name: format!("{prefix}#{index}"),
            contexts,
            infos,
            index,
            shared: false,
        }
    }

    /// One queue of `capacity` items per branch (`overflow` chooses the
    /// batch size), each receiver halting its branch's run. A full queue
    /// lets the fan-out go on as soon as it has room for an item
    /// ([`Resume::AnyRoom`]): branches may be read by one consumer that
    /// waits on one branch while another holds items.
    pub(crate) fn queues<T>(
        &self,
        capacities: impl IntoIterator<Item = (usize, Overflow)>,
    ) -> (Vec<Sender<T>>, Vec<Receiver<T>>) {
        capacities
            .into_iter()
            .zip(&self.contexts)
            .map(|((capacity, overflow), ctx)| {
                let batch = queue_batch(capacity, overflow);
                queue::bounded_with(capacity, batch, Resume::AnyRoom, ctx.clone())
            })
            .unzip()
    }

    /// How the fan-out task ends its queues (see [`Ending::finish`]).
    pub(crate) fn ending(&self) -> Ending {
        Ending {
            root: self.root.clone(),
            name: self.name.clone(),
        }
    }

    /// Builds the branch pipelines around `receivers` (one per branch), all
    /// sharing `task`, the fan-out task (which ends the queues with
    /// [`ending`](Self::ending)).
    pub(crate) fn into_branches<T, F>(
        self,
        receivers: Vec<Receiver<T>>,
        task: F,
    ) -> Vec<Pipeline<Branch<T>>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Split {
            contexts,
            infos,
            index,
            shared,
            ..
        } = self;
        let task: Shared<BoxFuture<'static, ()>> = task.boxed().shared();
        receivers
            .into_iter()
            .zip(contexts.into_iter().zip(infos))
            .map(|(rx, (ctx, info))| {
                let core = Core::branch(ctx, index, task.clone().boxed());
                Pipeline::from_batched(Branch::new(rx, info, shared), core, Branch::poll_batch)
            })
            .collect()
    }
}

/// Ends a fan-out's queues once its loop is over.
pub(crate) struct Ending {
    root: Arc<RunContext>,
    name: String,
}

impl Ending {
    /// Ends every queue after the fan-out's loop `ran` (caught with
    /// `catch_unwind`): `Completed` when it returned and the run has not
    /// failed, else `Failed`. A panic (in upstream user code, or in a
    /// routing function) is recorded before any queue ends, so every
    /// branch's run fails with it.
    pub(crate) fn finish<T>(self, ran: std::thread::Result<()>, senders: Vec<Sender<T>>) {
        let end = match ran {
            Ok(()) if !self.root.has_failed() => End::Completed,
            Ok(()) => End::Failed,
            Err(payload) => {
                self.root.fail_with_panic(&*payload, &self.name);
                End::Failed
            }
        };
        senders.into_iter().for_each(|tx| tx.finish(end));
    }
}

/// The check shared by the fan-out methods `.{method}(branches, capacity{rest})`:
/// `rest` spells the method's other arguments for the suggested call.
#[track_caller]
pub(crate) fn check_fan(method: &str, branches: usize, capacity: usize, rest: &str) {
    use crate::rejection::{or_typical, reject};
    if branches > 0 && capacity > 0 {
        return;
    }
    let call = format!(
        ".{method}({}, {}{rest})",
        or_typical(branches, 2),
        or_typical(capacity, 64)
    );
    if branches == 0 {
        reject(format_args!(
            "{method} needs at least 1 branch, got 0; \
             pass the number of branch pipelines to return, e.g. {call}"
        ));
    }
    reject(format_args!(
        "{method} capacity must be at least 1, got 0; \
         pass the number of items each branch's queue may hold, e.g. {call}"
    ));
}
