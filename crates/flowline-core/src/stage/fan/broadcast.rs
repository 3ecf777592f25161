use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream};

use super::upstream::{check_fan, Split, Upstream};
use super::Branch;
use crate::run::{End, PipelineError};
use crate::stage::overflow::{offer, yield_every, Offered, Overflow, Overflowed, YIELD_EVERY};
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
    ///     futures::join!(evens.filter(|x| x % 2 == 0).run_collect(), total.run_fold(0, |a, x| a + x))
    /// });
    /// assert_eq!(evens.unwrap().0, [2, 4, 6]);
    /// assert_eq!(total.unwrap().0, 21);
    /// ```
    #[track_caller]
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
        let rest = format!(", {}", crate::rejection::overflow_expr(overflow));
        check_fan("broadcast", branches, capacity, &rest);
        self.broadcast_with(vec![(capacity, overflow); branches])
    }

    /// [`broadcast`](Self::broadcast) with a queue of its own size and
    /// overflow policy for each branch: one branch per `(capacity, overflow)`.
    ///
    /// The usual mix is [`Overflow::Backpressure`] for the branches that must
    /// see every item (they set the pace) and a drop policy for a branch that
    /// may fall behind (a live view, a sampler) without slowing the others.
    ///
    /// # Errors
    ///
    /// As [`broadcast`](Self::broadcast).
    ///
    /// # Panics
    ///
    /// If `queues` is empty or a capacity is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{producer, stage::Overflow};
    ///
    /// let [all, latest]: [_; 2] = producer::iter(0..1000u32)
    ///     .broadcast_with([(16, Overflow::Backpressure), (4, Overflow::DropOldest)])
    ///     .try_into()
    ///     .unwrap();
    /// let (all, latest) = futures::executor::block_on(async {
    ///     futures::join!(all.run_count(), latest.run_collect())
    /// });
    /// assert_eq!(all.unwrap().0, 1000);
    /// let (latest, report) = latest.unwrap();
    /// let stage = report.stage("broadcast#1.1").unwrap();
    /// assert_eq!(latest.len() as u64 + stage.dropped, 1000);
    /// ```
    #[track_caller]
    pub fn broadcast_with(
        self,
        queues: impl IntoIterator<Item = (usize, Overflow)>,
    ) -> Vec<Pipeline<Branch<S::Item>>>
    where
        S: Send + 'static,
        S::Item: Clone + Send + 'static,
    {
        let queues: Vec<(usize, Overflow)> = queues.into_iter().collect();
        let branches = queues.len();
        check_queues(&queues);
        let split = Split::new(&self.core, "broadcast", branches);
        let (mut senders, receivers) = split.queues(queues.iter().copied());
        let contexts = split.contexts.clone();
        let infos = split.infos.clone();
        let every = queues
            .iter()
            .map(|&(capacity, overflow)| yield_every(capacity, overflow))
            .min()
            .unwrap_or(YIELD_EVERY);
        let mut upstream = Upstream::new(self, every);
        let ending = split.ending();
        let task = async move {
            let ran = AssertUnwindSafe(async {
                // Branches still taking items (a closed or failed one is not).
                let mut live = vec![true; senders.len()];
                while let Some(item) = upstream
                    .next(|| senders.iter_mut().for_each(|tx| drop(tx.flush())))
                    .await
                {
                    for i in 0..senders.len() {
                        if !live[i] {
                            // The branch was dropped (or failed): its copy is
                            // left out by design.
                            infos[i].discarded.add(1);
                            continue;
                        }
                        let overflow = queues[i].1;
                        let offered = if overflow == Overflow::Backpressure {
                            match upstream.send(&mut senders, i, item.clone()).await {
                                Ok(()) => Offered::Done,
                                Err(_closed) => Offered::Closed,
                            }
                        } else {
                            let offered =
                                offer(&mut senders[i], item.clone(), overflow, &infos[i]).await;
                            upstream.fed(&mut senders[i]);
                            offered
                        };
                        match offered {
                            Offered::Done => {}
                            Offered::Closed => {
                                infos[i].discarded.add(1);
                                live[i] = false;
                            }
                            Offered::Overflowed => {
                                contexts[i].fail(PipelineError::failed(
                                    infos[i].name(),
                                    Box::new(Overflowed {
                                        capacity: queues[i].0,
                                    }),
                                ));
                                // Its run fails; the others go on.
                                live[i] = false;
                                senders[i].end(End::Failed);
                            }
                        }
                    }
                    if !live.contains(&true) {
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

/// The check of [`broadcast_with`](Pipeline::broadcast_with): at least one
/// queue, none of capacity 0. The suggested call keeps every queue, with 64
/// in place of a zero capacity.
#[track_caller]
fn check_queues(queues: &[(usize, Overflow)]) {
    use crate::rejection::{or_typical, overflow_expr, reject};
    if queues.is_empty() {
        reject(format_args!(
            "broadcast_with needs at least 1 branch, got 0; \
             pass one (capacity, overflow) per branch pipeline to return, \
             e.g. .broadcast_with([(64, Overflow::Backpressure), (64, Overflow::Backpressure)])"
        ));
    }
    if let Some(branch) = queues.iter().position(|&(capacity, _)| capacity == 0) {
        let fixed: Vec<String> = queues
            .iter()
            .map(|&(capacity, overflow)| {
                format!(
                    "({}, {})",
                    or_typical(capacity, 64),
                    overflow_expr(overflow)
                )
            })
            .collect();
        reject(format_args!(
            "broadcast_with capacity of branch {branch} must be at least 1, got 0; \
             pass the number of items each branch's queue may hold, e.g. .broadcast_with([{}])",
            fixed.join(", ")
        ));
    }
}
