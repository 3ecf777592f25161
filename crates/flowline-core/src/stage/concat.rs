use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use super::merge::poll_input;
use crate::run::StageInfo;
use crate::Pipeline;

pin_project! {
    /// Stream for [`Pipeline::concat`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Concat<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
        a_done: bool,
        b_done: bool,
        info: Arc<StageInfo>,
    }
}

impl<A: fmt::Debug, B: fmt::Debug> fmt::Debug for Concat<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Concat")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

impl<A, B> Stream for Concat<A, B>
where
    A: Stream,
    B: Stream<Item = A::Item>,
{
    type Item = A::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<A::Item>> {
        let this = self.project();
        let mut item = futures::ready!(poll_input(this.a, this.a_done, cx));
        if item.is_none() {
            item = futures::ready!(poll_input(this.b, this.b_done, cx));
        }
        Poll::Ready(this.info.emit(item))
    }
}

impl<S: Stream> Pipeline<S> {
    /// All of this pipeline's items, then all of `other`'s.
    ///
    /// `other`'s stages and tasks join this pipeline, as with
    /// [`merge`](Self::merge). Its tasks (boundaries) start with the run, so
    /// they fill their bounded queues while this pipeline's items flow; its
    /// items are taken only once this pipeline has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(1..=3).concat(producer::iter(7..=8)).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [1, 2, 3, 7, 8]);
    /// ```
    pub fn concat<S2>(mut self, other: Pipeline<S2>) -> Pipeline<Concat<S, S2>>
    where
        S2: Stream<Item = S::Item>,
    {
        let (b, info) = self.join_fan_in("concat", other);
        let stream = Concat {
            a: self.stream,
            b,
            a_done: false,
            b_done: false,
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
