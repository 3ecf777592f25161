use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Listener as _;

use super::shared::Shared;
use super::{PushError, PushTimeoutError, TryPushError};

/// Times a full feeder yields the thread before a blocking push parks it.
const PATIENCE: u32 = 8;

/// The pushing end of a sync → async bridge: plain synchronous code (a
/// callback, another thread, FFI, a GUI loop) hands items to a pipeline.
///
/// Made by [`bridge::feeder`](super::feeder) together with the pipeline it
/// feeds. Clone it for as many producers as you like; every clone feeds the
/// same pipeline, and each clone's items arrive in the order it pushed them.
///
/// - [`push`](Self::push) blocks the calling thread while the feeder is full
///   (backpressure), [`try_push`](Self::try_push) never blocks,
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
}

impl<T> Feeder<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Feeder { shared }
    }

    pub(crate) fn listen_for_space(&self) -> event_listener::EventListener {
        self.shared.listen_for_space()
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
            item = match self.try_push_patiently(item) {
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

    /// Like [`try_push`](Self::try_push), but when the feeder is full, yields
    /// the thread a few times first: the pipeline is usually about to take
    /// the whole queue, and parking and being woken costs two syscalls and a
    /// scheduling delay, during which the pipeline goes idle.
    fn try_push_patiently(&self, item: T) -> Result<(), TryPushError<T>> {
        let mut item = item;
        for _ in 0..PATIENCE {
            item = match self.shared.try_push(item) {
                Err(TryPushError::Full(item)) => item,
                done => return done,
            };
            std::thread::yield_now();
        }
        self.shared.try_push(item)
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
        let deadline = Instant::now().checked_add(timeout);
        let mut item = item;
        loop {
            item = match self.try_push_patiently(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushTimeoutError::Closed(item)),
                Err(TryPushError::Full(item)) => item,
            };
            let listener = self.shared.listen_for_space();
            item = match self.shared.try_push(item) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(item)) => return Err(PushTimeoutError::Closed(item)),
                Err(TryPushError::Full(item)) => item,
            };
            match deadline {
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        // One last look: room may have been made just now.
                        return self.shared.try_push(item).map_err(|e| match e {
                            TryPushError::Full(item) => PushTimeoutError::Timeout(item),
                            TryPushError::Closed(item) => PushTimeoutError::Closed(item),
                        });
                    }
                }
                None => listener.wait(), // a timeout too long to represent
            }
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
        Feeder {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Feeder<T> {
    fn drop(&mut self) {
        self.shared.remove_feeder();
    }
}

impl<T> fmt::Debug for Feeder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feeder")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}
