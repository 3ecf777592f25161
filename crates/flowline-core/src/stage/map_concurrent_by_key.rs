use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt as _};
use futures::Stream;
use pin_project_lite::pin_project;

use super::concurrent::{concurrent_stage, ConcurrentOutput, Lanes};
use super::map_concurrent::check_limit;
use crate::run::{Pipeline, StageInfo, StageKind};

pin_project! {
    /// Stream for [`Pipeline::map_concurrent_by_key`]: results in input order
    /// within each key, in completion order across keys.
    #[must_use = "streams do nothing unless polled"]
    pub struct MapConcurrentByKey<T> {
        #[pin]
        queue: ConcurrentOutput<T>,
    }
}

impl<T> fmt::Debug for MapConcurrentByKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapConcurrentByKey")
            .field(&self.queue)
            .finish()
    }
}

impl<T> Stream for MapConcurrentByKey<T> {
    type Item = T;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.project().queue.poll_next(cx)
    }
}

pin_project! {
    /// A future that hands its key back with its output.
    struct Keyed<K, Fut> {
        key: Option<K>,
        #[pin]
        fut: Fut,
    }
}

impl<K, Fut: Future> Future for Keyed<K, Fut> {
    type Output = (K, Fut::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = futures::ready!(this.fut.poll(cx));
        let key = this.key.take().expect("Keyed polled after completion");
        Poll::Ready((key, out))
    }
}

/// One future at a time per key, up to `limit` keys at once.
///
/// A key is *active* while it has an entry in `waiting` (running or not).
/// Futures are created in input order and wait, unpolled, behind the running
/// one of their key; active keys with nothing running queue in `runnable`
/// for a free slot, in the order they became runnable, so a busy key cannot
/// starve the others.
struct KeyedLanes<K, KF, F, Fut> {
    key_fn: KF,
    f: F,
    running: FuturesUnordered<Keyed<K, Fut>>,
    waiting: HashMap<K, VecDeque<Fut>>,
    runnable: VecDeque<K>,
    /// Futures in `waiting`, over all keys.
    queued: usize,
    limit: usize,
}

impl<K, KF, F, Fut> KeyedLanes<K, KF, F, Fut>
where
    K: Hash + Eq + Clone,
{
    fn fill_slots(&mut self) {
        while self.running.len() < self.limit {
            let Some(key) = self.runnable.pop_front() else {
                return;
            };
            let queue = self
                .waiting
                .get_mut(&key)
                .expect("runnable keys are active");
            let fut = queue.pop_front().expect("runnable keys have work");
            self.queued -= 1;
            self.running.push(Keyed {
                key: Some(key),
                fut,
            });
        }
    }
}

impl<T, K, KF, F, Fut> Lanes<T> for KeyedLanes<K, KF, F, Fut>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    KF: FnMut(&T) -> K + Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    type Out = Fut::Output;

    fn has_room(&self, ready: usize) -> bool {
        // `limit` running plus as many waiting behind busy keys.
        self.running.len() + self.queued + ready < 2 * self.limit
    }

    fn start(&mut self, item: T, info: &StageInfo) {
        let key = info.guard(|| (self.key_fn)(&item));
        let fut = info.guard(|| (self.f)(item));
        if let Some(queue) = self.waiting.get_mut(&key) {
            queue.push_back(fut);
            self.queued += 1;
        } else if self.running.len() < self.limit {
            self.waiting.insert(key.clone(), VecDeque::new());
            self.running.push(Keyed {
                key: Some(key),
                fut,
            });
        } else {
            self.waiting.insert(key.clone(), VecDeque::from([fut]));
            self.queued += 1;
            self.runnable.push_back(key);
        }
    }

    fn poll_done(&mut self, cx: &mut Context<'_>, info: &StageInfo) -> Poll<Option<Fut::Output>> {
        let done = info.guard(|| self.running.poll_next_unpin(cx));
        let Poll::Ready(Some((key, out))) = done else {
            return done.map(|_| None);
        };
        if self.waiting.get(&key).is_some_and(|q| !q.is_empty()) {
            self.runnable.push_back(key);
        } else {
            self.waiting.remove(&key);
        }
        self.fill_slots();
        Poll::Ready(Some(out))
    }

    fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queued == 0
    }
}

impl<S: Stream> Pipeline<S> {
    /// Maps each item through the async function `f`, one item at a time per
    /// key, with up to `limit` keys in flight at once.
    ///
    /// `key_fn` gives each item's key. Items of the same key run one after
    /// the other and come out in input order (like a partitioned log: per
    /// account, per user, per file); items of different keys run
    /// concurrently and come out as they finish.
    ///
    /// Like [`map_concurrent`](Self::map_concurrent), the stage is an eager
    /// task of its own whose futures keep progressing while downstream is
    /// busy; `upstream`, `key_fn`, `f`, the keys and the futures must be
    /// `Send + 'static`. It holds at most `limit` running futures and `limit`
    /// more waiting behind busy keys (including finished results not yet
    /// sent): a hot key that fills the waiting room slows upstream until it
    /// catches up.
    ///
    /// # Panics
    ///
    /// If `limit` is 0. A panic in `key_fn`, `f` or a future ends the run with
    /// [`PipelineError::Panicked`](crate::PipelineError::Panicked) naming this
    /// stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let events = [("alice", 1), ("bob", 1), ("alice", 2), ("bob", 2), ("alice", 3)];
    /// let (out, _) = futures::executor::block_on(
    ///     producer::iter(events)
    ///         .map_concurrent_by_key(8, |(user, _)| *user, |(user, n)| async move {
    ///             format!("{user}:{n}")
    ///         })
    ///         .run_collect(),
    /// )
    /// .unwrap();
    /// let alice: Vec<_> = out.iter().filter(|s| s.starts_with("alice")).collect();
    /// assert_eq!(alice, ["alice:1", "alice:2", "alice:3"]);
    /// assert_eq!(out.len(), 5);
    /// ```
    #[track_caller]
    pub fn map_concurrent_by_key<K, KF, F, Fut>(
        mut self,
        limit: usize,
        key_fn: KF,
        f: F,
    ) -> Pipeline<MapConcurrentByKey<Fut::Output>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&S::Item) -> K + Send + 'static,
        F: FnMut(S::Item) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        check_limit(limit, "map_concurrent_by_key", "key_fn, f");
        let info = self
            .core
            .add_stage("map_concurrent_by_key", StageKind::Concurrent);
        let lanes = KeyedLanes {
            key_fn,
            f,
            running: FuturesUnordered::new(),
            waiting: HashMap::new(),
            runnable: VecDeque::new(),
            queued: 0,
            limit,
        };
        let (queue, task) = concurrent_stage(self.stream, lanes, info, self.core.ctx.clone());
        self.core.add_task(task);
        Pipeline::from_parts(MapConcurrentByKey { queue }, self.core)
    }
}
