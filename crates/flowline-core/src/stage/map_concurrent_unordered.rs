use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::FuturesUnordered;
use futures::Stream;
use pin_project_lite::pin_project;

use super::concurrent::{concurrent_stage, ConcurrentOutput};
use super::map_concurrent::{check_limit, MapLanes};
use crate::run::{Pipeline, StageKind};

pin_project! {
    /// Stream for [`Pipeline::map_concurrent_unordered`]: results in completion order.
    #[must_use = "streams do nothing unless polled"]
    pub struct MapConcurrentUnordered<T> {
        #[pin]
        queue: ConcurrentOutput<T>,
    }
}

impl<T> fmt::Debug for MapConcurrentUnordered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapConcurrentUnordered")
            .field(&self.queue)
            .finish()
    }
}

impl<T> Stream for MapConcurrentUnordered<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.project().queue.poll_next(cx)
    }
}

impl<S: Stream> Pipeline<S> {
    /// Maps each item through the async function `f`, running up to `limit`
    /// futures at once, and emits each result **as soon as it is ready**.
    ///
    /// Like [`map_concurrent`](Self::map_concurrent) — an eager task of its
    /// own, in-flight futures keep progressing while downstream is busy, at
    /// most `limit` futures in flight and `limit` finished results waiting —
    /// but a slow item never holds back the fast ones behind it.
    /// `upstream`, `f` and its futures must be `Send + 'static`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0. A panic in `f` or in one of its futures ends the run
    /// with [`PipelineError::Panicked`](crate::PipelineError::Panicked)
    /// naming this stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::{producer, runtime::{RuntimeExt, RuntimeFree}};
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter([60u64, 1, 30])
    ///         .map_concurrent_unordered(3, |ms| async move {
    ///             RuntimeFree.sleep(Duration::from_millis(ms)).await;
    ///             ms
    ///         })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [1, 30, 60]);
    /// ```
    #[track_caller]
    pub fn map_concurrent_unordered<F, Fut>(
        mut self,
        limit: usize,
        f: F,
    ) -> Pipeline<MapConcurrentUnordered<Fut::Output>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
        F: FnMut(S::Item) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        check_limit(limit, "map_concurrent_unordered", "f");
        let info = self
            .core
            .add_stage("map_concurrent_unordered", StageKind::Concurrent);
        // Futures run concurrently, results taken as they finish.
        let lanes = MapLanes::<_, FuturesUnordered<Fut>>::new(f, limit);
        let (queue, task) = concurrent_stage(self.stream, lanes, info, self.core.ctx.clone());
        self.core.add_task(task);
        Pipeline::from_parts(MapConcurrentUnordered { queue }, self.core)
    }
}
