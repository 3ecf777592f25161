use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::Stream;
use pin_project_lite::pin_project;

use crate::policy::{poll_close, CopyFn, ErrorPolicy, Fallible, Policy, Verdict};
use crate::run::BoxError;

pin_project! {
    /// Stream for [`Pipeline::try_map`](crate::Pipeline::try_map).
    #[must_use = "streams do nothing unless polled"]
    pub struct TryMap<S: Stream, F> {
        #[pin]
        upstream: S,
        f: F,
        policy: Policy<S::Item>,
        // The policy's work on a failed item (a backoff, a dead letter send),
        // with the number of the attempt that failed.
        handling: Option<(BoxFuture<'static, Verdict<S::Item>>, u32)>,
        closing: Option<BoxFuture<'static, ()>>,
        done: bool,
    }
}

impl<S: Stream, F> TryMap<S, F>
where
    S::Item: Send + 'static,
{
    pub(crate) fn new(upstream: S, f: F, policy: Policy<S::Item>) -> Self {
        TryMap {
            upstream,
            f,
            policy,
            handling: None,
            closing: None,
            done: false,
        }
    }
}

impl<S: Stream + fmt::Debug, F> fmt::Debug for TryMap<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMap")
            .field("upstream", &self.upstream)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Stream, F> Fallible for TryMap<S, F>
where
    S::Item: Send + 'static,
{
    type Input = S::Item;

    fn set_error_policy(&mut self, policy: ErrorPolicy<S::Item>, copy: Option<CopyFn<S::Item>>) {
        self.policy.set(policy, copy);
    }
}

/// Calls `f` on `item`, its attempt number `attempt`: its output, counted as
/// out, or the policy's handling of the failure with the attempt's number.
fn call<T, U, E>(
    policy: &Policy<T>,
    f: &mut impl FnMut(T) -> Result<U, E>,
    item: T,
    attempt: u32,
) -> Result<U, (BoxFuture<'static, Verdict<T>>, u32)>
where
    T: Send + 'static,
    E: Into<BoxError>,
{
    let copy = policy.keep(&item);
    match policy.call(|| f(item)) {
        Ok(out) => {
            policy.info().out.bump();
            Ok(out)
        }
        Err(e) => Err((policy.handle_failure(copy, e, attempt), attempt)),
    }
}

impl<S, F, U, E> Stream for TryMap<S, F>
where
    S: Stream,
    S::Item: Send + 'static,
    F: FnMut(S::Item) -> Result<U, E>,
    E: Into<BoxError>,
{
    type Item = U;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let mut this = self.project();
        loop {
            if let Some((fut, attempt)) = this.handling.as_mut() {
                let attempt = *attempt;
                let verdict = futures::ready!(fut.as_mut().poll(cx));
                *this.handling = None;
                match verdict {
                    Verdict::Retry(item) => match call(this.policy, this.f, item, attempt + 1) {
                        Ok(out) => return Poll::Ready(Some(out)),
                        Err(handling) => *this.handling = Some(handling),
                    },
                    Verdict::Skipped | Verdict::DeadLettered => {}
                    // The run has failed (the policy recorded it and halted the
                    // run): wait for the driver to stop us rather than end
                    // the stream, which downstream would take for completion.
                    Verdict::Stop => {
                        *this.handling = Some((Box::pin(futures::future::pending()), attempt));
                        return Poll::Pending;
                    }
                }
                continue;
            }
            if *this.done {
                futures::ready!(poll_close(this.closing, cx));
                return Poll::Ready(None);
            }
            match futures::ready!(this.upstream.as_mut().poll_next(cx)) {
                Some(item) => match call(this.policy, this.f, item, 1) {
                    Ok(out) => return Poll::Ready(Some(out)),
                    Err(handling) => *this.handling = Some(handling),
                },
                None => {
                    *this.done = true;
                    *this.closing = this.policy.close();
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.upstream.size_hint().1)
    }
}
