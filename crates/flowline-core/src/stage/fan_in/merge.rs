use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{StageInfo, StageKind};
use crate::Pipeline;

pin_project! {
    /// Stream for [`Pipeline::merge`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Merge<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
        a_done: bool,
        b_done: bool,
        a_first: bool,
        info: Arc<StageInfo>,
    }
}

impl<A: fmt::Debug, B: fmt::Debug> fmt::Debug for Merge<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merge")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

/// Polls one input of a fan-in unless it has ended, noting when it does.
pub(crate) fn poll_input<S: Stream>(
    stream: Pin<&mut S>,
    done: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<S::Item>> {
    if *done {
        return Poll::Ready(None);
    }
    let item = futures::ready!(stream.poll_next(cx));
    *done = item.is_none();
    Poll::Ready(item)
}

impl<S> Pipeline<S> {
    /// Takes `other`'s stages and tasks into this pipeline and adds the
    /// fan-in stage `prefix`, fed by this pipeline's last stage and `other`'s.
    /// Returns `other`'s stream and the new stage's info.
    pub(crate) fn join_fan_in<S2>(
        &mut self,
        prefix: &str,
        other: Pipeline<S2>,
    ) -> (S2, Arc<StageInfo>) {
        let Pipeline {
            stream: b, core, ..
        } = other;
        let b_last = self.core.absorb(core);
        let info = self
            .core
            .add_joining_stage(prefix, StageKind::FanIn, &[b_last]);
        (b, info)
    }
}

/// Polls the inputs `order` names, in that order, with `poll`, until one has
/// an item: that item, with the name of the input it came from. `Ready(None)`
/// once every input has ended, `Pending` when none has an item and some have
/// not ended.
pub(crate) fn poll_in_turn<I, T>(
    order: impl IntoIterator<Item = I>,
    mut poll: impl FnMut(I) -> Poll<Option<T>>,
) -> Poll<Option<(I, T)>>
where
    I: Copy,
{
    let mut pending = false;
    for input in order {
        match poll(input) {
            Poll::Ready(Some(item)) => return Poll::Ready(Some((input, item))),
            Poll::Ready(None) => {}
            Poll::Pending => pending = true,
        }
    }
    if pending {
        Poll::Pending
    } else {
        Poll::Ready(None)
    }
}

impl<A, B> Stream for Merge<A, B>
where
    A: Stream,
    B: Stream<Item = A::Item>,
{
    type Item = A::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<A::Item>> {
        let mut this = self.project();
        // Whichever input went first last time goes second now: with both
        // ready, items alternate.
        let a_first = *this.a_first;
        *this.a_first = !a_first;
        let polled = poll_in_turn([a_first, !a_first], |take_a| {
            if take_a {
                poll_input(this.a.as_mut(), this.a_done, cx)
            } else {
                poll_input(this.b.as_mut(), this.b_done, cx)
            }
        });
        let item = futures::ready!(polled).map(|(_, item)| item);
        Poll::Ready(this.info.emit(item))
    }
}

impl<S: Stream> Pipeline<S> {
    /// Merges `other` into this pipeline: items from both, as they come, taken
    /// in turn when both have one ready (fair), ending when both have ended.
    ///
    /// The order within each input is kept. `other`'s stages and tasks join
    /// this pipeline: a runtime chosen afterwards with
    /// [`on_runtime`](Self::on_runtime) runs both, an error on either side ends
    /// the run, and the report lists both sides' stages (the `merge#<n>`
    /// stage's `items_in` counts both inputs).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let (mut out, report) = futures::executor::block_on(
    ///     producer::iter([1, 3, 5]).merge(producer::iter([2, 4])).run_collect(),
    /// )
    /// .unwrap();
    /// out.sort();
    /// assert_eq!(out, [1, 2, 3, 4, 5]);
    /// assert_eq!(report.delivered(), 5);
    /// ```
    pub fn merge<S2>(mut self, other: Pipeline<S2>) -> Pipeline<Merge<S, S2>>
    where
        S2: Stream<Item = S::Item>,
    {
        let (b, info) = self.join_fan_in("merge", other);
        let stream = Merge {
            a: self.stream,
            b,
            a_done: false,
            b_done: false,
            a_first: true,
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
