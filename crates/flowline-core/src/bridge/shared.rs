use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use event_listener::{Event, EventListener};
use futures::task::{ArcWake, AtomicWaker};

use super::TryPushError;
use crate::runtime::Runtime;

/// The queue between the pushing side (any number of [`Feeder`](super::Feeder)s)
/// and the one consuming side ([`Feed`](super::Feed), or a
/// [`Drain`](super::Drain)).
///
/// # Two lanes
///
/// Pushers append to the *current* lane (the gate's `LANE` bit), each push
/// under that lane's lock. The consumer flips the current lane to the other,
/// then takes the whole old lane in one lock. So while a burst flows, the
/// consumer does not wait on the lock the pushers are hammering (a single
/// shared lock made it spin against the pusher on every take, bouncing the
/// lock's cache line on every push: 3–6× slower when both ran on their own
/// cores), and each take costs the pushers a couple of cache misses, not one
/// per push.
///
/// A push re-reads the current lane under its lane's lock and goes to the
/// other lane if a flip came first (the same read tells it whether the queue
/// is closed or stopped: see [`Gate`]). So a lane the consumer has taken gets
/// nothing until the next flip back, and every item in it was pushed before
/// every item pushed after the flip: each pusher's items arrive in push
/// order, and the queue holds at most `capacity` items (the current lane's),
/// as with one lane.
///
/// # Why a burst can never strand an item
///
/// The consumer sleeps only after taking the old lane and finding the
/// current one empty *under its lock*, where it leaves its waker; a push
/// appends and takes that waker under the same lock. So there is no window
/// in which an item is queued while the consumer sleeps with no waker to
/// call, however many pushes land between two wake-ups.
///
/// # Why it is fast
///
/// A push is an uncontended lock, one atomic read (which lane, and whether
/// the queue still accepts), a `Vec::push` and an unlock; it wakes the
/// consumer only when the consumer is actually asleep, i.e. once per burst.
/// The consumer swaps a whole lane out in one lock, so a busy consumer pays
/// the synchronisation once per batch, not once per item. Neither side spins
/// before it sleeps.
#[derive(Debug)]
pub(crate) struct Shared<T> {
    lanes: [Padded<Mutex<Lane<T>>>; 2],
    /// Live `Feeder` handles.
    feeders: AtomicUsize,
    /// Pushers waiting for room, and the run's shutdown signal.
    gate: Arc<Gate>,
    capacity: usize,
    /// The consuming pipeline's runtime, for `push_timeout`'s deadline: set
    /// when the consumer first looks (the run has started); `None` inside
    /// when it has no executor of its own (runtime-free: the real clock).
    clock: OnceLock<Option<Arc<dyn Runtime>>>,
}

/// Keeps the lanes and the gate's state on cache lines of their own: pushers
/// write one lane while the consumer takes the other.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// The part of a queue that does not depend on the item type, so the run's
/// shutdown can reach it through a plain [`Waker`]: woken (by
/// `Lifecycle::stop`), it refuses further pushes, wakes every blocked pusher
/// (they fail and hand their items back) and wakes the consumer, which
/// delivers what was accepted before and then ends.
///
/// # Why no accepted item is stranded
///
/// A push checks `STOPPED` and `CLOSED` under its lane's lock. The
/// consumer ends only when it saw the queue stopped or closed *before*
/// finding both lanes empty under their locks: a push that saw the flags
/// clear has queued its item before that look, or took the lock after it
/// and so sees them set.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// [`LANE`], the lane pushes go to (flipped by the consumer only), and
    /// the flags [`CLOSED`] and [`STOPPED`], which refuse further pushes:
    /// one word, so a push learns where to go and whether it may with a
    /// single read.
    state: Padded<AtomicUsize>,
    /// Pushers waiting for room (or for the queue to close).
    space: Event,
    /// The consumer, woken on stop (it may be asleep on an empty queue).
    consumer: AtomicWaker,
}

/// The bit of [`Gate::state`] that names the lane pushes go to.
const LANE: usize = 1;
/// No more pushes are accepted: closed by a feeder, by the last feeder's
/// drop, or by the consumer's drop.
const CLOSED: usize = 2;
/// The run was shut down (see [`Gate`]).
const STOPPED: usize = 4;

impl Gate {
    // Inlined into a push, even across crates (a push is generic over the
    // item, so it is compiled in the user's crate).
    #[inline]
    fn state(&self) -> usize {
        self.state.0.load(Ordering::Acquire)
    }

    /// Sets `flag` (`CLOSED` or `STOPPED`); `false` if it was set already.
    fn refuse(&self, flag: usize) -> bool {
        self.state.0.fetch_or(flag, Ordering::SeqCst) & flag == 0
    }
}

#[inline]
fn refusing(state: usize) -> bool {
    state & (CLOSED | STOPPED) != 0
}

impl ArcWake for Gate {
    fn wake_by_ref(arc: &Arc<Self>) {
        arc.refuse(STOPPED);
        arc.space.notify(usize::MAX);
        arc.consumer.wake();
    }
}

#[derive(Debug)]
struct Lane<T> {
    queue: Vec<T>,
    /// The consumer, when it found this (current) lane empty and went to
    /// sleep.
    consumer: Option<Waker>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            queue: Vec::new(),
            consumer: None,
        }
    }
}

impl<T> Shared<T> {
    /// A queue with one feeder handle counted.
    pub(crate) fn new(capacity: usize) -> Self {
        Shared {
            lanes: [Padded::default(), Padded::default()],
            feeders: AtomicUsize::new(1),
            gate: Arc::default(),
            capacity,
            clock: OnceLock::new(),
        }
    }

    fn lock(&self, lane: usize) -> MutexGuard<'_, Lane<T>> {
        self.lanes[lane]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The clock `push_timeout` times on: the consuming pipeline's runtime,
    /// once its run has started and if it has an executor; else `None`, the
    /// real clock.
    pub(crate) fn clock(&self) -> Option<Arc<dyn Runtime>> {
        self.clock.get().cloned().flatten()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.lock(0).queue.len() + self.lock(1).queue.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        refusing(self.gate.state())
    }

    /// A waker that stops this queue as a run's shutdown does (see [`Gate`]),
    /// for `Lifecycle::register_source`.
    pub(crate) fn stop_waker(&self) -> Waker {
        futures::task::waker(self.gate.clone())
    }

    /// Locks the current lane for a push, or `None` if the queue refuses
    /// pushes.
    fn lock_current(&self) -> Option<MutexGuard<'_, Lane<T>>> {
        let mut lane = self.gate.state() & LANE;
        loop {
            let state = self.lock(lane);
            // A flip between the read and the lock: this lane may have been
            // taken already; push to the new current one (see `Shared`).
            let now = self.gate.state();
            if now & LANE == lane {
                // Read under the lock: see `Gate`.
                return (!refusing(now)).then_some(state);
            }
            drop(state);
            lane = now & LANE;
        }
    }

    /// Unlocks a lane just pushed to, waking the consumer if it slept on it.
    fn pushed(mut state: MutexGuard<'_, Lane<T>>) {
        let consumer = state.consumer.take();
        drop(state);
        if let Some(waker) = consumer {
            waker.wake();
        }
    }

    pub(crate) fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        let Some(mut state) = self.lock_current() else {
            return Err(TryPushError::Closed(item));
        };
        if state.queue.len() >= self.capacity {
            return Err(TryPushError::Full(item));
        }
        state.queue.push(item);
        Self::pushed(state);
        Ok(())
    }

    /// Moves as many of `items` as there is room for, from the front, in one
    /// lock: at least one, unless the queue is full or refuses pushes (then
    /// `items` is left as it was).
    pub(crate) fn try_push_from(&self, items: &mut VecDeque<T>) -> Result<(), TryPushError<()>> {
        let Some(mut state) = self.lock_current() else {
            return Err(TryPushError::Closed(()));
        };
        let room = self.capacity.saturating_sub(state.queue.len());
        if room == 0 {
            return Err(TryPushError::Full(()));
        }
        state.queue.extend(items.drain(..room.min(items.len())));
        Self::pushed(state);
        Ok(())
    }

    /// A listener for the next time room is made or the queue closes. Create
    /// it *before* re-checking with [`try_push`](Self::try_push), so a take
    /// between the check and the wait is not missed.
    pub(crate) fn listen_for_space(&self) -> EventListener {
        self.gate.space.listen()
    }

    /// Moves `lane`'s items into `batch` (which must be empty), waking the
    /// pushers if it was full. `false` if it was empty.
    fn take(&self, mut state: MutexGuard<'_, Lane<T>>, batch: &mut Vec<T>) -> bool {
        if state.queue.is_empty() {
            return false;
        }
        // Pushers block only on a full lane, and only the consumer makes
        // room, so a taken batch shorter than capacity means nobody waits.
        let was_full = state.queue.len() >= self.capacity;
        // The emptied buffer goes back, keeping its allocation.
        mem::swap(batch, &mut state.queue);
        drop(state);
        if was_full {
            // Room for `capacity` items: wake that many pushers, not a
            // herd. A notified listener dropped unused passes its
            // notification on, so none is lost.
            self.gate.space.notify(self.capacity);
        }
        true
    }

    /// Moves every queued item into `batch` (which must be empty), or registers
    /// the consumer's waker. `Ready(false)` means the queue is closed and empty:
    /// the stream has ended.
    pub(crate) fn poll_take(&self, batch: &mut Vec<T>, cx: &mut Context<'_>) -> Poll<bool> {
        debug_assert!(batch.is_empty());
        if self.clock.get().is_none() {
            // The first look of the consumer: its pipeline's runtime is
            // current now (none when runtime-free, or for a `Drain`'s reader).
            let runtime = crate::time::pipeline_runtime().filter(|rt| rt.has_executor());
            let _ = self.clock.set(runtime);
        }
        // Flip first, then take the old lane: pushes from now on go to the
        // new one, so this take does not wait on the pushers' lock. The
        // flags come with the flip, read before the lanes are seen empty:
        // see `Gate`.
        let state = self.gate.state.0.fetch_xor(LANE, Ordering::AcqRel);
        let ending = refusing(state);
        let old = state & LANE;
        let new = old ^ LANE;
        if self.take(self.lock(old), batch) {
            return Poll::Ready(true);
        }
        // Nothing was pushed since the last flip: look at the lane pushes go
        // to now, and sleep on it if it is empty too.
        let mut state = self.lock(new);
        if !state.queue.is_empty() {
            return Poll::Ready(self.take(state, batch));
        }
        if ending {
            return Poll::Ready(false);
        }
        match &mut state.consumer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        drop(state);
        // A stop or close after the look above wakes this registration.
        self.gate.consumer.register(cx.waker());
        if self.is_closed() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Refuses further pushes; what is queued is still delivered.
    pub(crate) fn close(&self) -> bool {
        let was_open = self.gate.refuse(CLOSED);
        self.wake_all();
        was_open
    }

    pub(crate) fn add_feeder(&self) {
        self.feeders.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops a feeder handle; the last one closes the queue.
    pub(crate) fn remove_feeder(&self) {
        if self.feeders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.gate.refuse(CLOSED);
            self.wake_all();
        }
    }

    /// The consumer is gone: close, and drop what nobody will read.
    pub(crate) fn remove_consumer(&self) {
        self.gate.refuse(CLOSED);
        for lane in 0..2 {
            let mut state = self.lock(lane);
            state.consumer = None;
            let orphans = mem::take(&mut state.queue);
            drop(state);
            drop(orphans); // outside the lock: an item's Drop may do anything
        }
        self.gate.space.notify(usize::MAX);
    }

    /// Wakes the consumer (wherever it left its waker) and every pusher.
    fn wake_all(&self) {
        for lane in 0..2 {
            let consumer = self.lock(lane).consumer.take();
            if let Some(waker) = consumer {
                waker.wake();
            }
        }
        self.gate.consumer.wake();
        self.gate.space.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use futures::task::{waker, ArcWake};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl ArcWake for Count {
        fn wake_by_ref(arc: &Arc<Self>) {
            arc.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn take(shared: &Shared<u32>, cx: &mut Context<'_>) -> Poll<Vec<u32>> {
        let mut batch = Vec::new();
        shared
            .poll_take(&mut batch, cx)
            .map(|more| if more { batch } else { Vec::new() })
    }

    #[test]
    fn lanes_alternate_keep_order_capacity_and_wake_once_per_sleep() {
        let wakes = Arc::new(Count::default());
        let waker = waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let shared = Shared::new(2);
        assert_eq!(shared.try_push(1), Ok(()));
        assert_eq!(shared.try_push(2), Ok(()));
        assert_eq!(shared.try_push(3), Err(TryPushError::Full(3)));
        // The take flips pushes to the other lane, which has room again.
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![1, 2]));
        assert_eq!(shared.try_push(3), Ok(()));
        assert_eq!(shared.len(), 1);
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![3]));
        // Both lanes empty: the consumer sleeps; the first push wakes it, the
        // next ones do not.
        assert_eq!(take(&shared, &mut cx), Poll::Pending);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(shared.try_push(4), Ok(()));
        assert_eq!(shared.try_push(5), Ok(()));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![4, 5]));
        // Closed: what was pushed is delivered, then the end.
        assert_eq!(shared.try_push(6), Ok(()));
        assert!(shared.close());
        assert_eq!(shared.try_push(7), Err(TryPushError::Closed(7)));
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![6]));
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![]));
    }

    #[test]
    fn push_from_moves_what_fits_and_leaves_the_rest() {
        let wakes = Arc::new(Count::default());
        let waker = waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let shared = Shared::new(3);
        assert_eq!(take(&shared, &mut cx), Poll::Pending);
        let mut items: VecDeque<u32> = (1..=5).collect();
        // Room for three: one lock, one wake.
        assert_eq!(shared.try_push_from(&mut items), Ok(()));
        assert_eq!(items, [4, 5]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            shared.try_push_from(&mut items),
            Err(TryPushError::Full(()))
        );
        assert_eq!(items, [4, 5]);
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![1, 2, 3]));
        assert_eq!(shared.try_push_from(&mut items), Ok(()));
        assert!(items.is_empty());
        items.push_back(6);
        shared.close();
        assert_eq!(
            shared.try_push_from(&mut items),
            Err(TryPushError::Closed(()))
        );
        assert_eq!(items, [6]);
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![4, 5]));
        assert_eq!(take(&shared, &mut cx), Poll::Ready(vec![]));
    }
}
