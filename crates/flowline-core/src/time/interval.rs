//! [`interval`]: a stream of ticks on the current runtime's clock.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use super::current_runtime;
use crate::runtime::{Runtime, Sleep};

/// A stream that yields the instant of each tick, every `period`, the first
/// one at once. Ticks missed while nobody polled collapse into one (like
/// tokio's `MissedTickBehavior::Delay`): the next tick is `period` after the
/// late one.
///
/// # Panics
///
/// If `period` is zero: pass how often to tick, e.g.
/// `time::interval(Duration::from_millis(100))`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
///
/// let ticks: Vec<_> = futures::executor::block_on(
///     flowline_core::time::interval(Duration::from_millis(1)).take(3).collect(),
/// );
/// assert!(ticks[0] < ticks[1] && ticks[1] < ticks[2]);
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    if period.is_zero() {
        crate::rejection::reject(format_args!(
            "interval period must be more than zero; \
             pass how often to tick, e.g. time::interval(Duration::from_millis(100))"
        ));
    }
    let runtime = current_runtime();
    let next = runtime.now();
    Interval {
        runtime,
        period,
        next,
        sleep: None,
    }
}

/// Stream for [`interval`].
#[must_use = "streams do nothing unless polled"]
pub struct Interval {
    runtime: Arc<dyn Runtime>,
    period: Duration,
    next: Instant,
    sleep: Option<Sleep>,
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("runtime", &self.runtime.name())
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        let this = &mut *self;
        let next = this.next;
        let runtime = &this.runtime;
        let sleep = this.sleep.get_or_insert_with(|| runtime.sleep_until(next));
        futures::ready!(sleep.as_mut().poll(cx));
        this.sleep = None;
        let now = this.runtime.now();
        let following = next + this.period;
        this.next = if following > now {
            following
        } else {
            now + this.period
        };
        Poll::Ready(Some(next))
    }
}
