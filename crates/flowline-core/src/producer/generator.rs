use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use pin_project_lite::pin_project;

/// What the [`Generator`] stream and every [`Emitter`] share: one slot for
/// the item on its way out, and the wakers of whoever waits on it.
///
/// # Why the stream ends exactly once, with nothing stranded
///
/// An item is *parked* in the slot by an [`Emit`] and *taken* by the stream,
/// both under this lock. An `Emit` that is dropped (or
/// [cancelled](Emit::cancel)) before its item was taken removes it again, so
/// an item is sent once or not at all, never both. The stream ends only when
/// the body has returned, every `Emitter` clone is gone and the slot is
/// empty: no emit can be pending at that moment.
#[derive(Debug)]
struct State<T> {
    /// The parked item, with the ticket of the `Emit` that parked it.
    slot: Option<(u64, T)>,
    /// The waker of the `Emit` whose item is parked.
    parked: Option<Waker>,
    /// `Emit`s waiting for the slot to be free, by ticket.
    waiting: Vec<(u64, Waker)>,
    /// The stream's waker, for emits from other tasks.
    stream: Option<Waker>,
    /// The stream is polling the body right now.
    in_body: bool,
    next_ticket: u64,
    /// Live `Emitter` clones.
    emitters: usize,
    /// The stream is gone: emits complete at once without sending.
    closed: bool,
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `cx` is the body's, polled by the stream right now: the stream
/// looks at the slot after the body and polls the body again on its next
/// poll, so such an emit needs no waker and wakes no one. (Another future on
/// the stream's task, in a `join` with it, has the same waker but is polled
/// outside the body: it is woken like any other.)
fn in_body<T>(state: &State<T>, cx: &Context<'_>) -> bool {
    state.in_body
        && state
            .stream
            .as_ref()
            .is_some_and(|stream| stream.will_wake(cx.waker()))
}

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
/// let (v, _) = futures::executor::block_on(from_thread.collect()).unwrap();
/// assert_eq!(v, [0, 1, 2]);
/// ```
pub struct Emitter<T> {
    shared: Shared<T>,
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
    /// let (v, _) = futures::executor::block_on(squares.collect()).unwrap();
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
    /// let gen = producer::generator(|out| async move {
    ///     let mut first = out.emit('a');
    ///     // Polled once (parked), then given up before the stream took it.
    ///     if let Either::Right(_) = future::select(&mut first, future::ready(())).await {
    ///         let back = first.cancel();
    ///         assert_eq!(back, Some('a'));
    ///         out.emit('b').await; // sent instead
    ///     }
    /// });
    /// let (v, _) = futures::executor::block_on(gen.collect()).unwrap();
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

pin_project! {
    /// Stream for [`producer::generator`](super::generator).
    #[must_use = "streams do nothing unless polled"]
    pub struct Generator<T, Fut> {
        shared: Shared<T>,
        #[pin]
        body: Option<Fut>,
    }

    impl<T, Fut> PinnedDrop for Generator<T, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let mut state = lock(this.project().shared);
            state.closed = true;
            let parked = state.slot.take();
            let wakers: Vec<Waker> = state
                .parked
                .take()
                .into_iter()
                .chain(state.waiting.drain(..).map(|(_, w)| w))
                .collect();
            drop(state);
            drop(parked); // outside the lock: an item's Drop may do anything
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

impl<T, Fut> fmt::Debug for Generator<T, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("body_finished", &self.body.is_none())
            .finish_non_exhaustive()
    }
}

impl<T, Fut: Future<Output = ()>> Generator<T, Fut> {
    pub(crate) fn new<F: FnOnce(Emitter<T>) -> Fut>(body: F) -> Self {
        let shared = Arc::new(Mutex::new(State {
            slot: None,
            parked: None,
            waiting: Vec::new(),
            stream: None,
            in_body: false,
            next_ticket: 0,
            emitters: 1,
            closed: false,
        }));
        let body = body(Emitter {
            shared: shared.clone(),
        });
        Generator {
            shared,
            body: Some(body),
        }
    }
}

impl<T, Fut: Future<Output = ()>> Stream for Generator<T, Fut> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        if let Some(body) = this.body.as_mut().as_pin_mut() {
            {
                let mut state = lock(this.shared);
                match &mut state.stream {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                state.in_body = true;
            }
            if body.poll(cx).is_ready() {
                // Never polled again: a finished `async` block panics if resumed.
                this.body.set(None);
            }
        }
        let mut state = lock(this.shared);
        state.in_body = false;
        if let Some((_, item)) = state.slot.take() {
            let parked = state.parked.take();
            let next = state.waiting.pop().map(|(_, w)| w);
            drop(state);
            parked.into_iter().chain(next).for_each(Waker::wake);
            return Poll::Ready(Some(item));
        }
        // Registered before the last look at the slot and the emitters, so
        // an emit or a drop from another task after it wakes this poll.
        match &mut state.stream {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        if this.body.is_none() && state.emitters == 0 {
            state.closed = true;
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}
