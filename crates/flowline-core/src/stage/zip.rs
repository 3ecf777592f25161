use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::merge::poll_input;
use crate::run::{StageInfo, StageKind};
use crate::Pipeline;

/// Stream for [`Pipeline::zip`].
///
/// When one input ends, both inputs are dropped at once: the other side's
/// tasks see their queue closed and stop, so the run can finish.
#[must_use = "streams do nothing unless polled"]
pub struct Zip<A: Stream, B: Stream> {
    a: Option<Pin<Box<A>>>,
    b: Option<Pin<Box<B>>>,
    a_item: Option<A::Item>,
    b_item: Option<B::Item>,
    a_done: bool,
    b_done: bool,
    info: Arc<StageInfo>,
}

impl<A: Stream + fmt::Debug, B: Stream + fmt::Debug> fmt::Debug for Zip<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zip")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

// The inputs are boxed and the queued items are never pinned.
impl<A: Stream, B: Stream> Unpin for Zip<A, B> {}

impl<A: Stream, B: Stream> Stream for Zip<A, B> {
    type Item = (A::Item, B::Item);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let (Some(a), Some(b)) = (&mut this.a, &mut this.b) else {
            return Poll::Ready(None);
        };
        // Both inputs are polled even when one is pending, so each side's
        // next item is fetched concurrently.
        if this.a_item.is_none() {
            if let Poll::Ready(item) = poll_input(a.as_mut(), &mut this.a_done, cx) {
                this.a_item = item;
            }
        }
        if this.b_item.is_none() {
            if let Poll::Ready(item) = poll_input(b.as_mut(), &mut this.b_done, cx) {
                this.b_item = item;
            }
        }
        if this.a_item.is_some() && this.b_item.is_some() {
            this.info.out.bump();
            return Poll::Ready(this.a_item.take().zip(this.b_item.take()));
        }
        let a_ended = this.a_done && this.a_item.is_none();
        let b_ended = this.b_done && this.b_item.is_none();
        if a_ended || b_ended {
            this.a = None;
            this.b = None;
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// Pairs each item with the item at the same position in `other`, ending
    /// when either input ends (the other's remaining items are not taken).
    ///
    /// `other`'s stages and tasks join this pipeline, as with
    /// [`merge`](Self::merge). The `zip#<n>` stage's `items_in` counts the
    /// items taken from both inputs and `items_out` the pairs.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (pairs, _) = futures::executor::block_on(
    ///     producer::iter(["a", "b", "c"]).zip(producer::iter(1..)).collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(pairs, [("a", 1), ("b", 2), ("c", 3)]);
    /// ```
    pub fn zip<S2: Stream>(mut self, other: Pipeline<S2>) -> Pipeline<Zip<S, S2>> {
        let Pipeline { stream: b, core } = other;
        let b_last = self.core.absorb(core);
        let info = self
            .core
            .add_joining_stage("zip", StageKind::FanIn, &[b_last]);
        let stream = Zip {
            a: Some(Box::pin(self.stream)),
            b: Some(Box::pin(b)),
            a_item: None,
            b_item: None,
            a_done: false,
            b_done: false,
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
