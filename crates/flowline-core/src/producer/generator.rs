use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use pin_project_lite::pin_project;

use super::emitter::Emitter;

/// What the [`Generator`] stream and every [`Emitter`] share: one slot for
/// the item on its way out, and the wakers of whoever waits on it.
///
/// # Why the stream ends exactly once, with nothing stranded
///
/// An item is *parked* in the slot by an [`Emit`](super::Emit) and *taken* by the stream,
/// both under this lock. An `Emit` that is dropped (or
/// [cancelled](super::Emit::cancel)) before its item was taken removes it again, so
/// an item is sent once or not at all, never both. The stream ends only when
/// the body has returned, every `Emitter` clone is gone and the slot is
/// empty: no emit can be pending at that moment.
#[derive(Debug)]
pub(super) struct State<T> {
    /// The parked item, with the ticket of the `Emit` that parked it.
    pub(super) slot: Option<(u64, T)>,
    /// The waker of the `Emit` whose item is parked.
    pub(super) parked: Option<Waker>,
    /// `Emit`s waiting for the slot to be free, by ticket.
    pub(super) waiting: Vec<(u64, Waker)>,
    /// The stream's waker, for emits from other tasks.
    pub(super) stream: Option<Waker>,
    /// The stream is polling the body right now.
    pub(super) in_body: bool,
    pub(super) next_ticket: u64,
    /// Live `Emitter` clones.
    pub(super) emitters: usize,
    /// The stream is gone: emits complete at once without sending.
    pub(super) closed: bool,
}

pub(super) type Shared<T> = Arc<Mutex<State<T>>>;

pub(super) fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `cx` is the body's, polled by the stream right now: the stream
/// looks at the slot after the body and polls the body again on its next
/// poll, so such an emit needs no waker and wakes no one. (Another future on
/// the stream's task, in a `join` with it, has the same waker but is polled
/// outside the body: it is woken like any other.)
pub(super) fn in_body<T>(state: &State<T>, cx: &Context<'_>) -> bool {
    state.in_body
        && state
            .stream
            .as_ref()
            .is_some_and(|stream| stream.will_wake(cx.waker()))
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
        let body = body(Emitter::new(shared.clone()));
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
