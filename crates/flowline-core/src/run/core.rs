//! [`Core`]: what a pipeline's run needs besides its stream — the run's
//! context, the last stage, and the tasks its stages spawned.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt as _, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt as _};
use pin_project_lite::pin_project;

use super::{Flag, LocalTasks, RunContext, StageInfo, StageKind};
use crate::runtime::{local_task, JoinHandle, Runtime, RuntimeExt as _};
use crate::time::InRuntime;

pin_project! {
    /// A stage task spawned for its run: polled with the run's runtime
    /// current (`time::current_runtime`) and the run current for the
    /// blocking calls it awaits (an `unblock` call counts among the run's
    /// calls, so a run that stops waits for it).
    struct InRun<F> {
        #[pin]
        task: InRuntime<F>,
        // Moved into the thread's current run for each poll (`scope_in`).
        ctx: Option<Arc<RunContext>>,
    }
}

impl<F> InRun<F> {
    fn new(task: F, rt: &Arc<dyn Runtime>, ctx: &Arc<RunContext>) -> Self {
        InRun {
            task: InRuntime::new(task, rt.clone()),
            ctx: Some(ctx.clone()),
        }
    }
}

impl<F: Future> Future for InRun<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let task = this.task;
        super::scope::scope_in(this.ctx, || task.poll(cx))
    }
}

/// The tasks a pipeline's boundaries need, and how they are being run.
enum Tasks {
    /// Not started yet: started on the first poll.
    Idle(Vec<BoxFuture<'static, ()>>),
    /// No runtime: polled by the pipeline itself, inside its own poll.
    Inline(FuturesUnordered<BoxFuture<'static, ()>>),
    /// Spawned on a runtime; dropping the handles cancels the tasks.
    Spawned(Vec<JoinHandle<()>>),
}

pub(crate) struct Core {
    pub(crate) ctx: Arc<RunContext>,
    /// Index of the last stage: the input of the next one.
    last: usize,
    tasks: Tasks,
    /// Stage tasks that are not `Send` (the `_local` stages): before the
    /// start and when polled inline. Started ones on a runtime that spawned them
    /// locally are in `tasks` as handles.
    local: Option<LocalTasks>,
    /// Whether [`poll_tasks`](Self::poll_tasks) has work: tasks to start, or
    /// inline tasks to poll. Kept as a flag because it is read per item.
    pub(crate) needs_drive: bool,
    /// Fired when the run's stream has ended: stage tasks still running then
    /// feed nobody (a `zip` that stopped reading one side, say), so they stop
    /// instead of waiting for room that will never come.
    ended: Arc<Flag>,
    /// End signals of pipelines absorbed into this one (fan-in).
    linked_ends: Vec<Arc<Flag>>,
    /// The consumer stage's name, if the user gave one.
    pub(crate) consumer_name: Option<String>,
}

impl Core {
    pub(crate) fn new(source_name: &str) -> (Self, Arc<StageInfo>) {
        Self::with_source_kind(source_name, StageKind::Source)
    }

    /// Like [`new`](Self::new), for a first stage of another kind (a bridge).
    pub(crate) fn with_source_kind(source_name: &str, kind: StageKind) -> (Self, Arc<StageInfo>) {
        let ctx = Arc::new(RunContext::default());
        let (last, info) = ctx.add_stage(source_name, kind, Vec::new());
        let core = Core {
            ctx,
            last,
            tasks: Tasks::Idle(Vec::new()),
            local: None,
            needs_drive: false,
            ended: Arc::default(),
            linked_ends: Vec::new(),
            consumer_name: None,
        };
        (core, info)
    }

    pub(crate) fn add_stage(&mut self, prefix: &str, kind: StageKind) -> Arc<StageInfo> {
        let (index, info) = self.ctx.add_stage(prefix, kind, vec![self.last]);
        self.last = index;
        info
    }

    /// The core of one branch of a fan-out: its own context (see
    /// [`RunContext::branch_of`]) whose last stage is `last`, and `task`, the
    /// shared driver of the upstream.
    pub(crate) fn branch(ctx: Arc<RunContext>, last: usize, task: BoxFuture<'static, ()>) -> Self {
        Core {
            ctx,
            last,
            tasks: Tasks::Idle(vec![task]),
            local: None,
            needs_drive: true,
            ended: Arc::default(),
            linked_ends: Vec::new(),
            consumer_name: None,
        }
    }

    /// Registers the consumer stage, under the name given with
    /// [`Pipeline::consumer_named`] if any.
    pub(crate) fn add_consumer(&mut self) -> Arc<StageInfo> {
        let info = self.add_stage("consumer", StageKind::Consumer);
        if let Some(name) = self.consumer_name.take() {
            info.rename(name);
        }
        info
    }

    /// Index of the last stage.
    pub(crate) fn last_index(&self) -> usize {
        self.last
    }

    /// Adds a stage fed by the last stage and by the stages `others`
    /// (indices in this pipeline, as returned by [`absorb`](Self::absorb)).
    pub(crate) fn add_joining_stage(
        &mut self,
        prefix: &str,
        kind: StageKind,
        others: &[usize],
    ) -> Arc<StageInfo> {
        let mut inputs = vec![self.last];
        inputs.extend_from_slice(others);
        let (index, info) = self.ctx.add_stage(prefix, kind, inputs);
        self.last = index;
        info
    }

    /// Takes over `other` (fan-in): its stages join this pipeline's stage list,
    /// its context forwards errors and runtime choice to this one's, and its
    /// tasks become this pipeline's. Returns the index `other`'s last stage has
    /// here.
    pub(crate) fn absorb(&mut self, other: Core) -> usize {
        let map = self.ctx.absorb(&other.ctx);
        let last = map(other.last);
        // `other`'s tasks keep their own end signal (its stage tasks are
        // wrapped in it, its lasting tasks are not); ending this run fires it.
        let mut other = other;
        self.linked_ends.push(other.ended.clone());
        self.linked_ends.extend(mem::take(&mut other.linked_ends));
        match mem::replace(&mut other.tasks, Tasks::Idle(Vec::new())) {
            Tasks::Idle(tasks) => tasks.into_iter().for_each(|t| self.add_lasting_task(t)),
            Tasks::Inline(mut tasks) => {
                self.add_lasting_task(Box::pin(
                    async move { while tasks.next().await.is_some() {} },
                ))
            }
            Tasks::Spawned(handles) => self.add_lasting_task(Box::pin(async move {
                for handle in handles {
                    let _ = handle.await;
                }
            })),
        }
        // Already wrapped in `other`'s end signal, like its stage tasks.
        if let Some(local) = other.local.take() {
            for task in local.take_all() {
                self.push_local(task);
            }
        }
        last
    }

    pub(crate) fn last_stage(&self) -> Arc<StageInfo> {
        self.ctx.stage(self.last)
    }

    /// Adds a stage task: it runs until it finishes or the run's stream has
    /// ended, whichever comes first (see [`end_tasks`](Self::end_tasks)).
    pub(crate) fn add_task(&mut self, task: BoxFuture<'static, ()>) {
        let ended = self.ended.clone();
        self.add_lasting_task(Box::pin(async move {
            let ended = ended.wait();
            futures::pin_mut!(ended);
            // The end signal first: a task the run has ended is not polled
            // again (it would feed nobody, and could see a queue another
            // ended task left unfinished).
            futures::future::select(ended, task).await;
        }));
    }

    /// Adds a stage task that is not `Send` (see [`add_task`](Self::add_task)),
    /// for the `_local` stages.
    /// It runs on the thread that polls the run: spawned on the runtime's
    /// local executor if it has one there
    /// ([`Runtime::spawn_local_boxed`]), else polled inline by the run.
    pub(crate) fn add_local_task(&mut self, task: LocalBoxFuture<'static, ()>) {
        let ended = self.ended.clone();
        self.push_local(
            async move {
                let ended = ended.wait();
                futures::pin_mut!(ended);
                futures::future::select(ended, task).await;
            }
            .boxed_local(),
        );
    }

    fn push_local(&mut self, task: LocalBoxFuture<'static, ()>) {
        let local = self.local.get_or_insert_with(LocalTasks::new);
        self.needs_drive = true;
        match (&mut self.tasks, self.ctx.executor()) {
            // Started on a runtime already: this one starts now.
            (Tasks::Spawned(handles), Some(rt)) => {
                Self::start_local(local, vec![task], &rt, &self.ctx, handles)
            }
            _ => local.push(task),
        }
    }

    /// Spawns `tasks` on `rt`'s local executor, if it has one on this
    /// thread; those it refuses are parked in `local`, to be polled inline.
    fn start_local(
        local: &LocalTasks,
        tasks: Vec<LocalBoxFuture<'static, ()>>,
        rt: &Arc<dyn Runtime>,
        ctx: &Arc<RunContext>,
        handles: &mut Vec<JoinHandle<()>>,
    ) {
        for task in tasks {
            let (task, handle) = local_task(InRun::new(task, rt, ctx));
            if let Err(task) = rt.spawn_local_boxed(task) {
                local.push(task);
            }
            // Resolved by the task, wherever it runs.
            handles.push(handle);
        }
    }

    /// Tells the stage tasks that the run's stream has ended: those still
    /// running stop at their next poll; lasting tasks go on.
    pub(crate) fn end_tasks(&self) {
        self.ended.fire();
        self.linked_ends.iter().for_each(|end| {
            end.fire();
        });
    }

    /// Adds a task that runs to completion even after the run's stream has
    /// ended (the progress reporter, which reports once more at the end).
    pub(crate) fn add_lasting_task(&mut self, task: BoxFuture<'static, ()>) {
        self.needs_drive |= !matches!(self.tasks, Tasks::Spawned(_));
        match &mut self.tasks {
            Tasks::Idle(tasks) => tasks.push(task),
            Tasks::Inline(tasks) => tasks.push(task),
            Tasks::Spawned(handles) => match self.ctx.executor() {
                Some(rt) => handles.push(rt.spawn(InRun::new(task, &rt, &self.ctx))),
                None => unreachable!("spawned tasks imply a runtime"),
            },
        }
    }

    /// Starts the tasks if needed and, without a runtime, polls them.
    #[inline]
    pub(crate) fn poll_tasks(&mut self, cx: &mut Context<'_>) {
        if self.needs_drive {
            self.drive(cx);
        }
    }

    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) {
        if let Tasks::Idle(tasks) = &mut self.tasks {
            let tasks = mem::take(tasks);
            self.tasks = match self.ctx.executor() {
                Some(rt) => Tasks::Spawned(
                    tasks
                        .into_iter()
                        .map(|t| rt.spawn(InRun::new(t, &rt, &self.ctx)))
                        .collect(),
                ),
                None => Tasks::Inline(tasks.into_iter().collect()),
            };
            if let (Tasks::Spawned(handles), Some(rt), Some(local)) =
                (&mut self.tasks, self.ctx.executor(), &self.local)
            {
                Self::start_local(local, local.take_all(), &rt, &self.ctx, handles);
            }
            // Spawned tasks run by themselves: nothing more to do per poll.
            self.needs_drive = matches!(self.tasks, Tasks::Inline(_))
                || self.local.as_ref().is_some_and(|local| !local.is_empty());
        }
        if let Tasks::Inline(tasks) = &mut self.tasks {
            while let Poll::Ready(Some(())) = tasks.poll_next_unpin(cx) {}
        }
        if let Some(local) = &self.local {
            let _ = local.poll(cx);
        }
    }

    /// Cancels every task: inline ones are dropped now, spawned ones when
    /// their executor next polls them ([`poll_finish`](Self::poll_finish)
    /// then waits for that).
    pub(crate) fn cancel_tasks(&mut self) {
        match &mut self.tasks {
            Tasks::Idle(tasks) => tasks.clear(),
            Tasks::Inline(tasks) => tasks.clear(),
            Tasks::Spawned(handles) => handles.iter().for_each(JoinHandle::abort),
        }
        if let Some(local) = &self.local {
            local.clear();
        }
    }

    /// Waits until every task has finished.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Local tasks polled inline resolve handles in `tasks`: poll them first.
        let local = match &self.local {
            Some(local) => local.poll(cx),
            None => Poll::Ready(()),
        };
        futures::ready!(self.poll_finish_tasks(cx));
        local
    }

    fn poll_finish_tasks(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.tasks {
            Tasks::Idle(_) => Poll::Ready(()),
            Tasks::Inline(tasks) => {
                while futures::ready!(tasks.poll_next_unpin(cx)).is_some() {}
                Poll::Ready(())
            }
            Tasks::Spawned(handles) => {
                while let Some(handle) = handles.last_mut() {
                    // A task's own failures are recorded in the context; a join
                    // error here can only be cancellation by runtime shutdown.
                    let _ = futures::ready!(Pin::new(handle).poll(cx));
                    handles.pop();
                }
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Core {
    /// A core dropped with spawned tasks still running (a fan-out's upstream,
    /// dropped inside the fan-out task) cancels them and leaves their handles
    /// to its run, which waits for them before it returns.
    fn drop(&mut self) {
        if let Tasks::Spawned(handles) = &mut self.tasks {
            let running: Vec<_> = handles.drain(..).filter(|h| !h.is_finished()).collect();
            if !running.is_empty() {
                running.iter().for_each(JoinHandle::abort);
                self.ctx.adopt_orphans(running);
            }
        }
    }
}
