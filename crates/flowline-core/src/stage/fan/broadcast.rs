use futures::Stream;

use super::upstream::{check_branches, Split, Upstream};
use super::Branch;
use crate::run::PipelineError;
use crate::stage::overflow::{check_capacity, offer, Offered, Overflow, Overflowed};
use crate::Pipeline;

impl<S: Stream> Pipeline<S> {
    /// Splits the pipeline into `branches` pipelines that each receive a clone
    /// of every item.
    ///
    /// Each branch has its own queue of `capacity` items and applies
    /// `overflow` when it is full. With [`Overflow::Backpressure`] the slowest
    /// branch sets the pace of all; with a drop policy a slow branch loses
    /// items (counted in its stage's `dropped`) and the others run at their
    /// own pace; with [`Overflow::Fail`] a branch that falls `capacity` items
    /// behind fails its own run while the others go on.
    ///
    /// The upstream runs as one task shared by the branches (see
    /// [`stage::fan`](crate::stage::fan)): run the branches concurrently, for
    /// example with `futures::join!`, or spawn them. Set the same runtime on
    /// every branch; it is also the upstream's. A branch that is dropped stops
    /// receiving; when every branch is dropped the upstream is cancelled.
    /// Branch stages are named `broadcast#<n>.<branch>`; each branch's report
    /// lists the upstream stages too.
    ///
    /// # Errors
    ///
    /// An upstream failure (a panic in upstream code) ends every branch's run
    /// with that error. With [`Overflow::Fail`], the branch that overflowed
    /// fails with [`PipelineError::Failed`] naming its stage.
    ///
    /// # Panics
    ///
    /// If `branches` or `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, stage::Overflow};
    ///
    /// let [evens, total]: [_; 2] = producer::iter(1..=6u32)
    ///     .broadcast(2, 16, Overflow::Backpressure)
    ///     .try_into()
    ///     .unwrap();
    /// let (evens, total) = futures::executor::block_on(async {
    ///     futures::join!(evens.filter(|x| x % 2 == 0).collect(), total.fold(0, |a, x| a + x))
    /// });
    /// assert_eq!(evens.unwrap().0, [2, 4, 6]);
    /// assert_eq!(total.unwrap().0, 21);
    /// ```
    pub fn broadcast(
        self,
        branches: usize,
        capacity: usize,
        overflow: Overflow,
    ) -> Vec<Pipeline<Branch<S::Item>>>
    where
        S: Send + 'static,
        S::Item: Clone + Send + 'static,
    {
        check_branches("broadcast", branches);
        check_capacity("broadcast", capacity);
        let split = Split::new(&self.core, "broadcast", branches);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..branches)
            .map(|_| async_channel::bounded(capacity))
            .unzip();
        let contexts = split.contexts.clone();
        let infos = split.infos.clone();
        let mut upstream = Upstream::new(self);
        let task = async move {
            let mut senders: Vec<_> = senders.into_iter().map(Some).collect();
            while let Some(item) = upstream.next().await {
                for (i, slot) in senders.iter_mut().enumerate() {
                    let Some(tx) = slot else { continue };
                    let offered = upstream.wait(offer(tx, item.clone(), overflow, &infos[i])).await;
                    match offered {
                        Offered::Done => {}
                        Offered::Closed => *slot = None,
                        Offered::Overflowed => {
                            contexts[i].fail(PipelineError::Failed {
                                stage: infos[i].name(),
                                source: Box::new(Overflowed { capacity }),
                            });
                            *slot = None;
                        }
                    }
                }
                if senders.iter().all(Option::is_none) {
                    return; // every branch is gone: cancel the upstream
                }
            }
            upstream.finish().await;
        };
        split.into_branches(receivers, task)
    }
}
