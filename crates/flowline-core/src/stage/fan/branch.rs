use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use crate::queue::{BatchOut, Receiver};
use crate::run::StageInfo;

/// Stream of one branch of a fan-out
/// ([`broadcast`](crate::Pipeline::broadcast),
/// [`balance`](crate::Pipeline::balance),
/// [`partition`](crate::Pipeline::partition)): the receiving end of the
/// branch's queue.
#[must_use = "streams do nothing unless polled"]
pub struct Branch<T> {
    rx: Receiver<T>,
    info: Arc<StageInfo>,
    // Takes from a queue its siblings share (`balance`): it counts what it
    // takes as its input.
    shared: bool,
}

impl<T> Branch<T> {
    /// A branch reading `rx`; `shared` if its siblings read the same queue
    /// (then what it took is what went in).
    pub(crate) fn new(rx: Receiver<T>, info: Arc<StageInfo>, shared: bool) -> Self {
        if shared {
            info.set_counts_in();
        }
        Branch { rx, info, shared }
    }
}

impl<T> Branch<T> {
    /// The queue's batch in hand, handed over whole where it fits (see
    /// [`PollBatch`](crate::queue::PollBatch)).
    pub(crate) fn poll_batch(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut dyn BatchOut<Self>,
        max: usize,
    ) -> Poll<bool> {
        let this = &mut *self;
        let out = out.items();
        let before = out.len();
        let more = futures::ready!(this.rx.poll_batch(cx, out, max));
        let taken = (out.len() - before) as u64;
        if this.shared {
            this.info.routed_in.add(taken);
        }
        this.info.out.bump_by(taken);
        Poll::Ready(more)
    }
}

impl<T> fmt::Debug for Branch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Branch")
            .field("stage", &self.info.name())
            .field("queued", &self.rx.queued())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for Branch<T> {
    type Item = T;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let item = futures::ready!(Pin::new(&mut this.rx).poll_next(cx));
        if item.is_some() && this.shared {
            this.info.routed_in.add(1);
        }
        Poll::Ready(this.info.emit(item))
    }
}
