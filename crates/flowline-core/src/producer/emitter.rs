use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::generator::{in_body, lock, Shared};

/// The handle a [`generator`](super::generator) body emits items through.
///
/// Cloneable, `Send` and `Sync` (for `T: Send`): helper functions, other
/// tasks and other threads can emit too, and every clone feeds the same
/// stream. The stream ends once the body has returned **and** every clone has
/// been dropped, like a channel with its senders.
///
/// # Examples
///
/// An emitter moved to another thread:
///
/// ```
/// use flowline_core::producer;
///
/// let from_thread = producer::generator(|out| async move {
///     let helper = out.clone();
///     std::thread::spawn(move || {
///         futures::executor::block_on(async {
///             for i in 0..3u32 {
///                 helper.emit(i).await;
///             }
///         })
///     });
///     // The body may return at once: the helper's clone keeps the stream open.
/// });
/// let (v, _) = futures::executor::block_on(from_thread.run_collect()).unwrap();
/// assert_eq!(v, [0, 1, 2]);
/// ```
pub struct Emitter<T> {
    shared: Shared<T>,
}

impl<T> Emitter<T> {
    /// The first emitter of a generator (counted when its state is made).
    pub(super) fn new(shared: Shared<T>) -> Self {
        Emitter { shared }
    }
}

impl<T> Clone for Emitter<T> {
    fn clone(&self) -> Self {
        lock(&self.shared).emitters += 1;
        Emitter {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Emitter<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.emitters -= 1;
        // The last clone gone may end the stream: let it look.
        let stream = (state.emitters == 0).then(|| state.stream.take()).flatten();
        drop(state);
        if let Some(waker) = stream {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> Emitter<T> {
    /// Hands `item` downstream; completes once downstream has taken it.
    ///
    /// # Cancellation
    ///
    /// Dropping the returned future before it completes (in a `select`, under
    /// a timeout) **does not send the item**: an item it had already parked
    /// is taken back, so it is never sent after its `emit` was given up, and
    /// a retry never sends it twice. To keep the item, hold the future and
    /// call [`Emit::cancel`], which hands it back.
    ///
    /// If the stream is gone (the pipeline was dropped), the future completes
    /// at once without sending; [`is_closed`](Self::is_closed) tells.
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
    /// let (v, _) = futures::executor::block_on(squares.run_collect()).unwrap();
    /// assert_eq!(v, [1, 4, 9]);
    /// ```
    pub fn emit(&self, item: T) -> Emit<'_, T> {
        Emit {
            emitter: self,
            state: EmitState::Unparked(item),
            ticket: None,
        }
    }

    /// Whether the stream this emitter feeds is gone: emits no longer send.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let mut kept = None;
    /// let pipeline = producer::generator(|out: producer::Emitter<u8>| {
    ///     kept = Some(out.clone());
    ///     async {}
    /// });
    /// let out = kept.unwrap();
    /// assert!(!out.is_closed());
    /// drop(pipeline);
    /// assert!(out.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        lock(&self.shared).closed
    }
}

#[derive(Debug)]
enum EmitState<T> {
    /// Not parked yet: the future still owns the item.
    Unparked(T),
    /// Parked in the slot under the future's ticket.
    Parked,
    /// Taken downstream, not sent (stream gone), or handed back.
    Done,
}

/// Future for [`Emitter::emit`]: completes once downstream has taken the
/// item. See [`Emitter::emit`] for what dropping it does.
#[must_use = "futures do nothing unless awaited"]
pub struct Emit<'a, T> {
    emitter: &'a Emitter<T>,
    state: EmitState<T>,
    /// Assigned on first poll; tells this future's parked item and waker
    /// from others'.
    ticket: Option<u64>,
}

impl<T> fmt::Debug for Emit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            EmitState::Unparked(_) => "unparked",
            EmitState::Parked => "parked",
            EmitState::Done => "done",
        };
        f.debug_struct("Emit").field("state", &state).finish()
    }
}

impl<T> Unpin for Emit<'_, T> {}

impl<T> Emit<'_, T> {
    /// Gives up this emit and hands the item back, if it was not sent:
    /// `Some(item)` when downstream has not taken it (it never will), `None`
    /// when it has (or the future had already completed).
    ///
    /// # Examples
    ///
    /// A bounded wait for downstream, keeping the item when it is too slow:
    ///
    /// ```
    /// use flowline_core::producer;
    /// use futures::future::{self, Either};
    ///
    /// let numbers = producer::generator(|out| async move {
    ///     let mut first = out.emit('a');
    ///     // Polled once (parked), then given up before the stream took it.
    ///     if let Either::Right(_) = future::select(&mut first, future::ready(())).await {
    ///         let back = first.cancel();
    ///         assert_eq!(back, Some('a'));
    ///         out.emit('b').await; // sent instead
    ///     }
    /// });
    /// let (v, _) = futures::executor::block_on(numbers.run_collect()).unwrap();
    /// assert_eq!(v, ['b']);
    /// ```
    pub fn cancel(mut self) -> Option<T> {
        self.take_back()
    }

    /// Takes the item back from the slot (or from `self`), if it is there.
    fn take_back(&mut self) -> Option<T> {
        match std::mem::replace(&mut self.state, EmitState::Done) {
            EmitState::Unparked(item) => {
                if let Some(ticket) = self.ticket {
                    lock(&self.emitter.shared)
                        .waiting
                        .retain(|(t, _)| *t != ticket);
                }
                Some(item)
            }
            EmitState::Parked => {
                let mut state = lock(&self.emitter.shared);
                if !matches!(state.slot, Some((t, _)) if Some(t) == self.ticket) {
                    return None; // taken downstream already
                }
                let (_, item) = state.slot.take()?;
                state.parked = None;
                // The slot is free again: let a waiting emit in.
                let next = state.waiting.pop().map(|(_, w)| w);
                drop(state);
                if let Some(waker) = next {
                    waker.wake();
                }
                Some(item)
            }
            EmitState::Done => None,
        }
    }
}

impl<T> Drop for Emit<'_, T> {
    fn drop(&mut self) {
        // Given up before downstream took it: the item is not sent.
        if !matches!(self.state, EmitState::Done) {
            drop(self.take_back());
        }
    }
}

impl<T> Future for Emit<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if matches!(this.state, EmitState::Done) {
            return Poll::Ready(());
        }
        let mut state = lock(&this.emitter.shared);
        let ticket = *this.ticket.get_or_insert_with(|| {
            state.next_ticket += 1;
            state.next_ticket
        });
        if state.closed {
            drop(state);
            // Nobody will ever take it: drop it outside the lock.
            this.state = EmitState::Done;
            return Poll::Ready(());
        }
        if let EmitState::Parked = this.state {
            if matches!(state.slot, Some((t, _)) if t == ticket) {
                // Still waiting to be taken: keep the newest waker.
                if !in_body(&state, cx) {
                    match &mut state.parked {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    }
                }
                return Poll::Pending;
            }
            drop(state);
            this.state = EmitState::Done;
            return Poll::Ready(());
        }
        if state.slot.is_some() {
            // Another emit (a clone, in a `join` or another task) parked
            // first: wait for the slot.
            if in_body(&state, cx) {
                return Poll::Pending;
            }
            match state.waiting.iter_mut().find(|(t, _)| *t == ticket) {
                Some((_, w)) if w.will_wake(cx.waker()) => {}
                Some((_, w)) => *w = cx.waker().clone(),
                None => state.waiting.push((ticket, cx.waker().clone())),
            }
            return Poll::Pending;
        }
        let EmitState::Unparked(item) = std::mem::replace(&mut this.state, EmitState::Parked)
        else {
            unreachable!("done and parked were handled above")
        };
        state.slot = Some((ticket, item));
        state.waiting.retain(|(t, _)| *t != ticket);
        // An emit in the body (the common case) is kept cheap: see
        // `in_body`. Any other wakes the stream, and is woken when its item
        // is taken.
        if in_body(&state, cx) {
            state.parked = None;
            return Poll::Pending;
        }
        state.parked = Some(cx.waker().clone());
        let stream = state.stream.clone();
        drop(state);
        if let Some(waker) = stream {
            waker.wake();
        }
        Poll::Pending
    }
}
