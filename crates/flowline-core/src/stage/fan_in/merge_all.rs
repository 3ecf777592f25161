use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::merge::{poll_in_turn, poll_input};
use crate::run::{StageInfo, StageKind};
use crate::Pipeline;

/// Stream for [`merge_all`](crate::producer::merge_all).
#[must_use = "streams do nothing unless polled"]
pub struct MergeAll<S> {
    inputs: Vec<(Pin<Box<S>>, bool)>,
    next: usize,
    info: Arc<StageInfo>,
}

impl<S> fmt::Debug for MergeAll<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.inputs.iter().filter(|(_, done)| !done).count();
        f.debug_struct("MergeAll")
            .field("inputs", &self.inputs.len())
            .field("open", &open)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for MergeAll<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        let n = this.inputs.len();
        // Round robin: the input after the one that gave the last item goes first.
        let next = this.next;
        let inputs = &mut this.inputs;
        let polled = poll_in_turn((0..n).map(|k| (next + k) % n), |i| {
            let (stream, done) = &mut inputs[i];
            poll_input(stream.as_mut(), done, cx)
        });
        match futures::ready!(polled) {
            Some((i, item)) => {
                this.next = (i + 1) % n;
                this.info.out.bump();
                Poll::Ready(Some(item))
            }
            None => Poll::Ready(None),
        }
    }
}

/// Merges several pipelines into one, fairly: inputs take turns when several
/// have an item ready, the order within each input is kept, and the merged
/// pipeline ends when every input has ended.
///
/// As with [`Pipeline::merge`], the inputs' stages and tasks join the merged
/// pipeline: one runtime, one report (the `merge_all#<n>` stage lists every
/// input), and an error in any input ends the run. The inputs must have the
/// same stream type; box them (`.into_pipeline()` on a
/// `futures::stream::BoxStream`) to merge different ones.
///
/// # Panics
///
/// If `pipelines` is empty: there would be nothing to merge.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let inputs = (0..3u32).map(|i| producer::iter(i * 10..i * 10 + 3));
/// let (mut out, report) = futures::executor::block_on(producer::merge_all(inputs).run_collect()).unwrap();
/// out.sort();
/// assert_eq!(out, [0, 1, 2, 10, 11, 12, 20, 21, 22]);
/// assert_eq!(report.delivered(), 9);
/// ```
#[track_caller]
pub fn merge_all<S: Stream>(
    pipelines: impl IntoIterator<Item = Pipeline<S>>,
) -> Pipeline<MergeAll<S>> {
    let mut pipelines = pipelines.into_iter();
    let Some(first) = pipelines.next() else {
        crate::rejection::reject(format_args!(
            "merge_all needs at least 1 pipeline, got none; \
             pass the pipelines to merge, e.g. producer::merge_all([first, second])"
        ));
    };
    let Pipeline {
        stream, mut core, ..
    } = first;
    let mut inputs = vec![(Box::pin(stream), false)];
    let mut lasts = Vec::new();
    for other in pipelines {
        let Pipeline {
            stream,
            core: other,
            ..
        } = other;
        lasts.push(core.absorb(other));
        inputs.push((Box::pin(stream), false));
    }
    let info = core.add_joining_stage("merge_all", StageKind::FanIn, &lasts);
    Pipeline::from_parts(
        MergeAll {
            inputs,
            next: 0,
            info,
        },
        core,
    )
}
