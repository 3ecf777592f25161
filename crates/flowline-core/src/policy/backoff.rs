use std::time::Duration;

/// How long a [`Retry`](super::ErrorPolicy::Retry) waits before each extra
/// attempt.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::Backoff;
///
/// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(50));
/// assert_eq!(b.delay(1), Duration::from_millis(10));
/// assert_eq!(b.delay(2), Duration::from_millis(20));
/// assert_eq!(b.delay(3), Duration::from_millis(40));
/// assert_eq!(b.delay(4), Duration::from_millis(50));
///
/// let jittered = b.with_jitter().delay(2);
/// assert!(jittered >= Duration::from_millis(10) && jittered <= Duration::from_millis(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: bool,
}

impl Backoff {
    /// No wait between attempts.
    pub fn none() -> Self {
        Backoff::fixed(Duration::ZERO)
    }

    /// The same `delay` before every extra attempt.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            base: delay,
            max: delay,
            jitter: false,
        }
    }

    /// `base` before the first extra attempt, doubling each time, never more
    /// than `max`.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            jitter: false,
        }
    }

    /// Picks each delay at random between half and all of it ("equal
    /// jitter"), so many failing items do not retry in lockstep.
    #[must_use]
    pub fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The delay before extra attempt number `retry` (1 for the first).
    pub fn delay(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let full = self
            .base
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max));
        if self.jitter && !full.is_zero() {
            let half = full / 2;
            let nanos = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
            half + Duration::from_nanos(fastrand::u64(0..=nanos))
        } else {
            full
        }
    }
}
