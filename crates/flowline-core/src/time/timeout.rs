//! [`timeout`]: a future with a time limit on the current runtime's clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::{current_runtime, Elapsed};
use crate::runtime::{RuntimeExt as _, Sleep};

/// Runs `future` with a time limit: its output, or [`Elapsed`] if `limit`
/// passed first (the future is then dropped when the `Timeout` is).
///
/// # Errors
///
/// [`Elapsed`] when the limit passed before the future completed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::time;
///
/// futures::executor::block_on(async {
///     let quick = time::timeout(Duration::from_secs(5), async { 7 }).await;
///     assert_eq!(quick, Ok(7));
///     let slow = time::timeout(Duration::from_millis(1), time::sleep(Duration::from_secs(5))).await;
///     assert_eq!(slow.unwrap_err().limit(), Duration::from_millis(1));
/// });
/// ```
pub fn timeout<F: Future>(limit: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: current_runtime().sleep(limit),
        limit,
    }
}

pin_project! {
    /// Future for [`timeout`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
        limit: Duration,
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        futures::ready!(this.sleep.as_mut().poll(cx));
        Poll::Ready(Err(Elapsed::new(*this.limit, "the future")))
    }
}
