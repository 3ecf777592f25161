use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::lifecycle::Lifecycle;
use super::{PipelineError, RunReport, StageInfo, StageKind, StageReport};
use crate::runtime::{panic_message, Runtime, RuntimeFree};

/// State shared by every stage and task of one pipeline: the stage list, the
/// first error, and the runtime the pipeline runs on.
#[derive(Debug, Default)]
pub(crate) struct RunContext {
    stages: Mutex<Vec<Arc<StageInfo>>>,
    error: Mutex<Option<PipelineError>>,
    runtime: Mutex<Option<Arc<dyn Runtime>>>,
    /// Stop/finish signals, shared with the sources and the run's handle.
    pub(crate) lifecycle: Arc<Lifecycle>,
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
        let mut stages = lock(&self.stages);
        let index = stages.len();
        let info = Arc::new(StageInfo::new(format!("{prefix}#{index}"), kind, inputs));
        stages.push(info.clone());
        (index, info)
    }

    pub(crate) fn stage(&self, index: usize) -> Arc<StageInfo> {
        lock(&self.stages)[index].clone()
    }

    /// Moves `other`'s stages into this context (for fan-in), returning the
    /// offset added to their indices.
    #[allow(dead_code)]
    pub(crate) fn absorb(&self, other: &RunContext) -> usize {
        self.lifecycle.adopt(other.lifecycle.clone());
        let mut mine = lock(&self.stages);
        let offset = mine.len();
        mine.extend(lock(&other.stages).drain(..));
        offset
    }

    pub(crate) fn set_runtime(&self, runtime: Option<Arc<dyn Runtime>>) {
        *lock(&self.runtime) = runtime;
    }

    pub(crate) fn runtime(&self) -> Option<Arc<dyn Runtime>> {
        lock(&self.runtime).clone()
    }

    /// The runtime for timers and blocking work: the chosen one, or
    /// [`RuntimeFree`] when the pipeline runs without one.
    #[allow(dead_code)]
    pub(crate) fn runtime_or_free(&self) -> Arc<dyn Runtime> {
        self.runtime().unwrap_or_else(|| Arc::new(RuntimeFree))
    }

    /// Records `error` unless an earlier one is already recorded.
    pub(crate) fn fail(&self, error: PipelineError) {
        lock(&self.error).get_or_insert(error);
    }

    /// Records a caught panic, naming the stage that marked itself, or
    /// `fallback` when no stage did (the panic came from code no stage guards,
    /// such as a user `Sink`). The item the marked stage was working on is
    /// counted as failed there (a source that panics had no item yet).
    pub(crate) fn fail_with_panic(&self, payload: &(dyn Any + Send), fallback: &str) {
        let stage = lock(&self.stages)
            .iter()
            .find(|s| s.has_panicked())
            .map_or_else(
                || fallback.to_string(),
                |s| {
                    if s.kind != StageKind::Source && !s.inputs.is_empty() {
                        s.failed.add(1);
                    }
                    s.name()
                },
            );
        self.fail(PipelineError::Panicked {
            stage,
            message: panic_message(payload),
        });
    }

    /// Each stage's name, kind and inputs, in order.
    pub(crate) fn topology(&self) -> Vec<(String, StageKind, Vec<usize>)> {
        lock(&self.stages)
            .iter()
            .map(|s| (s.name(), s.kind, s.inputs.clone()))
            .collect()
    }

    pub(crate) fn take_error(&self) -> Option<PipelineError> {
        lock(&self.error).take()
    }

    pub(crate) fn has_failed(&self) -> bool {
        lock(&self.error).is_some()
    }

    pub(crate) fn report(&self, elapsed: Duration) -> RunReport {
        let stages = lock(&self.stages);
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
            let skipped = s.skipped.get();
            let dead_lettered = s.dead_lettered.get();
            let failed = s.failed.get();
            let lost = filtered + dropped + skipped + dead_lettered + failed;
            let items_in = if s.inputs.is_empty() {
                counted_out + lost
            } else {
                s.inputs
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
                let derived = items_in.saturating_sub(removed);
                removed += derived;
                filtered + derived
            } else {
                filtered
            };
            reports.push(StageReport {
                name: s.name(),
                kind: s.kind,
                items_in,
                items_out: out,
                filtered,
                dropped,
                retried: s.retried.get(),
                skipped,
                dead_lettered,
                failed,
                in_flight: items_in.saturating_sub(removed),
                busy: Duration::from_nanos(s.busy_nanos.get()),
            });
        }
        RunReport {
            stages: reports,
            elapsed,
        }
    }
}
