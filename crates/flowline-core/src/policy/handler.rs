//! The one failure path every fallible stage shares.
//!
//! # Reusing it in a new fallible stage
//!
//! Hold a `Policy<In>` (built with [`Policy::new`] from the stage's
//! `StageInfo` and the pipeline's `RunContext`), implement
//! [`Fallible`](super::Fallible) by forwarding to [`Policy::set`], and for
//! each item:
//!
//! 1. `let copy = policy.keep(&item);` — a copy only if the policy needs one;
//! 2. run the user code through [`Policy::call`] (sync) or poll its future
//!    through [`Policy::poll_user`] (async): both catch panics and add busy
//!    time;
//! 3. on `Err(error)`, await `policy.handle_failure(copy, error, attempt)`
//!    (a `'static + Send` future, so a worker task or thread can await it
//!    too) and act on the [`Verdict`]: `Retry(item)` — call again with
//!    `attempt + 1`; `Skipped`/`DeadLettered` — go on with the next item;
//!    `Stop` — end the stage's output (the error is already recorded);
//! 4. when the input ends, await [`Policy::close`] (closes the dead-letter
//!    consumer) before ending the output.
//!
//! `handle_failure` does all the counting (`retried`, `skipped`,
//! `dead_lettered`, `failed`) and the `tracing` events, so every stage
//! reports failures the same way.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::lock::Mutex;
use futures::{FutureExt as _, SinkExt as _};

use super::{Backoff, CopyFn, DeadLetter, DeadLetterSink, ErrorPolicy, StageError};
use crate::run::{BoxError, PipelineError, RunContext, StageInfo};
use crate::runtime::{panic_message, RuntimeExt as _};

/// What a fallible stage does next with a failed item.
#[derive(Debug)]
pub(crate) enum Verdict<T> {
    /// Call the stage again with this item (the backoff has elapsed).
    Retry(T),
    /// The item was skipped; go on.
    Skipped,
    /// The item went to the dead-letter consumer; go on.
    DeadLettered,
    /// The run is failing (the error is recorded): end the stage's output.
    Stop,
}

enum Mode<T> {
    Stop,
    Skip,
    Retry { attempts: u32, backoff: Backoff },
    DeadLetter(Arc<Mutex<DeadLetterSink<T>>>),
}

/// A fallible stage's error policy, with the stage's record and run context.
pub(crate) struct Policy<T> {
    mode: Mode<T>,
    copy: Option<fn(&T) -> T>,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
}

impl<T> std::fmt::Debug for Policy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Stop => "stop",
            Mode::Skip => "skip",
            Mode::Retry { .. } => "retry",
            Mode::DeadLetter(_) => "dead-letter",
        };
        f.debug_struct("Policy")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

macro_rules! event {
    ($info:expr, $level:ident, $($rest:tt)*) => {{
        #[cfg(feature = "tracing")]
        {
            let info: &StageInfo = &$info;
            tracing::$level!(parent: info.span(), stage = %info.name(), $($rest)*);
        }
    }};
}

impl<T: Send + 'static> Policy<T> {
    /// A `Stop` policy for the stage `info`.
    pub(crate) fn new(info: Arc<StageInfo>, ctx: Arc<RunContext>) -> Self {
        Policy {
            mode: Mode::Stop,
            copy: None,
            info,
            ctx,
        }
    }

    /// Installs `policy`; `copy` is used only if the policy needs copies,
    /// and must be given then.
    pub(crate) fn set(&mut self, policy: ErrorPolicy<T>, copy: Option<CopyFn<T>>) {
        self.copy = if policy.needs_copy() {
            Some(copy.expect("flowline: a retry or dead-letter policy needs a copy function"))
        } else {
            None
        };
        self.mode = match policy {
            ErrorPolicy::Stop => Mode::Stop,
            ErrorPolicy::Skip => Mode::Skip,
            ErrorPolicy::Retry { attempts, backoff } => Mode::Retry { attempts, backoff },
            ErrorPolicy::DeadLetter(sink) => Mode::DeadLetter(Arc::new(Mutex::new(sink))),
        };
    }

    pub(crate) fn info(&self) -> &Arc<StageInfo> {
        &self.info
    }

    /// A copy of `item` if the policy may need it after the call.
    #[inline]
    pub(crate) fn keep(&self, item: &T) -> Option<T> {
        self.copy.map(|copy| copy(item))
    }

    /// Runs synchronous user code: catches a panic, adds the busy time.
    pub(crate) fn call<U, E: Into<BoxError>>(
        &self,
        f: impl FnOnce() -> Result<U, E>,
    ) -> Result<U, StageError> {
        #[cfg(feature = "tracing")]
        let _span = self.info.span().enter();
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(f));
        self.info.add_busy(start.elapsed());
        flatten(result)
    }

    /// Polls a user future once: catches a panic, adds the busy time.
    pub(crate) fn poll_user<U, E, Fut>(
        &self,
        fut: Pin<&mut Fut>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<U, StageError>>
    where
        Fut: Future<Output = Result<U, E>>,
        E: Into<BoxError>,
    {
        #[cfg(feature = "tracing")]
        let _span = self.info.span().enter();
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        self.info.add_busy(start.elapsed());
        match result {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(r)) => Poll::Ready(flatten(Ok(r))),
            Err(payload) => Poll::Ready(flatten::<U, E>(Err(payload))),
        }
    }

    /// Applies the policy to a failure of attempt number `attempt` (1 for the
    /// first call) on `item` (the copy from [`keep`](Self::keep)). Counts it,
    /// records the run's error for `Stop`, and resolves to what to do next.
    pub(crate) fn handle_failure(
        &self,
        item: Option<T>,
        error: StageError,
        attempt: u32,
    ) -> BoxFuture<'static, Verdict<T>> {
        let info = self.info.clone();
        let ctx = self.ctx.clone();
        match &self.mode {
            Mode::Retry { attempts, backoff } if attempt <= *attempts => {
                let item = item.expect("flowline: a retry policy keeps a copy of each item");
                let delay = backoff.delay(attempt);
                event!(info, warn, attempt, ?delay, error = %error, "flowline: retrying item");
                async move {
                    if !delay.is_zero() {
                        ctx.runtime_or_free().sleep(delay).await;
                    }
                    info.retried.add(1);
                    Verdict::Retry(item)
                }
                .boxed()
            }
            Mode::Skip => {
                event!(info, warn, error = %error, "flowline: skipping item");
                info.skipped.add(1);
                futures::future::ready(Verdict::Skipped).boxed()
            }
            Mode::DeadLetter(sink) => {
                let item = item.expect("flowline: a dead-letter policy keeps a copy of each item");
                let sink = sink.clone();
                event!(info, warn, error = %error, "flowline: dead-lettering item");
                async move {
                    let letter = DeadLetter {
                        item,
                        error,
                        stage: info.name(),
                    };
                    let mut sink = sink.lock().await;
                    match sink.0.send(letter).await {
                        Ok(()) => {
                            info.dead_lettered.add(1);
                            Verdict::DeadLettered
                        }
                        Err(source) => {
                            info.failed.add(1);
                            ctx.fail(PipelineError::Failed {
                                stage: format!("{} (dead letters)", info.name()),
                                source,
                                report: Box::default(),
                            });
                            Verdict::Stop
                        }
                    }
                }
                .boxed()
            }
            Mode::Stop | Mode::Retry { .. } => {
                event!(info, error, error = %error, "flowline: stage failed");
                info.failed.add(1);
                ctx.fail(match error {
                    StageError::Failed(source) => PipelineError::Failed {
                        stage: info.name(),
                        source,
                        report: Box::default(),
                    },
                    StageError::Panicked(message) => PipelineError::Panicked {
                        stage: info.name(),
                        message,
                        report: Box::default(),
                    },
                });
                futures::future::ready(Verdict::Stop).boxed()
            }
        }
    }

    /// Closes the dead-letter consumer, if any (once the stage's input ended).
    pub(crate) fn close(&self) -> Option<BoxFuture<'static, ()>> {
        let Mode::DeadLetter(sink) = &self.mode else {
            return None;
        };
        let (sink, info, ctx) = (sink.clone(), self.info.clone(), self.ctx.clone());
        Some(
            async move {
                if let Err(source) = sink.lock().await.0.close().await {
                    ctx.fail(PipelineError::Failed {
                        stage: format!("{} (dead letters)", info.name()),
                        source,
                        report: Box::default(),
                    });
                }
            }
            .boxed(),
        )
    }
}

/// Polls what [`Policy::close`] returned, if anything, until it is done,
/// then drops it.
pub(crate) fn poll_close(
    closing: &mut Option<BoxFuture<'static, ()>>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if let Some(close) = closing.as_mut() {
        futures::ready!(close.as_mut().poll(cx));
        *closing = None;
    }
    Poll::Ready(())
}

fn flatten<U, E: Into<BoxError>>(
    result: std::thread::Result<Result<U, E>>,
) -> Result<U, StageError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StageError::Failed(e.into())),
        Err(payload) => Err(StageError::Panicked(panic_message(&*payload))),
    }
}
