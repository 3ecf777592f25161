use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream};

use super::upstream::{check_fan, Split, Upstream};
use super::Branch;
use crate::stage::overflow::{Overflow, YIELD_EVERY};
use crate::Pipeline;

impl<S: Stream> Pipeline<S> {
    /// Splits the pipeline into `branches` pipelines, sending each item to
    /// branch `key(&item) % branches`.
    ///
    /// Each branch has its own queue of `capacity` items with backpressure:
    /// a full branch holds up the upstream (and so the other branches), which
    /// keeps every item and the order within a branch. Items for a branch
    /// that was dropped are counted as `dropped` in its stage
    /// (`partition#<n>.<branch>`).
    ///
    /// The upstream runs as one task shared by the branches (see
    /// [`stage::fan`](crate::stage::fan)): run the branches concurrently or
    /// spawn them, with the same runtime on every branch. When every branch is
    /// dropped the upstream is cancelled.
    ///
    /// # Errors
    ///
    /// An upstream failure, or a panic in `key` (reported for stage
    /// `partition#<n>`), ends every branch's run with that error.
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
    /// let [even, odd]: [_; 2] = producer::iter(1..=7u32)
    ///     .partition(2, 4, |x| *x as usize)
    ///     .try_into()
    ///     .unwrap();
    /// let (even, odd) = futures::executor::block_on(async {
    ///     futures::join!(even.run_collect(), odd.run_collect())
    /// });
    /// assert_eq!(even.unwrap().0, [2, 4, 6]);
    /// assert_eq!(odd.unwrap().0, [1, 3, 5, 7]);
    /// ```
    pub fn partition<F>(
        self,
        branches: usize,
        capacity: usize,
        mut key: F,
    ) -> Vec<Pipeline<Branch<S::Item>>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
        F: FnMut(&S::Item) -> usize + Send + 'static,
    {
        check_fan("partition", branches, capacity, ", key");
        let split = Split::new(&self.core, "partition", branches);
        let (mut senders, receivers) =
            split.queues(vec![(capacity, Overflow::Backpressure); branches]);
        let infos = split.infos.clone();
        infos.iter().for_each(|info| info.set_counts_in());
        let mut upstream = Upstream::new(self, YIELD_EVERY);
        let ending = split.ending();
        let task = async move {
            let ran = AssertUnwindSafe(async {
                let mut open = branches;
                let flush_all = |senders: &mut Vec<crate::queue::Sender<_>>| {
                    senders.iter_mut().for_each(|tx| drop(tx.flush()));
                };
                while let Some(item) = upstream.next(|| flush_all(&mut senders)).await {
                    let i = key(&item) % branches;
                    // Routed to branch `i`: its input, whether or not it is there.
                    infos[i].routed_in.add(1);
                    if upstream.send(&mut senders, i, item).await.is_err() {
                        // The branch was dropped: left out by design.
                        infos[i].discarded.add(1);
                        open = senders.iter().filter(|tx| !tx.is_closed()).count();
                    }
                    if open == 0 {
                        return; // every branch is gone: cancel the upstream
                    }
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
