use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::{EventListener, Listener as _};
use futures::Sink;

use super::deadline::{self, Deadline};
use super::shared::Shared;
use super::{PushError, PushTimeoutError, TryPushError};

/// The pushing end of a sync → async bridge: plain synchronous code (a
/// callback, another thread, FFI, a GUI loop) hands items to a pipeline.
///
/// Made by [`bridge::feeder`](super::feeder) together with the pipeline it
/// feeds. Clone it for as many producers as you like; every clone feeds the
/// same pipeline, and each clone's items arrive in the order it pushed them.
///
/// - [`push`](Self::push) blocks the calling thread while the feeder is full
///   (backpressure), [`push_all`](Self::push_all) does the same for a batch
///   (one lock per run of items that fit), [`try_push`](Self::try_push)
///   never blocks,
///   [`push_timeout`](Self::push_timeout) blocks for at most a while;
/// - [`send`](Self::send) is the async version, for async code;
/// - every failure hands the item back.
///
/// The stream ends — after every item already pushed has been delivered —
/// when [`close`](Self::close) is called, the last `Feeder` is dropped, or
/// the run it feeds is shut down
/// ([`PipelineHandle::shutdown`](crate::PipelineHandle::shutdown), which
/// closes the feeder as `close` does).
///
/// # Caveats
///
/// **Do not call [`push`](Self::push) or [`push_timeout`](Self::push_timeout)
/// from async code.** They block the thread, and on an executor thread that
/// can stall other tasks — or deadlock, when the blocked thread is the one
/// that would run the consuming pipeline (always the case on a single-threaded
/// executor). From async code use [`send(item).await`](Self::send), which
/// waits without blocking; [`try_push`](Self::try_push) is fine anywhere.
///
/// # Examples
///
/// ```
/// use flowline_core::bridge;
///
/// let (feeder, pipeline) = bridge::feeder(16);
/// let producer = std::thread::spawn(move || {
///     for n in 0..100u32 {
///         feeder.push(n).unwrap(); // blocks while the pipeline is behind
///     }
///     // dropping the last feeder ends the stream
/// });
/// let (sum, report) = futures::executor::block_on(pipeline.run_fold(0, |a, n| a + n)).unwrap();
/// producer.join().unwrap();
/// assert_eq!(sum, 4950);
/// assert_eq!(report.delivered(), 100);
/// ```
pub struct Feeder<T> {
    shared: Arc<Shared<T>>,
    /// State of this handle's [`Sink`] impl: the item `start_send` could
    /// not push yet, and the listener for room. Behind a lock only so that
    /// `Feeder` stays `Sync`; the `Sink` methods take `&mut self` and never
    /// lock it.
    sink: Mutex<SinkSlot<T>>,
}

/// See [`Feeder`]'s `sink` field.
struct SinkSlot<T> {
    pending: Option<T>,
    listener: Option<EventListener>,
    /// Set once `poll_close` retired this handle: its drop no longer counts.
    retired: bool,
}

impl<T> Default for SinkSlot<T> {
    fn default() -> Self {
        SinkSlot {
            pending: None,
            listener: None,
            retired: false,
        }
    }
}

impl<T> Feeder<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Feeder {
            shared,
            sink: Mutex::default(),
        }
    }

    /// Pushes `item`, blocking the calling thread while the feeder is full.
    ///
    /// # Errors
    ///
    /// [`PushError`] with the item if the feeder is closed, or becomes closed
    /// while this call waits (a blocked `push` wakes up at once). Shutting
    /// the run down closes it.
    ///
    /// # Caveats
    ///
    /// Blocks the thread: never call it from async code, use
    /// [`send`](Self::send) there (see the [type-level caveat](Self#caveats)).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder(4);
    /// feeder.push("hello").unwrap();
    /// drop(feeder);
    /// let (items, _) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    /// assert_eq!(items, ["hello"]);
    /// ```
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        let mut item = item;
        loop {
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushError(item)),
                Err(TryPushError::Full(item)) => item,
            };
            let listener = self.shared.listen_for_space();
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushError(item)),
                Err(TryPushError::Full(item)) => item,
            };
            listener.wait();
        }
    }

    /// Pushes every item of `items`, in order, blocking the calling thread
    /// while the feeder is full: [`push`](Self::push) for a batch, which
    /// takes the feeder's lock (and wakes the pipeline) once per run of items
    /// that fit rather than once per item.
    ///
    /// The items arrive in order, after those this handle pushed before;
    /// items of other pushers may land between two runs. At most
    /// [`capacity`](Self::capacity) items are taken from `items` ahead of
    /// the room for them.
    ///
    /// # Errors
    ///
    /// [`PushError`] with every item not pushed, in order — the rest of
    /// `items` included, so pass a finite collection — if the feeder is or
    /// becomes closed. The items pushed before are delivered.
    ///
    /// # Caveats
    ///
    /// Blocks the thread, like [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder(4);
    /// let producer = std::thread::spawn(move || {
    ///     // A callback handing over a buffer of readings at a time.
    ///     for buffer in [vec![1, 2, 3], vec![4, 5, 6, 7, 8, 9]] {
    ///         feeder.push_all(buffer).unwrap(); // blocks while the pipeline is behind
    ///     }
    ///     feeder.close();
    ///     // Closed: the items come back, in order.
    ///     assert_eq!(feeder.push_all([10, 11]).unwrap_err().into_inner(), [10, 11]);
    /// });
    /// let (items, _) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    /// producer.join().unwrap();
    /// assert_eq!(items, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    /// ```
    pub fn push_all<I: IntoIterator<Item = T>>(&self, items: I) -> Result<(), PushError<Vec<T>>> {
        let mut items = items.into_iter();
        // Taken from `items` outside the feeder's lock: the iterator's code
        // (which may push to this feeder too) never runs under it.
        let mut ready = VecDeque::new();
        loop {
            let room = self.shared.capacity() - ready.len();
            ready.extend(items.by_ref().take(room));
            if ready.is_empty() {
                return Ok(());
            }
            let mut pushed = self.shared.try_push_from(&mut ready);
            if pushed.as_ref().is_err_and(TryPushError::is_full) {
                // Listen, then try again: room made in between is not missed.
                let listener = self.shared.listen_for_space();
                pushed = self.shared.try_push_from(&mut ready);
                if pushed.as_ref().is_err_and(TryPushError::is_full) {
                    listener.wait();
                }
            }
            if pushed.as_ref().is_err_and(TryPushError::is_closed) {
                let mut rest = Vec::from(ready);
                rest.extend(items);
                return Err(PushError(rest));
            }
        }
    }

    /// Pushes `item` if there is room right now; never blocks.
    ///
    /// # Errors
    ///
    /// [`TryPushError::Full`] or [`TryPushError::Closed`], with the item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge::{self, TryPushError};
    ///
    /// let (feeder, _pipeline) = bridge::feeder(1);
    /// assert_eq!(feeder.try_push('a'), Ok(()));
    /// assert_eq!(feeder.try_push('b'), Err(TryPushError::Full('b')));
    /// ```
    pub fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        self.shared.try_push(item)
    }

    /// Pushes `item`, blocking the calling thread for at most `timeout` while
    /// the feeder is full.
    ///
    /// The timeout is measured on the clock of the pipeline the feeder feeds,
    /// once its run has started (`Runtime::now`, waiting on the runtime's
    /// timer): on a virtual clock (the test kit's, tokio's paused one) it
    /// ends in virtual time. A runtime-free pipeline, or one not started
    /// yet, has the real clock. No clock is read and no timer made when
    /// there is room at once.
    ///
    /// # Errors
    ///
    /// [`PushTimeoutError::Timeout`] if there was no room in time,
    /// [`PushTimeoutError::Closed`] if the feeder is or becomes closed; both
    /// with the item.
    ///
    /// # Caveats
    ///
    /// Blocks the thread, like [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::bridge::{self, PushTimeoutError};
    ///
    /// let (feeder, _pipeline) = bridge::feeder(1);
    /// feeder.push_timeout(1, Duration::from_millis(5)).unwrap();
    /// let full = feeder.push_timeout(2, Duration::from_millis(5));
    /// assert_eq!(full, Err(PushTimeoutError::Timeout(2)));
    /// ```
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        let mut item = match self.shared.try_push(item) {
            Ok(()) => return Ok(()),
            Err(TryPushError::Closed(item)) => return Err(PushTimeoutError::Closed(item)),
            Err(TryPushError::Full(item)) => item,
        };
        // Full: only now read a clock (and, on a runtime, make a timer).
        let mut deadline = Deadline::after(timeout, self.shared.clock());
        loop {
            let mut listener = self.shared.listen_for_space();
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushTimeoutError::Closed(item)),
                Err(TryPushError::Full(item)) => item,
            };
            if !deadline::wait(&mut listener, &mut deadline) {
                // One last look: room may have been made just now.
                return self.shared.try_push(item).map_err(|e| match e {
                    TryPushError::Full(item) => PushTimeoutError::Timeout(item),
                    TryPushError::Closed(item) => PushTimeoutError::Closed(item),
                });
            }
            // The run may have started while this call waited.
            deadline.follow(self.shared.clock());
        }
    }

    /// Pushes `item` from async code, waiting (without blocking the thread)
    /// while the feeder is full.
    ///
    /// # Errors
    ///
    /// [`PushError`] with the item if the feeder is or becomes closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder(2);
    /// let (items, _) = futures::executor::block_on(async move {
    ///     let producer = async move {
    ///         for n in 0..5 {
    ///             feeder.send(n).await.unwrap();
    ///         }
    ///     };
    ///     let (items, _) = futures::join!(pipeline.run_collect(), producer);
    ///     items
    /// })
    /// .unwrap();
    /// assert_eq!(items, [0, 1, 2, 3, 4]);
    /// ```
    pub async fn send(&self, item: T) -> Result<(), PushError<T>> {
        let mut item = item;
        loop {
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushError(item)),
                Err(TryPushError::Full(item)) => item,
            };
            let listener = self.shared.listen_for_space();
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushError(item)),
                Err(TryPushError::Full(item)) => item,
            };
            listener.await;
        }
    }

    /// Closes the feeder for every clone: further pushes fail, pushes blocked
    /// now wake up and fail (handing their items back), and the pipeline ends
    /// after delivering every item pushed before. Returns `false` if it was
    /// already closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder(4);
    /// let other = feeder.clone();
    /// feeder.push(1).unwrap();
    /// assert!(feeder.close());
    /// assert!(other.push(2).is_err());
    /// let (items, _) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    /// assert_eq!(items, [1]);
    /// ```
    pub fn close(&self) -> bool {
        self.shared.close()
    }

    /// Whether the feeder is closed (by [`close`](Self::close), because the
    /// pipeline was dropped, or because its run was shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, pipeline) = bridge::feeder::<u8>(4);
    /// assert!(!feeder.is_closed());
    /// drop(pipeline);
    /// assert!(feeder.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Items pushed and not yet taken by the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, _pipeline) = bridge::feeder(4);
    /// feeder.push(()).unwrap();
    /// assert_eq!((feeder.len(), feeder.capacity()), (1, 4));
    /// ```
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no pushed item is waiting for the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, _pipeline) = bridge::feeder::<u8>(4);
    /// assert!(feeder.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items may wait before [`push`](Self::push) blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::bridge;
    ///
    /// let (feeder, _pipeline) = bridge::feeder::<u8>(8);
    /// assert_eq!(feeder.capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}

impl<T> Clone for Feeder<T> {
    fn clone(&self) -> Self {
        self.shared.add_feeder();
        Feeder::new(self.shared.clone())
    }
}

impl<T> Drop for Feeder<T> {
    fn drop(&mut self) {
        let slot = self.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !slot.retired {
            self.shared.remove_feeder();
        }
    }
}

impl<T> Feeder<T> {
    /// Pushes the item `start_send` left pending, waiting for room.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        let slot = self.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        while let Some(item) = slot.pending.take() {
            match self.shared.try_push(item) {
                Ok(()) => slot.listener = None,
                Err(TryPushError::Closed(item)) => return Poll::Ready(Err(PushError(item))),
                Err(TryPushError::Full(item)) => {
                    slot.pending = Some(item);
                    match &mut slot.listener {
                        // Listen, then try again: room made in between is not missed.
                        None => slot.listener = Some(self.shared.listen_for_space()),
                        Some(listener) => {
                            futures::ready!(Pin::new(listener).poll(cx));
                            slot.listener = None;
                        }
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A `Feeder` is a [`Sink`] too, for async producers (`stream.forward(feeder)`,
/// `SinkExt::send`): `poll_ready` waits for room (no thread blocks), and an
/// item that fails comes back in the [`PushError`] — from `start_send` if the
/// feeder is closed already, else from the next `poll_ready` / `poll_flush` /
/// `poll_close`. `poll_close` delivers what is pending and retires this
/// handle, as dropping it would: the pipeline ends once every handle is
/// retired or dropped (or [`close`](Feeder::close) is called).
///
/// # Examples
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use flowline_core::bridge;
///
/// let (feeder, pipeline) = bridge::feeder::<u32>(2);
/// let (items, ()) = futures::executor::block_on(async {
///     let produce = async move {
///         let mut feeder = feeder;
///         feeder.send_all(&mut futures::stream::iter(0..5).map(Ok)).await.unwrap();
///         // `SinkExt::close` retires this handle; `Feeder::close` would
///         // close the feeder for every clone.
///         SinkExt::close(&mut feeder).await.unwrap();
///     };
///     let (items, ()) = futures::join!(pipeline.run_collect(), produce);
///     (items.unwrap().0, ())
/// });
/// assert_eq!(items, [0, 1, 2, 3, 4]);
/// ```
impl<T> Sink<T> for Feeder<T> {
    type Error = PushError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), PushError<T>> {
        let this = self.get_mut();
        match this.shared.try_push(item) {
            Ok(()) => Ok(()),
            Err(TryPushError::Full(item)) => {
                // Another handle took the room `poll_ready` saw: pushed by
                // the next poll.
                let slot = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
                slot.pending = Some(item);
                Ok(())
            }
            Err(TryPushError::Closed(item)) => Err(PushError(item)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        let this = self.get_mut();
        futures::ready!(this.poll_pending(cx))?;
        let slot = this.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !slot.retired {
            slot.retired = true;
            this.shared.remove_feeder();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T> Unpin for Feeder<T> {}

impl<T> fmt::Debug for Feeder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feeder")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}
