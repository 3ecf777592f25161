//! Deadlines of the blocking bridge calls ([`Feeder::push_timeout`],
//! [`Drain::recv_timeout`]) on the pipeline's clock, and the thread waker
//! those calls park on.
//!
//! A pipeline on a runtime with an executor times on that runtime's clock
//! (`Runtime::now` / `sleep_until`), so a virtual clock (the test kit's,
//! tokio's paused one) decides when a timeout ends, and a caller's wait is a
//! timer the clock can see and jump to. A runtime-free pipeline, or one whose
//! run has not started yet, has only the real clock: the call parks with a
//! real timeout and starts no timer.
//!
//! [`Feeder::push_timeout`]: super::Feeder::push_timeout
//! [`Drain::recv_timeout`]: super::Drain::recv_timeout

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::runtime::{Runtime, Sleep};

/// Wakes a thread parked in a blocking bridge call.
pub(crate) struct ThreadWaker(Thread);

impl ThreadWaker {
    /// A waker that unparks the calling thread.
    pub(crate) fn current() -> Waker {
        Waker::from(Arc::new(ThreadWaker(thread::current())))
    }
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// How long a blocking call may still wait.
pub(crate) enum Deadline {
    /// No limit (a timeout too long for an `Instant`).
    Never,
    /// On the real clock: parks with a timeout.
    Real(Instant),
    /// On a runtime's clock: waits for its timer, made on the first wait.
    Clock {
        runtime: Arc<dyn Runtime>,
        at: Instant,
        timer: Option<Sleep>,
    },
}

impl Deadline {
    /// `timeout` from now, on `clock`'s clock if given, else on the real one.
    pub(crate) fn after(timeout: Duration, clock: Option<Arc<dyn Runtime>>) -> Self {
        match clock {
            Some(runtime) => match runtime.now().checked_add(timeout) {
                Some(at) => Deadline::Clock {
                    runtime,
                    at,
                    timer: None,
                },
                None => Deadline::Never,
            },
            None => Instant::now()
                .checked_add(timeout)
                .map_or(Deadline::Never, Deadline::Real),
        }
    }

    /// Moves a real-clock deadline onto `clock` once it is known (the run
    /// started while the caller waited): the time left carries over.
    pub(crate) fn follow(&mut self, clock: Option<Arc<dyn Runtime>>) {
        if let (Deadline::Real(at), Some(runtime)) = (&*self, clock) {
            let left = at.saturating_duration_since(Instant::now());
            *self = Deadline::after(left, Some(runtime));
        }
    }

    /// Polls for expiry, registering `cx`'s waker with the runtime's timer.
    /// A real deadline only compares with the real clock (it registers
    /// nothing: park with [`park_timeout`](Self::park_timeout)).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Deadline::Never => Poll::Pending,
            Deadline::Real(at) if Instant::now() >= *at => Poll::Ready(()),
            Deadline::Real(_) => Poll::Pending,
            Deadline::Clock { runtime, at, timer } => timer
                .get_or_insert_with(|| runtime.sleep_until(*at))
                .as_mut()
                .poll(cx),
        }
    }

    /// Parks the thread until woken, or (real deadline) until it passes.
    pub(crate) fn park(&self) {
        match self {
            Deadline::Real(at) => {
                thread::park_timeout(at.saturating_duration_since(Instant::now()))
            }
            Deadline::Never | Deadline::Clock { .. } => thread::park(),
        }
    }
}

/// Blocks the thread until `ready` is ready (`true`) or `deadline` expires
/// (`false`). `ready` is polled first, so one ready at once wins.
pub(crate) fn wait<F: Future + Unpin>(ready: &mut F, deadline: &mut Deadline) -> bool {
    let waker = ThreadWaker::current();
    let mut cx = Context::from_waker(&waker);
    loop {
        if Pin::new(&mut *ready).poll(&mut cx).is_ready() {
            return true;
        }
        if deadline.poll_expired(&mut cx).is_ready() {
            return false;
        }
        // A spurious unpark only costs another poll.
        deadline.park();
    }
}
