//! The in-task half of `map_concurrent_local` and
//! `map_concurrent_unordered_local`: up to `limit` futures in flight, for
//! upstreams, closures and futures that are not `Send`. The stage's local
//! task pumps it into a queue of `2 × limit` (`BoundaryLocal`), so in-flight
//! futures keep progressing while downstream is busy, until it is full.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt as _};
use futures::Stream;
use pin_project_lite::pin_project;

use super::map_concurrent::check_limit;
use crate::run::{StageInfo, StageKind};
use crate::stage::BoundaryLocal;
use crate::Pipeline;

/// The set of running futures: in input order, or as they finish.
pub(crate) trait LocalRunning<Fut: Future>:
    Stream<Item = Fut::Output> + Unpin + Default
{
    fn start(&mut self, future: Fut);
    fn running(&self) -> usize;
}

impl<Fut: Future> LocalRunning<Fut> for FuturesOrdered<Fut> {
    fn start(&mut self, future: Fut) {
        self.push_back(future);
    }
    fn running(&self) -> usize {
        self.len()
    }
}

impl<Fut: Future> LocalRunning<Fut> for FuturesUnordered<Fut> {
    fn start(&mut self, future: Fut) {
        self.push(future);
    }
    fn running(&self) -> usize {
        self.len()
    }
}

pin_project! {
    /// Pulls `upstream` while fewer than `limit` futures of `f` run; yields
    /// their outputs. Polled only by the stage's task (the pump).
    pub(crate) struct LocalLanes<S, F, R> {
        #[pin]
        upstream: S,
        f: F,
        running: R,
        limit: usize,
        upstream_done: bool,
        info: Arc<StageInfo>,
    }
}

impl<S, F, R: Default> LocalLanes<S, F, R> {
    pub(crate) fn new(upstream: S, f: F, limit: usize, info: Arc<StageInfo>) -> Self {
        LocalLanes {
            upstream,
            f,
            running: R::default(),
            limit,
            upstream_done: false,
            info,
        }
    }
}

impl<S, F, R> fmt::Debug for LocalLanes<S, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLanes")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S, F, Fut, R> Stream for LocalLanes<S, F, R>
where
    S: Stream,
    F: FnMut(S::Item) -> Fut,
    Fut: Future,
    R: LocalRunning<Fut>,
{
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let mut this = self.project();
        while !*this.upstream_done && this.running.running() < *this.limit {
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    let future = this.info.guard(|| (this.f)(item));
                    this.running.start(future);
                }
                Poll::Ready(None) => *this.upstream_done = true,
                Poll::Pending => break,
            }
        }
        match this.info.guard(|| this.running.poll_next_unpin(cx)) {
            Poll::Ready(None) if !*this.upstream_done => Poll::Pending,
            poll => poll,
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// [`map_concurrent`](Self::map_concurrent) for upstreams, closures and
    /// futures that are not `Send`: up to `limit` futures of `f` run at once
    /// and their results come out **in input order**.
    ///
    /// The stage is a task of its own on this thread (where
    /// [`boundary_local`](Self::boundary_local)'s task runs) that keeps the
    /// futures moving while downstream is busy, and hands results on through
    /// a queue of `2 × limit`; when that is full, it stops pulling upstream
    /// and polling futures until downstream has taken half of it.
    ///
    /// # Panics
    ///
    /// If `limit` is 0. A panic in `f` or its futures ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming
    /// this stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    /// use flowline_core::{producer, time};
    ///
    /// let log = Rc::new(RefCell::new(Vec::new())); // `!Send` state in the futures
    /// let shared = log.clone();
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=6u64)
    ///         .map_concurrent_local(3, move |x| {
    ///             let log = shared.clone();
    ///             async move {
    ///                 time::sleep(Duration::from_millis(7 - x)).await; // later ones finish first
    ///                 log.borrow_mut().push(x);
    ///                 x * 10
    ///             }
    ///         })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [10, 20, 30, 40, 50, 60]); // input order
    /// assert_eq!(log.borrow().len(), 6);
    /// ```
    #[track_caller]
    pub fn map_concurrent_local<F, Fut>(
        self,
        limit: usize,
        f: F,
    ) -> Pipeline<BoundaryLocal<Fut::Output>>
    where
        S: 'static,
        F: FnMut(S::Item) -> Fut + 'static,
        Fut: Future + 'static,
    {
        check_limit(limit, "map_concurrent_local", "f");
        self.concurrent_local::<_, _, FuturesOrdered<Fut>>("map_concurrent", limit, f)
    }

    /// [`map_concurrent_local`](Self::map_concurrent_local) with results in
    /// the order they finish, as
    /// [`map_concurrent_unordered`](Self::map_concurrent_unordered).
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{rc::Rc, time::Duration};
    /// use flowline_core::{producer, time};
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter([30u64, 10, 20].map(Rc::new))
    ///         .map_concurrent_unordered_local(3, |ms| async move {
    ///             time::sleep(Duration::from_millis(*ms)).await;
    ///             ms
    ///         })
    ///         .map(|ms| *ms)
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [10, 20, 30]); // as they finish
    /// ```
    #[track_caller]
    pub fn map_concurrent_unordered_local<F, Fut>(
        self,
        limit: usize,
        f: F,
    ) -> Pipeline<BoundaryLocal<Fut::Output>>
    where
        S: 'static,
        F: FnMut(S::Item) -> Fut + 'static,
        Fut: Future + 'static,
    {
        check_limit(limit, "map_concurrent_unordered_local", "f");
        self.concurrent_local::<_, _, FuturesUnordered<Fut>>("map_concurrent_unordered", limit, f)
    }

    fn concurrent_local<F, Fut, R>(
        mut self,
        prefix: &str,
        limit: usize,
        f: F,
    ) -> Pipeline<BoundaryLocal<Fut::Output>>
    where
        S: 'static,
        F: FnMut(S::Item) -> Fut + 'static,
        Fut: Future + 'static,
        R: LocalRunning<Fut> + 'static,
    {
        let info = self.core.add_stage(prefix, StageKind::Concurrent);
        let lanes = LocalLanes::<_, _, R>::new(self.stream, f, limit, info.clone());
        // Room for `limit` finished results beside `limit` more: the queue
        // resumes its pump at half, so with only `limit` the futures would
        // stall as soon as `limit` results wait, though the queue had room.
        let capacity = limit.saturating_mul(2);
        let (stream, task) = BoundaryLocal::new(lanes, None, capacity, info, self.core.ctx.clone());
        self.core.add_local_task(task);
        Pipeline::from_batched(stream, self.core, BoundaryLocal::poll_batch)
    }
}
