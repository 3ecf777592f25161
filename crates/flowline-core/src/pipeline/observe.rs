//! Watching a pipeline: its live counts ([`Monitor`]), progress callbacks
//! and its stage graph ([`Topology`]).

use std::time::Duration;

use futures::future::{self, Either};
use futures::{FutureExt as _, Stream};

use super::Pipeline;
use crate::report::{report_progress, Monitor, Snapshot, Topology};

impl<S: Stream> Pipeline<S> {
    /// A [`Monitor`] of this pipeline's run, to read counts while it runs or
    /// after it ended (even with an error).
    pub fn monitor(&self) -> Monitor {
        Monitor::new(self.core.ctx.clone())
    }

    /// Calls `f` with a [`Snapshot`] every `interval` while the pipeline
    /// runs, and once more with the final counts when the run completes.
    ///
    /// `f` runs in a task of the pipeline (spawned on its runtime, or polled
    /// inline without one), on the runtime's timer. Keep it quick.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let last = Arc::new(Mutex::new(None));
    /// let seen = last.clone();
    /// futures::executor::block_on(
    ///     producer::iter(0..50u32)
    ///         .on_progress(Duration::from_millis(100), move |s| {
    ///             *seen.lock().unwrap() = Some(s.stages[0].stage.items_out)
    ///         })
    ///         .run_count(),
    /// )
    /// .unwrap();
    /// assert_eq!(*last.lock().unwrap(), Some(50));
    /// ```
    #[track_caller]
    pub fn on_progress<F>(mut self, interval: Duration, mut f: F) -> Self
    where
        F: FnMut(&Snapshot) + Send + 'static,
    {
        if interval.is_zero() {
            crate::rejection::reject(format_args!(
                "on_progress interval must be more than zero; \
                 pass how often to report, e.g. .on_progress(Duration::from_secs(1), f)"
            ));
        }
        let monitor = self.monitor();
        let task = async move {
            let ctx = monitor.ctx().clone();
            let rt = ctx.runtime_or_free();
            let mut next = rt.now() + interval;
            loop {
                let finished = ctx.lifecycle.finished();
                let tick = rt.sleep_until(next);
                let finished = std::pin::pin!(finished);
                match future::select(finished, tick).await {
                    Either::Left(_) => break,
                    Either::Right(_) => {
                        if !report_progress(&mut f, &monitor) {
                            return;
                        }
                        next += interval;
                    }
                }
            }
            report_progress(&mut f, &monitor);
        }
        .boxed();
        self.core.add_lasting_task(task);
        self
    }
}

impl<S: Stream> Pipeline<S> {
    /// The pipeline's topology so far (the consumer is added by the terminal
    /// method, so it is not part of it), for export as Mermaid or DOT.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, StageKind};
    ///
    /// let topology = producer::iter(0..3).map(|x| x * 2).describe();
    /// let kinds: Vec<StageKind> = topology.stages().map(|(_, kind, _)| kind).collect();
    /// assert_eq!(kinds, [StageKind::Source, StageKind::Fused]);
    /// ```
    pub fn describe(&self) -> Topology {
        Topology::new(self.core.ctx.topology())
    }
}
