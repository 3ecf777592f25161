use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{Pipeline, RunContext, StageInfo, StageKind};
use crate::runtime::{Runtime, Sleep};

pin_project! {
    /// Stream for [`Pipeline::sample`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Sample<S: Stream> {
        #[pin]
        upstream: S,
        period: Duration,
        latest: Option<S::Item>,
        next_tick: Option<Instant>,
        sleep: Option<Sleep>,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: Stream> fmt::Debug for Sample<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("period", &self.period)
            .field("holding", &self.latest.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Sample<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        let rt = this
            .runtime
            .get_or_insert_with(|| this.ctx.runtime_or_free())
            .clone();
        loop {
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    if this.latest.replace(item).is_some() {
                        // Replaced before a tick: left out by design.
                        this.info.discarded.add(1);
                    }
                }
                // Like Kotlin's `sample`: an item newer than the last tick
                // is not emitted when upstream ends.
                Poll::Ready(None) => {
                    if this.latest.take().is_some() {
                        this.info.discarded.add(1);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        loop {
            let tick = *this
                .next_tick
                .get_or_insert_with(|| rt.now() + *this.period);
            let sleep = this.sleep.get_or_insert_with(|| rt.sleep_until(tick));
            futures::ready!(sleep.as_mut().poll(cx));
            *this.sleep = None;
            // Ticks stay on the grid; ticks missed while downstream was busy
            // collapse into one.
            let now = rt.now();
            let mut next = tick + *this.period;
            if next <= now {
                next = now + *this.period;
            }
            *this.next_tick = Some(next);
            if let Some(item) = this.latest.take() {
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// Emits the most recent item once per `period`, skipping periods in
    /// which nothing new arrived; items replaced before a tick are skipped.
    ///
    /// For high-rate readings where only the current value matters (gauges,
    /// progress). The clock starts at the first poll. An item that arrives
    /// after the last tick is not emitted when upstream ends (like Kotlin
    /// Flow's `sample`). Skipped items show in the report's
    /// `discarded` column.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let readings = producer::generator(|out| async move {
    ///     for i in 0..100u32 {
    ///         out.emit(i).await;
    ///         async_io::Timer::after(Duration::from_millis(2)).await;
    ///     }
    /// });
    /// let (out, report) = futures::executor::block_on(
    ///     readings.sample(Duration::from_millis(40)).run_collect(),
    /// )
    /// .unwrap();
    /// assert!(out.len() < 100 && out.windows(2).all(|w| w[0] < w[1]));
    /// assert_eq!(report.stages[1].items_in, 100);
    /// ```
    #[track_caller]
    pub fn sample(mut self, period: Duration) -> Pipeline<Sample<S>> {
        if period.is_zero() {
            crate::rejection::reject(format_args!(
                "sample period must be non-zero, got 0s; \
                 pass how often to emit the latest item, e.g. .sample(Duration::from_millis(100))"
            ));
        }
        let info = self.core.add_stage("sample", StageKind::Timing);
        let stream = Sample {
            upstream: self.stream,
            period,
            latest: None,
            next_tick: None,
            sleep: None,
            runtime: None,
            ctx: self.core.ctx.clone(),
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
