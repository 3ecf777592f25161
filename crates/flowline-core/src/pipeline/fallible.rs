//! Fallible stages and their error policy: `try_map`, `try_then`, `on_error`.

use std::future::Future;

use futures::Stream;

use super::Pipeline;
use crate::policy::{ErrorPolicy, Fallible, Policy};
use crate::run::BoxError;
use crate::stage::{TryMap, TryThen};

impl<S: Stream> Pipeline<S>
where
    S::Item: Send + 'static,
{
    /// Maps each item with the fallible `f`. Fused.
    ///
    /// An `Err` (or a panic in `f`) is handled by the stage's
    /// [`ErrorPolicy`], set with [`on_error`](Self::on_error); the default,
    /// [`ErrorPolicy::Stop`], ends the run with
    /// [`PipelineError::Failed`](crate::PipelineError::Failed) (or
    /// [`Panicked`](crate::PipelineError::Panicked)) naming this stage.
    /// The stage measures its busy time.
    ///
    /// # Errors
    ///
    /// The run fails as the policy says; see [`crate::policy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, PipelineError};
    ///
    /// let result = futures::executor::block_on(
    ///     producer::iter(["1", "2", "x"]).try_map(|s| s.parse::<u32>()).named("parse").run_collect(),
    /// );
    /// let Err(PipelineError::Failed { stage, source, .. }) = result else { panic!() };
    /// assert_eq!(stage, "parse");
    /// assert_eq!(source.to_string(), "invalid digit found in string");
    /// ```
    pub fn try_map<U, E, F>(self, f: F) -> Pipeline<TryMap<S, F>>
    where
        F: FnMut(S::Item) -> Result<U, E>,
        E: Into<BoxError>,
    {
        let ctx = self.core.ctx.clone();
        self.fuse("try_map", |s, info| {
            TryMap::new(s, f, Policy::new(info, ctx))
        })
    }

    /// Maps each item through the fallible async function `f`, one item at a
    /// time, in order. Fused. Failures (errors, and panics while making or
    /// polling the future) go to the stage's [`ErrorPolicy`], as for
    /// [`try_map`](Self::try_map); a retry calls `f` again for a fresh future.
    ///
    /// # Errors
    ///
    /// The run fails as the policy says; see [`crate::policy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, ErrorPolicy};
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter(1..=4u32)
    ///         .try_then(|x| async move { if x % 2 == 0 { Ok(x * 10) } else { Err("odd") } })
    ///         .on_error(ErrorPolicy::Skip)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [20, 40]);
    /// assert_eq!(report.stages[1].skipped, 2);
    /// ```
    pub fn try_then<U, E, F, Fut>(self, f: F) -> Pipeline<TryThen<S, F, Fut>>
    where
        F: FnMut(S::Item) -> Fut,
        Fut: Future<Output = Result<U, E>>,
        E: Into<BoxError>,
    {
        let ctx = self.core.ctx.clone();
        self.fuse("try_then", |s, info| {
            TryThen::new(s, f, Policy::new(info, ctx))
        })
    }
}

impl<S: Stream + Fallible> Pipeline<S> {
    /// Sets the error policy of the last stage, a fallible one (`try_map`,
    /// `try_then`, …). See [`crate::policy`] for what each policy does.
    ///
    /// The input item must be `Clone`: [`Retry`](ErrorPolicy::Retry) calls the
    /// stage again with a copy, and [`DeadLetter`](ErrorPolicy::DeadLetter)
    /// hands the copy over. Copies are made only under those two policies;
    /// wrap items that are costly to clone in an `Arc`. To skip failures of
    /// items that are not `Clone`, use [`skip_errors`](Self::skip_errors).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use flowline_core::{producer, Backoff, ErrorPolicy};
    ///
    /// let calls = AtomicU32::new(0);
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter([7u32])
    ///         .try_map(|x| if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok(x) })
    ///         .on_error(ErrorPolicy::Retry { attempts: 3, backoff: Backoff::none() })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [7]);
    /// assert_eq!(report.stages[1].retried, 2);
    /// ```
    pub fn on_error(mut self, policy: ErrorPolicy<S::Input>) -> Self
    where
        S::Input: Clone,
    {
        self.stream.set_error_policy(policy, Some(Clone::clone));
        self
    }

    /// Sets [`ErrorPolicy::Skip`] on the last stage, a fallible one, for
    /// items of any type: skipping keeps no copy of the item, so unlike
    /// [`on_error`](Self::on_error) this needs no `Clone`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// // A file handle, a connection, a `Box<dyn FnOnce>`: not `Clone`.
    /// struct Job(u32);
    ///
    /// let (out, report) = futures::executor::block_on(
    ///     producer::iter((1..=4).map(Job))
    ///         .try_map(|Job(n)| if n % 2 == 0 { Ok(n) } else { Err("odd job") })
    ///         .skip_errors()
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [2, 4]);
    /// assert_eq!(report.stages[1].skipped, 2);
    /// ```
    pub fn skip_errors(mut self) -> Self {
        self.stream.set_error_policy(ErrorPolicy::Skip, None);
        self
    }
}
