use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::Stream;
use pin_project_lite::pin_project;

use crate::policy::{poll_close, CopyFn, ErrorPolicy, Fallible, Policy, StageError, Verdict};
use crate::run::BoxError;

pin_project! {
    /// Stream for [`Pipeline::try_then`](crate::Pipeline::try_then).
    #[must_use = "streams do nothing unless polled"]
    pub struct TryThen<S: Stream, F, Fut> {
        #[pin]
        upstream: S,
        f: F,
        // The attempt in progress: its future, the item's copy, its number.
        #[pin]
        running: Option<Fut>,
        copy: Option<S::Item>,
        attempt: u32,
        policy: Policy<S::Item>,
        handling: Option<BoxFuture<'static, Verdict<S::Item>>>,
        closing: Option<BoxFuture<'static, ()>>,
        done: bool,
    }
}

impl<S: Stream, F, Fut> TryThen<S, F, Fut>
where
    S::Item: Send + 'static,
{
    pub(crate) fn new(upstream: S, f: F, policy: Policy<S::Item>) -> Self {
        TryThen {
            upstream,
            f,
            running: None,
            copy: None,
            attempt: 0,
            policy,
            handling: None,
            closing: None,
            done: false,
        }
    }
}

impl<S: Stream + fmt::Debug, F, Fut> fmt::Debug for TryThen<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryThen")
            .field("upstream", &self.upstream)
            .field("busy", &self.running.is_some())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Stream, F, Fut> Fallible for TryThen<S, F, Fut>
where
    S::Item: Send + 'static,
{
    type Input = S::Item;

    fn set_error_policy(&mut self, policy: ErrorPolicy<S::Item>, copy: Option<CopyFn<S::Item>>) {
        self.policy.set(policy, copy);
    }
}

impl<S, F, Fut, U, E> Stream for TryThen<S, F, Fut>
where
    S: Stream,
    S::Item: Send + 'static,
    F: FnMut(S::Item) -> Fut,
    Fut: Future<Output = Result<U, E>>,
    E: Into<BoxError>,
{
    type Item = U;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let mut this = self.project();
        loop {
            if let Some(fut) = this.running.as_mut().as_pin_mut() {
                let result = futures::ready!(this.policy.poll_user(fut, cx));
                this.running.set(None);
                match result {
                    Ok(out) => {
                        *this.copy = None;
                        this.policy.info().out.bump();
                        return Poll::Ready(Some(out));
                    }
                    Err(e) => {
                        let copy = this.copy.take();
                        *this.handling = Some(this.policy.handle_failure(copy, e, *this.attempt));
                    }
                }
            }
            if let Some(fut) = this.handling.as_mut() {
                let verdict = futures::ready!(fut.as_mut().poll(cx));
                *this.handling = None;
                match verdict {
                    Verdict::Retry(item) => {
                        *this.attempt += 1;
                        if let Err(e) =
                            start(this.policy, this.f, this.copy, this.running.as_mut(), item)
                        {
                            let copy = this.copy.take();
                            *this.handling =
                                Some(this.policy.handle_failure(copy, e, *this.attempt));
                        }
                    }
                    Verdict::Skipped | Verdict::DeadLettered => {}
                    // The run has failed and is halted: never end the stream
                    // as if it had completed (see `TryMap`).
                    Verdict::Stop => {
                        *this.handling = Some(Box::pin(futures::future::pending()));
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
                Some(item) => {
                    *this.attempt = 1;
                    if let Err(e) =
                        start(this.policy, this.f, this.copy, this.running.as_mut(), item)
                    {
                        let copy = this.copy.take();
                        *this.handling = Some(this.policy.handle_failure(copy, e, 1));
                    }
                }
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

/// Starts an attempt on `item`: keeps a copy if the policy needs one and
/// makes the future. A panic while making it fails the attempt at once.
fn start<T, F, Fut>(
    policy: &Policy<T>,
    f: &mut F,
    copy: &mut Option<T>,
    mut running: Pin<&mut Option<Fut>>,
    item: T,
) -> Result<(), StageError>
where
    T: Send + 'static,
    F: FnMut(T) -> Fut,
{
    *copy = policy.keep(&item);
    let fut = policy.call(|| Ok::<_, BoxError>(f(item)))?;
    running.set(Some(fut));
    Ok(())
}
