//! With the `tracing` feature: one event per stage when a run ends, inside
//! the stage's span, so every stage shows up in the trace with its counts.

use super::{PipelineError, RunContext};

/// Emits the run's final counts: an `info` event per stage (in its
/// `flowline.stage` span), and an `error` event if the run failed.
pub(crate) fn run_finished(
    ctx: &RunContext,
    elapsed: std::time::Duration,
    error: Option<&PipelineError>,
) {
    let report = ctx.report(elapsed);
    for (index, s) in report.stages.iter().enumerate() {
        let info = ctx.stage(index);
        tracing::info!(
            parent: info.span(),
            stage = %s.name,
            items_in = s.items_in,
            items_out = s.items_out,
            filtered = s.filtered,
            dropped = s.dropped,
            grouped = s.grouped,
            discarded = s.discarded,
            retried = s.retried,
            skipped = s.skipped,
            dead_lettered = s.dead_lettered,
            failed = s.failed,
            in_flight = s.in_flight,
            busy = ?s.busy,
            counters = ?s.counters,
            "flowline: stage finished"
        );
    }
    if let Some(error) = error {
        tracing::error!(stage = %error.stage(), error = %error, "flowline: run failed");
    }
}
