use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::{FutureExt, Stream};

use super::upstream::{check_fan, Driven, Split};
use super::Branch;
use crate::stage::overflow::Overflow;
use crate::Pipeline;

impl<S: Stream> Pipeline<S> {
    /// Splits the pipeline into `branches` worker pipelines that share the
    /// items: each item goes to exactly one branch, whichever asks first.
    ///
    /// The branches take from one queue of `capacity` items, so a busy worker
    /// never holds up an idle one, and a stalled set of workers slows the
    /// upstream (backpressure; nothing is dropped). Each branch's stage
    /// (`balance#<n>.<branch>`) counts the items that branch took; its
    /// `items_in` is every item that entered the fan-out.
    ///
    /// The upstream runs as one task shared by the branches (see
    /// [`stage::fan`](crate::stage::fan)): run the branches concurrently or
    /// spawn them, with the same runtime on every branch. A dropped branch
    /// stops taking items; when every branch is dropped the upstream is
    /// cancelled.
    ///
    /// # Errors
    ///
    /// An upstream failure ends every branch's run with that error.
    ///
    /// # Panics
    ///
    /// If `branches` or `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let workers = producer::iter(1..=100u64).balance(3, 8);
    /// let runs = futures::executor::block_on(futures::future::join_all(
    ///     workers.into_iter().map(|w| w.map(|x| x * 2).run_fold(0, |a, x| a + x)),
    /// ));
    /// let total: u64 = runs.into_iter().map(|r| r.unwrap().0).sum();
    /// assert_eq!(total, 10_100);
    /// ```
    pub fn balance(self, branches: usize, capacity: usize) -> Vec<Pipeline<Branch<S::Item>>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
    {
        check_fan("balance", branches, capacity, "");
        let mut split = Split::new(&self.core, "balance", branches);
        split.shared = true;
        // One queue, one receiver per worker: each batch goes to one of them.
        let (mut senders, mut receivers) = split.queues([(capacity, Overflow::Backpressure)]);
        let first = receivers.remove(0);
        receivers = split.contexts[1..]
            .iter()
            .map(|ctx| first.another(ctx.clone()))
            .collect();
        receivers.insert(0, first);
        // The upstream feeds the one queue as a boundary's task feeds its
        // queue: pumped a batch at a time when its stages can, else item by
        // item; sending a batch as soon as upstream would wait.
        let (mut upstream, poll_batch) = Driven::new(self);
        let ending = split.ending();
        let task = async move {
            let ran = AssertUnwindSafe(async {
                let pumped = senders[0].pump_with(Pin::new(&mut upstream), poll_batch);
                if pumped.await.is_err() {
                    return; // every branch is gone: cancel the upstream
                }
                upstream.finish().await;
            })
            .catch_unwind()
            .await;
            ending.finish(ran, senders);
        };
        split.into_branches(receivers, task)
    }
}
