use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

/// The slot an [`Emitter`] hands items through. Only the generator's own
/// poll touches it, so the lock is never contended.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn take<T>(slot: &Slot<T>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The handle a [`generator`](super::generator) body emits items through.
///
/// Cloneable, so helper functions can emit too; every clone feeds the same
/// stream.
pub struct Emitter<T> {
    slot: Slot<T>,
}

impl<T> Clone for Emitter<T> {
    fn clone(&self) -> Self {
        Emitter {
            slot: self.slot.clone(),
        }
    }
}

impl<T> fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter").finish_non_exhaustive()
    }
}

impl<T> Emitter<T> {
    /// Hands `item` downstream; completes once downstream has taken it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let squares = producer::generator(|out| async move {
    ///     for i in 1..=3u32 {
    ///         out.emit(i * i).await;
    ///     }
    /// });
    /// let (v, _) = futures::executor::block_on(squares.collect()).unwrap();
    /// assert_eq!(v, [1, 4, 9]);
    /// ```
    pub fn emit(&self, item: T) -> Emit<'_, T> {
        Emit {
            emitter: self,
            item: Some(item),
        }
    }
}

/// Future for [`Emitter::emit`].
#[must_use = "futures do nothing unless awaited"]
pub struct Emit<'a, T> {
    emitter: &'a Emitter<T>,
    item: Option<T>,
}

impl<T> fmt::Debug for Emit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit")
            .field("sent", &self.item.is_none())
            .finish()
    }
}

impl<T> Unpin for Emit<'_, T> {}

impl<T> Future for Emit<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.item.is_none() {
            return Poll::Ready(()); // parked earlier, and taken by the stream
        }
        // Park the item and suspend the body. The generator stream sees the
        // item and returns it; no wake-up is needed because the stream polls
        // the body again on its next poll. If another emit (from a clone, in
        // a `join`) parked first, wait for that one to be taken.
        let mut slot = self
            .emitter
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = self.item.take();
        }
        Poll::Pending
    }
}

pin_project! {
    /// Stream for [`producer::generator`](super::generator).
    #[must_use = "streams do nothing unless polled"]
    pub struct Generator<T, Fut> {
        slot: Slot<T>,
        #[pin]
        body: Option<Fut>,
    }
}

impl<T, Fut> fmt::Debug for Generator<T, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("finished", &self.body.is_none())
            .finish_non_exhaustive()
    }
}

impl<T, Fut: Future<Output = ()>> Generator<T, Fut> {
    pub(crate) fn new<F: FnOnce(Emitter<T>) -> Fut>(body: F) -> Self {
        let slot = Arc::new(Mutex::new(None));
        let body = body(Emitter { slot: slot.clone() });
        Generator {
            slot,
            body: Some(body),
        }
    }
}

impl<T, Fut: Future<Output = ()>> Stream for Generator<T, Fut> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        let Some(body) = this.body.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let done = body.poll(cx).is_ready();
        if let Some(item) = take(this.slot) {
            return Poll::Ready(Some(item));
        }
        if done {
            this.body.set(None);
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}
