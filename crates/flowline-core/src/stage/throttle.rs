use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{Pipeline, RunContext, StageInfo, StageKind};
use crate::runtime::{Runtime, Sleep};

/// A rate for [`Pipeline::throttle`]: `count` items per `per`.
///
/// Converts from a number of items per second (`100`) or from a
/// `(count, per)` pair (`(5, Duration::from_millis(100))`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::stage::Rate;
///
/// assert_eq!(Rate::from(100), Rate::per_second(100));
/// assert_eq!(Rate::from((3, Duration::from_millis(30))).interval(), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    per: Duration,
}

impl Rate {
    /// `count` items every `per`.
    pub fn new(count: u32, per: Duration) -> Self {
        Rate { count, per }
    }

    /// `count` items per second.
    pub fn per_second(count: u32) -> Self {
        Rate::new(count, Duration::from_secs(1))
    }

    /// This rate as the argument of a suggested call: `100` for 100 per
    /// second, else `(count, per)`.
    fn expr(&self) -> String {
        if self.per == Duration::from_secs(1) {
            self.count.to_string()
        } else {
            format!(
                "({}, {})",
                self.count,
                crate::rejection::duration_expr(self.per)
            )
        }
    }

    /// The steady-state gap between two items (zero for a zero count).
    pub fn interval(&self) -> Duration {
        self.per.checked_div(self.count).unwrap_or_default()
    }
}

impl From<u32> for Rate {
    fn from(per_second: u32) -> Self {
        Rate::per_second(per_second)
    }
}

impl From<(u32, Duration)> for Rate {
    fn from((count, per): (u32, Duration)) -> Self {
        Rate::new(count, per)
    }
}

pin_project! {
    /// Stream for [`Pipeline::throttle`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Throttle<S: Stream> {
        #[pin]
        upstream: S,
        interval: Duration,
        // How far ahead of the steady rate a burst may run.
        tolerance: Duration,
        // Theoretical arrival time of the next item at the steady rate (GCRA).
        tat: Option<Instant>,
        held: Option<S::Item>,
        sleep: Option<Sleep>,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: Stream> fmt::Debug for Throttle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("interval", &self.interval)
            .field("tolerance", &self.tolerance)
            .field("holding", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Throttle<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        if this.held.is_none() {
            let Some(item) = futures::ready!(this.upstream.as_mut().poll_next(cx)) else {
                return Poll::Ready(None);
            };
            let rt = this
                .runtime
                .get_or_insert_with(|| this.ctx.runtime_or_free());
            let now = rt.now();
            let tat = this.tat.unwrap_or(now);
            // The earliest time this item conforms: a full bucket lets up to
            // `burst` items through at once, then one per interval.
            let at = tat.checked_sub(*this.tolerance).unwrap_or(now).max(now);
            *this.tat = Some(tat.max(at) + *this.interval);
            if at <= now {
                this.info.out.bump();
                return Poll::Ready(Some(item));
            }
            *this.held = Some(item);
            *this.sleep = Some(rt.sleep_until(at));
        }
        if let Some(sleep) = this.sleep.as_mut() {
            futures::ready!(sleep.as_mut().poll(cx));
        }
        *this.sleep = None;
        this.info.out.bump();
        Poll::Ready(this.held.take())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = usize::from(self.held.is_some());
        let (lo, hi) = self.upstream.size_hint();
        (
            lo.saturating_add(held),
            hi.and_then(|h| h.checked_add(held)),
        )
    }
}

impl<S: Stream> Pipeline<S> {
    /// Limits the flow to `rate` items on average, letting bursts of up to
    /// `burst` items through at once after a quiet spell (a token bucket of
    /// `burst` tokens refilled at `rate`).
    ///
    /// `rate` is items per second (`100`), a `(count, per)` pair
    /// (`(5, Duration::from_millis(100))`) or a [`Rate`]. Items are delayed,
    /// never dropped; a throttled stage backpressures upstream. Timers run on
    /// the pipeline's runtime (`async-io` when it has none).
    ///
    /// # Panics
    ///
    /// If the rate is zero items or zero time, or `burst` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use flowline_core::producer;
    ///
    /// let start = Instant::now();
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(0..5).throttle(100, 1).run_collect(), // one item per 10 ms
    /// )
    /// .unwrap();
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// assert!(start.elapsed() >= Duration::from_millis(40));
    /// ```
    #[track_caller]
    pub fn throttle(mut self, rate: impl Into<Rate>, burst: u32) -> Pipeline<Throttle<S>> {
        let rate = rate.into();
        let valid_rate = rate.count > 0 && !rate.per.is_zero();
        let burst_hint = if burst == 0 { 1 } else { burst };
        if !valid_rate {
            crate::rejection::reject(format_args!(
                "throttle rate must be at least 1 item per non-zero duration, got {} per {:?}; \
                 pass items per second, or (count, per), e.g. .throttle(100, {burst_hint})",
                rate.count, rate.per
            ));
        }
        if burst == 0 {
            crate::rejection::reject(format_args!(
                "throttle burst must be at least 1, got 0; \
                 pass how many items may pass at once after a pause, e.g. .throttle({}, 1)",
                rate.expr()
            ));
        }
        let interval = rate.interval();
        let info = self.core.add_stage("throttle", StageKind::Timing);
        let stream = Throttle {
            upstream: self.stream,
            interval,
            tolerance: interval.checked_mul(burst - 1).unwrap_or(Duration::MAX),
            tat: None,
            held: None,
            sleep: None,
            runtime: None,
            ctx: self.core.ctx.clone(),
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
