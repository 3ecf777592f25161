//! The task a fan-out's branches share: it owns the upstream pipeline.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;

use async_channel::Receiver;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream};

use super::Branch;
use crate::run::{Core, RunContext, StageInfo, StageKind};
use crate::stage::overflow::yield_now;
use crate::Pipeline;

/// The upstream pipeline, owned by the fan-out task. Its own tasks (earlier
/// boundaries) are polled whenever the fan-out task waits, as a run does.
pub(crate) struct Upstream<S> {
    stream: Pin<Box<S>>,
    core: Core,
    budget: u32,
    yield_every: u32,
}

impl<S: Stream> Upstream<S> {
    /// Owns `pipeline`, yielding every `yield_every` items (see
    /// [`yield_every`](crate::stage::overflow::yield_every)).
    pub(crate) fn new(pipeline: Pipeline<S>, yield_every: u32) -> Self {
        let Pipeline { stream, core } = pipeline;
        Upstream {
            stream: Box::pin(stream),
            core,
            budget: yield_every,
            yield_every,
        }
    }

    /// The next upstream item, yielding to the executor now and then so an
    /// always-ready upstream with never-waiting queues cannot hog the thread.
    pub(crate) async fn next(&mut self) -> Option<S::Item> {
        self.budget -= 1;
        if self.budget == 0 {
            self.budget = self.yield_every;
            yield_now().await;
        }
        let Upstream { stream, core, .. } = self;
        poll_fn(|cx| {
            core.poll_tasks(cx);
            stream.as_mut().poll_next(cx)
        })
        .await
    }

    /// Awaits `fut` (a send into a full queue) while the upstream's tasks
    /// keep running.
    pub(crate) async fn wait<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let core = &mut self.core;
        poll_fn(|cx| {
            core.poll_tasks(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// After the last item: waits for the upstream's tasks to finish.
    pub(crate) async fn finish(mut self) {
        poll_fn(|cx| self.core.poll_finish(cx)).await
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
    /// Whether the branches read one shared queue (`balance`).
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

    /// Builds the branch pipelines around `receivers` (one per branch), all
    /// sharing `task`, the fan-out task. A panic in the task (in upstream user
    /// code, or in a routing function) fails every branch's run.
    pub(crate) fn into_branches<T, F>(
        self,
        receivers: Vec<Receiver<T>>,
        task: F,
    ) -> Vec<Pipeline<Branch<T>>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Split {
            root,
            name,
            contexts,
            infos,
            index,
            shared,
        } = self;
        let task: Shared<BoxFuture<'static, ()>> = async move {
            if let Err(payload) = AssertUnwindSafe(task).catch_unwind().await {
                root.fail_with_panic(&*payload, &name);
            }
        }
        .boxed()
        .shared();
        receivers
            .into_iter()
            .zip(contexts.into_iter().zip(infos))
            .map(|(rx, (ctx, info))| {
                let core = Core::branch(ctx, index, task.clone().boxed());
                Pipeline::from_parts(Branch::new(rx, info, shared), core)
            })
            .collect()
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
