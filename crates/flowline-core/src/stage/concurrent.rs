//! The engine shared by the `map_concurrent*` stages: an eager task that
//! pulls upstream, keeps up to `limit` futures in flight and pushes their
//! results through a [`batch_queue`] to downstream.
//!
//! The task polls its in-flight futures *while it waits to hand results on*,
//! so they keep progressing however long downstream takes per item. This is
//! what `futures::StreamExt::buffered` does not do: its futures are polled
//! only when the consumer asks for the next item, so a consumer that awaits
//! in its loop body stalls them (and whatever timeouts they run under).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};

use super::batch_queue::{batch_queue, BatchQueue};
use crate::run::{RunContext, StageInfo};

/// Most results moved downstream in one batch.
const MAX_BATCH: usize = 256;

/// Items pulled from upstream per poll before yielding, so an endless ready
/// upstream cannot monopolise the task.
const BUDGET: usize = 1024;

/// A set of in-flight futures: how a concurrent stage starts work and which
/// order its results come out in.
pub(crate) trait Lanes<In>: Send + 'static {
    /// Results handed downstream.
    type Out: Send + 'static;

    /// Whether another item may be taken while `ready` results wait to be sent.
    fn has_room(&self, ready: usize) -> bool;

    /// Starts the work for `item` (calls user code).
    fn start(&mut self, item: In, info: &StageInfo);

    /// The next finished result; `Ready(None)` when nothing is in flight.
    fn poll_done(&mut self, cx: &mut Context<'_>, info: &StageInfo) -> Poll<Option<Self::Out>>;

    /// Whether no work is in flight.
    fn is_idle(&self) -> bool;
}

/// Spawnable state of one concurrent stage: upstream, the lanes and the
/// finished results waiting to be sent.
struct Engine<S: Stream, L: Lanes<S::Item>> {
    upstream: S,
    lanes: L,
    ready: VecDeque<L::Out>,
    upstream_done: bool,
    info: Arc<StageInfo>,
}

impl<S, L> Engine<S, L>
where
    S: Stream + Unpin,
    L: Lanes<S::Item>,
{
    /// Takes what upstream has ready into the lanes and collects finished
    /// results into `ready`, until neither makes progress.
    fn progress(&mut self, cx: &mut Context<'_>) {
        let mut budget = BUDGET;
        loop {
            while !self.upstream_done && self.lanes.has_room(self.ready.len()) {
                match std::pin::Pin::new(&mut self.upstream).poll_next(cx) {
                    Poll::Ready(Some(item)) => self.lanes.start(item, &self.info),
                    Poll::Ready(None) => self.upstream_done = true,
                    Poll::Pending => break,
                }
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    break;
                }
            }
            let before = self.ready.len();
            while let Poll::Ready(Some(out)) = self.lanes.poll_done(cx, &self.info) {
                self.ready.push_back(out);
            }
            // Finished work freed room: take more from upstream, unless the
            // budget is spent (the wake above brings us back).
            if self.ready.len() == before || budget == 0 {
                return;
            }
        }
    }

    fn finished(&self) -> bool {
        self.upstream_done && self.lanes.is_idle() && self.ready.is_empty()
    }

    fn take_batch(&mut self) -> Vec<L::Out> {
        let n = self.ready.len().min(MAX_BATCH);
        self.ready.drain(..n).collect()
    }
}

/// Builds a concurrent stage over `upstream`: the stream of results and the
/// task that produces them.
pub(crate) fn concurrent_stage<S, L>(
    upstream: S,
    lanes: L,
    info: Arc<StageInfo>,
    ctx: Arc<RunContext>,
) -> (BatchQueue<L::Out>, BoxFuture<'static, ()>)
where
    S: Stream + Send + 'static,
    L: Lanes<S::Item>,
{
    // One queued batch: results beyond it wait in `ready`, which the lanes
    // bound by the limit, so memory stays bounded by a few × limit.
    let (tx, queue) = batch_queue(1, info.clone());
    let fallback = info.clone();
    let task = async move {
        let run = async move {
            let mut engine = Engine {
                upstream: Box::pin(upstream),
                lanes,
                ready: VecDeque::new(),
                upstream_done: false,
                info,
            };
            loop {
                poll_fn(|cx| {
                    engine.progress(cx);
                    if engine.ready.is_empty() && !engine.finished() {
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
                if engine.finished() {
                    return;
                }
                let batch = engine.take_batch();
                let mut send = pin!(tx.send(batch));
                // Keep the in-flight futures moving while downstream is busy.
                let sent = poll_fn(|cx| {
                    engine.progress(cx);
                    send.as_mut().poll(cx)
                })
                .await;
                if sent.is_err() {
                    return; // downstream is gone
                }
            }
        };
        if let Err(payload) = AssertUnwindSafe(run).catch_unwind().await {
            ctx.fail_with_panic(&*payload, &fallback.name());
        }
    }
    .boxed();
    (queue, task)
}
