use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::lifecycle::Lifecycle;
use super::signal::Calls;
use super::{PipelineError, StageInfo, StageKind};
use crate::report::RunReport;
use crate::report::StageReport;
use crate::runtime::{default_runtime, panic_message, JoinHandle, Runtime, RuntimeFree};

/// State shared by every stage and task of one pipeline: the stage list, the
/// first error, and the runtime the pipeline runs on.
///
/// Fan-in and fan-out link contexts:
/// - a context absorbed by another pipeline (fan-in, [`absorb`](Self::absorb))
///   forwards everything to it: its stages moved there, and the adapters and
///   tasks still holding it record errors and read the runtime there;
/// - a fan-out branch's context ([`branch_of`](Self::branch_of)) starts with
///   the upstream's stages and keeps a link to the upstream's context: the
///   branch's run sees upstream errors, and choosing the branch's runtime also
///   chooses the upstream's.
#[derive(Debug, Default)]
pub(crate) struct RunContext {
    stages: Mutex<Vec<Arc<StageInfo>>>,
    error: Mutex<Option<PipelineError>>,
    runtime: Mutex<Choice>,
    /// Stop/finish signals, shared with the sources and the run's handle.
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Set once when this context's pipeline is absorbed by another.
    forward: OnceLock<Arc<RunContext>>,
    /// Contexts of the fan-outs this pipeline's items come from.
    upstreams: Mutex<Vec<Arc<RunContext>>>,
    /// Blocking calls of this run still in progress: the run waits for
    /// them on every path, since a blocking call cannot be cancelled.
    pub(crate) calls: Arc<Calls>,
    /// Appended to generated stage names: `.<branch>` in a fan-out branch
    /// (nested: `.1.0`), so names stay unique across a fan-out's branches.
    suffix: String,
    /// Set when the run completed (its stream ended and nothing failed).
    completed: AtomicBool,
    /// Set by a stage that stops reading an input before it ends (`zip`):
    /// what that input's stages still hold when the run completes was left
    /// out by design.
    cuts_inputs: AtomicBool,
    /// Cancelled tasks of cores dropped before the run ended (a fan-out's
    /// upstream): the run waits for them.
    orphans: Mutex<Vec<JoinHandle<()>>>,
    /// Call counters of pipelines absorbed into this one (fan-in).
    linked_calls: Mutex<Vec<Arc<Calls>>>,
}

/// The runtime a pipeline was given.
#[derive(Debug, Clone, Default)]
enum Choice {
    /// None named: [`default_runtime`] when the run starts.
    #[default]
    Default,
    /// Named with `on` / `on_runtime` (`None`: runtime-free).
    Chosen(Option<Arc<dyn Runtime>>),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunContext {
    /// Registers a stage named `<prefix>#<index>` and returns its index and record.
    pub(crate) fn add_stage(
        &self,
        prefix: &str,
        kind: StageKind,
        inputs: Vec<usize>,
    ) -> (usize, Arc<StageInfo>) {
        if let Some(to) = self.forward.get() {
            return to.add_stage(prefix, kind, inputs);
        }
        let mut stages = lock(&self.stages);
        let index = stages.len();
        let name = format!("{prefix}#{index}{}", self.suffix);
        let info = Arc::new(StageInfo::new(name, kind, inputs));
        stages.push(info.clone());
        (index, info)
    }

    pub(crate) fn stage(&self, index: usize) -> Arc<StageInfo> {
        if let Some(to) = self.forward.get() {
            return to.stage(index);
        }
        lock(&self.stages)[index].clone()
    }

    /// A context for one branch of a fan-out whose upstream runs in `upstream`:
    /// it starts with the upstream's stages (same records, same indices), its
    /// runtime and a link to it.
    pub(crate) fn branch_of(upstream: &Arc<RunContext>, branch: usize) -> Arc<RunContext> {
        let upstream = upstream.resolve();
        let stages = lock(&upstream.stages).clone();
        let branch = Arc::new(RunContext {
            stages: Mutex::new(stages),
            runtime: Mutex::new(lock(&upstream.runtime).clone()),
            upstreams: Mutex::new(vec![upstream.clone()]),
            // The branch's run waits for the shared upstream's blocking calls.
            calls: upstream.calls.clone(),
            suffix: format!("{}.{branch}", upstream.suffix),
            cuts_inputs: upstream.cuts_inputs.load(SeqCst).into(),
            ..RunContext::default()
        });
        upstream.lifecycle.feed(&branch.lifecycle);
        // Shutting down a branch's run stops the shared upstream's sources:
        // every branch then drains what was made and completes.
        branch.lifecycle.adopt(upstream.lifecycle.clone());
        branch
    }

    /// The context this one forwards to (itself when not absorbed).
    fn resolve(self: &Arc<Self>) -> Arc<RunContext> {
        let mut ctx = self.clone();
        while let Some(to) = ctx.forward.get().cloned() {
            ctx = to;
        }
        ctx
    }

    /// Moves `other`'s stages into this context (fan-in) and makes `other`
    /// forward to this one. Returns how `other`'s stage indices map to this
    /// context's.
    ///
    /// Stages both lists start with (the shared upstream of two branches of
    /// one fan-out) are kept once; the others are appended and renumbered.
    pub(crate) fn absorb(
        self: &Arc<Self>,
        other: &Arc<RunContext>,
    ) -> impl Fn(usize) -> usize + use<> {
        let (this, other) = (self.resolve(), other.resolve());
        if Arc::ptr_eq(&this, &other) {
            crate::rejection::reject(format_args!("a pipeline cannot be joined with itself"));
        }
        // Shutting down the joined pipeline stops the absorbed sources too.
        this.lifecycle.adopt(other.lifecycle.clone());
        let theirs = std::mem::take(&mut *lock(&other.stages));
        let mut mine = lock(&this.stages);
        let shared = mine
            .iter()
            .zip(&theirs)
            .take_while(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        let offset = mine.len();
        let map = move |i: usize| if i < shared { i } else { i - shared + offset };
        for (i, stage) in theirs.into_iter().enumerate().skip(shared) {
            stage.renumber(i, map(i), map);
            mine.push(stage);
        }
        drop(mine);
        if other.cuts_inputs.load(SeqCst) {
            this.set_cuts_inputs();
        }
        let mut calls = std::mem::take(&mut *lock(&other.linked_calls));
        calls.push(other.calls.clone());
        lock(&this.linked_calls).extend(calls);
        let upstreams = std::mem::take(&mut *lock(&other.upstreams));
        lock(&this.upstreams).extend(upstreams);
        if let Some(error) = lock(&other.error).take() {
            this.fail(error);
        }
        let theirs = lock(&other.runtime).clone();
        if matches!(*lock(&this.runtime), Choice::Default) {
            if let Choice::Chosen(runtime) = theirs {
                this.set_runtime(runtime);
            }
        }
        // Set last: until here `other` still answers for itself.
        let _ = other.forward.set(this);
        map
    }

    /// Sets the runtime of this pipeline and of the fan-outs feeding it.
    pub(crate) fn set_runtime(&self, runtime: Option<Arc<dyn Runtime>>) {
        if let Some(to) = self.forward.get() {
            return to.set_runtime(runtime);
        }
        for upstream in lock(&self.upstreams).iter() {
            upstream.set_runtime(runtime.clone());
        }
        *lock(&self.runtime) = Choice::Chosen(runtime);
    }

    /// The runtime this pipeline runs on (`None`: runtime-free). If none
    /// was named, this resolves [`default_runtime`] now, once, for this
    /// pipeline and the fan-outs feeding it: call it when the run starts,
    /// not while building.
    pub(crate) fn runtime(&self) -> Option<Arc<dyn Runtime>> {
        if let Some(to) = self.forward.get() {
            return to.runtime();
        }
        let choice = lock(&self.runtime).clone();
        match choice {
            Choice::Chosen(runtime) => runtime,
            Choice::Default => {
                let runtime = default_runtime();
                self.set_runtime(runtime.clone());
                runtime
            }
        }
    }

    /// The runtime's name for `Debug` output, without resolving a default.
    pub(crate) fn runtime_name(&self) -> &'static str {
        if let Some(to) = self.forward.get() {
            return to.runtime_name();
        }
        match &*lock(&self.runtime) {
            Choice::Default => "default",
            Choice::Chosen(None) => "none",
            Choice::Chosen(Some(rt)) => rt.name(),
        }
    }

    /// The runtime that runs this pipeline's tasks, if it has an executor:
    /// `None` when the pipeline polls its tasks itself (runtime-free).
    pub(crate) fn executor(&self) -> Option<Arc<dyn Runtime>> {
        self.runtime().filter(|rt| rt.has_executor())
    }

    /// The runtime for timers and blocking work: the chosen one, or
    /// [`RuntimeFree`] when the pipeline runs without one.
    pub(crate) fn runtime_or_free(&self) -> Arc<dyn Runtime> {
        self.runtime().unwrap_or_else(|| Arc::new(RuntimeFree))
    }

    /// Marks the run completed: its stream ended and nothing failed.
    pub(crate) fn mark_completed(&self) {
        if let Some(to) = self.forward.get() {
            return to.mark_completed();
        }
        self.completed.store(true, SeqCst);
    }

    /// Whether the run completed: its stream ended while nothing had failed
    /// (what happens while its leftover tasks are torn down does not change
    /// that: the consumer is closed already).
    pub(crate) fn is_completed(&self) -> bool {
        if let Some(to) = self.forward.get() {
            return to.is_completed();
        }
        self.completed.load(SeqCst)
    }

    /// Notes that a stage of this run may stop reading an input before it
    /// ends (see [`report`](Self::report)).
    pub(crate) fn set_cuts_inputs(&self) {
        if let Some(to) = self.forward.get() {
            return to.set_cuts_inputs();
        }
        self.cuts_inputs.store(true, SeqCst);
    }

    /// Takes cancelled tasks the run must wait for.
    pub(crate) fn adopt_orphans(&self, tasks: Vec<JoinHandle<()>>) {
        if let Some(to) = self.forward.get() {
            return to.adopt_orphans(tasks);
        }
        lock(&self.orphans).extend(tasks);
    }

    /// Resolves once every cancelled task of this run, and of the fan-outs
    /// feeding it, is gone.
    pub(crate) async fn orphans_gone(&self) {
        if let Some(to) = self.forward.get() {
            return Box::pin(to.orphans_gone()).await;
        }
        loop {
            let Some(task) = lock(&self.orphans).pop() else {
                break;
            };
            let _ = task.await;
        }
        let upstreams = lock(&self.upstreams).clone();
        for upstream in upstreams {
            Box::pin(upstream.orphans_gone()).await;
        }
    }

    /// Resolves once no blocking call of this run (or of a pipeline joined
    /// into it) is in progress.
    pub(crate) async fn calls_idle(&self) {
        if let Some(to) = self.forward.get() {
            return Box::pin(to.calls_idle()).await;
        }
        self.calls.idle().await;
        let linked = lock(&self.linked_calls).clone();
        for calls in linked {
            calls.idle().await;
        }
    }

    /// Records `error` unless an earlier one is already recorded, and halts
    /// the run.
    pub(crate) fn fail(&self, error: PipelineError) {
        if let Some(to) = self.forward.get() {
            return to.fail(error);
        }
        lock(&self.error).get_or_insert(error);
        self.lifecycle.halt();
    }

    /// Halts the run: its driver returns at its next poll without closing
    /// the consumer, and every run fed by this one (fan-out branches) halts
    /// too. The error, if any, is recorded separately by [`fail`](Self::fail).
    pub(crate) fn halt(&self) {
        if let Some(to) = self.forward.get() {
            return to.halt();
        }
        self.lifecycle.halt();
    }

    /// Records a caught panic, naming the stage that marked itself, or
    /// `fallback` when no stage did (the panic came from code no stage guards,
    /// such as a user `Sink`). The item the marked stage was working on is
    /// counted as failed there (a source that panics had no item yet).
    pub(crate) fn fail_with_panic(&self, payload: &(dyn Any + Send), fallback: &str) {
        if let Some(to) = self.forward.get() {
            return to.fail_with_panic(payload, fallback);
        }
        let stage = lock(&self.stages)
            .iter()
            .find(|s| s.take_panic_mark())
            .map_or_else(
                || fallback.to_string(),
                |s| {
                    if s.kind != StageKind::Source && !s.inputs().is_empty() {
                        s.failed.add(1);
                    }
                    s.name()
                },
            );
        self.fail(PipelineError::Panicked {
            stage,
            message: panic_message(payload),
            report: Box::default(),
        });
    }

    /// Each stage's name, kind and inputs, in order.
    pub(crate) fn topology(&self) -> Vec<(String, StageKind, Vec<usize>)> {
        if let Some(to) = self.forward.get() {
            return to.topology();
        }
        lock(&self.stages)
            .iter()
            .map(|s| (s.name(), s.kind, s.inputs()))
            .collect()
    }

    /// This run's error, or a copy of the error of a fan-out feeding it (every
    /// branch of a failed fan-out reports the failure).
    pub(crate) fn take_error(&self) -> Option<PipelineError> {
        if let Some(to) = self.forward.get() {
            return to.take_error();
        }
        let own = lock(&self.error).take();
        own.or_else(|| self.upstream_error())
    }

    fn upstream_error(&self) -> Option<PipelineError> {
        let upstreams = lock(&self.upstreams).clone();
        upstreams.iter().find_map(|u| u.copy_error())
    }

    fn copy_error(&self) -> Option<PipelineError> {
        if let Some(to) = self.forward.get() {
            return to.copy_error();
        }
        let own = lock(&self.error).as_ref().map(PipelineError::duplicate);
        own.or_else(|| self.upstream_error())
    }

    pub(crate) fn has_failed(&self) -> bool {
        if let Some(to) = self.forward.get() {
            return to.has_failed();
        }
        lock(&self.error).is_some() || lock(&self.upstreams).iter().any(|u| u.has_failed())
    }

    pub(crate) fn report(&self, elapsed: Duration) -> RunReport {
        if let Some(to) = self.forward.get() {
            return to.report(elapsed);
        }
        let stages = lock(&self.stages);
        // In a completed run whose `zip` stopped reading one side, what that
        // side's stages still held was left out by design: discarded.
        let cut_off = self.completed.load(SeqCst) && self.cuts_inputs.load(SeqCst);
        // Each stage's `out`, counted or (for pass-through stages) derived;
        // inputs always precede the stages they feed.
        let mut outs: Vec<u64> = Vec::with_capacity(stages.len());
        let mut reports = Vec::with_capacity(stages.len());
        for (index, s) in stages.iter().enumerate() {
            // Read this stage's own counters before its inputs' `out`, so
            // a report taken while running never shows more leaving a
            // stage than entering it.
            let counted_out = s.out.get();
            let filtered = s.filtered.get();
            let dropped = s.dropped.get();
            let grouped = s.grouped.get();
            let discarded = s.discarded.get();
            let skipped = s.skipped.get();
            let dead_lettered = s.dead_lettered.get();
            let failed = s.failed.get();
            let lost = grouped + filtered + dropped + discarded + skipped + dead_lettered + failed;
            let inputs = s.inputs();
            let items_in = if s.counts_in() {
                s.routed_in.get()
            } else if inputs.is_empty() {
                counted_out + lost
            } else {
                inputs
                    .iter()
                    .map(|&i| outs.get(i).copied().unwrap_or_else(|| stages[i].out.get()))
                    .sum()
            };
            let out = if s.is_passthrough() && index > 0 {
                items_in.saturating_sub(lost)
            } else {
                counted_out
            };
            outs.push(out);
            let mut removed = out + lost;
            let filtered = if s.is_filtering() {
                let derived = items_in.saturating_sub(removed + s.held.get());
                removed += derived;
                filtered + derived
            } else {
                filtered
            };
            let in_flight = items_in.saturating_sub(removed);
            let (discarded, in_flight) = if cut_off {
                (discarded + in_flight, 0)
            } else {
                (discarded, in_flight)
            };
            reports.push(StageReport {
                name: s.name(),
                kind: s.kind,
                items_in,
                items_out: out,
                filtered,
                dropped,
                grouped,
                discarded,
                retried: s.retried.get(),
                skipped,
                dead_lettered,
                failed,
                in_flight,
                busy: Duration::from_nanos(s.busy_nanos.get()),
                counters: s.counters(),
            });
        }
        RunReport {
            stages: reports,
            elapsed,
        }
    }
}
