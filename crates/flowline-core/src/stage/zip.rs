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
    /// Stream for [`Pipeline::zip`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Zip<A: Stream, B: Stream> {
        // Both inputs are dropped as soon as the zip ends, so the longer
        // side's upstream tasks see their receiver go and stop, instead of
        // waiting forever for room nobody will make.
        #[pin]
        a: Option<A>,
        #[pin]
        b: Option<B>,
        a_item: Option<A::Item>,
        b_item: Option<B::Item>,
        a_done: bool,
        b_done: bool,
        info: Arc<StageInfo>,
    }
}

impl<A: Stream + fmt::Debug, B: Stream + fmt::Debug> fmt::Debug for Zip<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zip")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

impl<A: Stream, B: Stream> Stream for Zip<A, B> {
    type Item = (A::Item, B::Item);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        // Both inputs are polled even when one is pending, so each side's
        // next item is fetched concurrently.
        if this.a_item.is_none() {
            if let Some(a) = this.a.as_mut().as_pin_mut() {
                if let Poll::Ready(item) = poll_input(a, this.a_done, cx) {
                    *this.a_item = item;
                }
            }
        }
        if this.b_item.is_none() {
            if let Some(b) = this.b.as_mut().as_pin_mut() {
                if let Poll::Ready(item) = poll_input(b, this.b_done, cx) {
                    *this.b_item = item;
                }
            }
        }
        if this.a_item.is_some() && this.b_item.is_some() {
            // Two items in, one pair out: one of them is grouped into it.
            this.info.out.bump();
            this.info.grouped.add(1);
            return Poll::Ready(this.a_item.take().zip(this.b_item.take()));
        }
        let a_ended = *this.a_done && this.a_item.is_none();
        let b_ended = *this.b_done && this.b_item.is_none();
        if a_ended || b_ended || this.a.is_none() {
            // An item waiting for a partner that will never come.
            let unmatched =
                u64::from(this.a_item.take().is_some()) + u64::from(this.b_item.take().is_some());
            this.info.discarded.add(unmatched);
            this.a.set(None);
            this.b.set(None);
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
    ///     producer::iter(["a", "b", "c"]).zip(producer::iter(1..)).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(pairs, [("a", 1), ("b", 2), ("c", 3)]);
    /// ```
    pub fn zip<S2: Stream>(mut self, other: Pipeline<S2>) -> Pipeline<Zip<S, S2>> {
        let (b, info) = self.join_fan_in("zip", other);
        self.core.ctx.set_cuts_inputs();
        let stream = Zip {
            a: Some(self.stream),
            b: Some(b),
            a_item: None,
            b_item: None,
            a_done: false,
            b_done: false,
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
