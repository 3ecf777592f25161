use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use flowline_core::{producer, BoxError, Pipeline};
use futures::stream::BoxStream;
use futures::Stream;

use crate::VirtualHandle;

/// What the test handed the source, in order.
enum Signal<T> {
    Item(T),
    Error(BoxError),
    Complete,
}

struct State<T> {
    signals: VecDeque<Signal<T>>,
    /// Items the pipeline has taken.
    taken: u64,
    /// The pipeline is polling and found nothing: it waits for an item.
    waiting: bool,
    /// The pipeline dropped the source before it ended (cancelled or failed).
    cancelled: bool,
    ended: bool,
    waker: Option<Waker>,
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A source the test drives by hand: it emits exactly what the test sends,
/// when the test sends it, and shows how much the pipeline asked for.
///
/// [`new`](Self::new) returns the probe and the pipeline it feeds. The
/// pipeline has two stages: the source `test_source` and a fused
/// `test_source.errors` through which [`send_error`](Self::send_error) fails
/// the run (a `try_map` with the default stop policy).
///
/// Demand is pull-shaped, as a `Stream` is: the pipeline asks for one item at
/// a time, so what it has asked for is the items it took plus the one it is
/// waiting for, if any ([`requested`](Self::requested)).
///
/// # Examples
///
/// ```
/// use flowline_test::{TestSink, TestSource, VirtualRuntime};
///
/// let rt = VirtualRuntime::new();
/// let h = rt.handle();
/// let (source, pipeline) = TestSource::<u32>::new(&h);
/// let mut sink = TestSink::run(&h, pipeline.map(|x| x * 10));
/// rt.block_on(async {
///     sink.request(2);
///     source.expect_demand(1).await; // polled once, waiting
///     source.send_next(1);
///     source.send_next(2);
///     assert_eq!(sink.expect_next().await, 10);
///     assert_eq!(sink.expect_next().await, 20);
///     source.complete();
///     sink.expect_complete().await;
/// });
/// ```
pub struct TestSource<T> {
    shared: Shared<T>,
    clock: VirtualHandle,
}

impl<T> fmt::Debug for TestSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared);
        f.debug_struct("TestSource")
            .field("queued", &state.signals.len())
            .field("taken", &state.taken)
            .field("waiting", &state.waiting)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> TestSource<T> {
    /// A probe and the pipeline it is the source of, timed by `clock`.
    pub fn new(clock: &VirtualHandle) -> (Self, Pipeline<BoxStream<'static, T>>) {
        let shared: Shared<T> = Arc::new(Mutex::new(State {
            signals: VecDeque::new(),
            taken: 0,
            waiting: false,
            cancelled: false,
            ended: false,
            waker: None,
        }));
        let stream = ProbeStream {
            shared: shared.clone(),
        };
        let pipeline = producer::from_stream(stream)
            .named("test_source")
            .try_map(|r: Result<T, BoxError>| r)
            .named("test_source.errors")
            .boxed();
        let probe = TestSource {
            shared,
            clock: clock.clone(),
        };
        (probe, pipeline)
    }
}

impl<T> TestSource<T> {
    fn signal(&self, signal: Signal<T>) {
        let mut state = lock(&self.shared);
        assert!(
            !state.signals.iter().any(|s| !matches!(s, Signal::Item(_))),
            "flowline-test: TestSource already ended (complete or send_error was called)"
        );
        state.signals.push_back(signal);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Queues `item`; the pipeline takes it when it next pulls.
    pub fn send_next(&self, item: T) {
        self.signal(Signal::Item(item));
    }

    /// Ends the stream with an error: once the pipeline reaches it, the run
    /// fails with [`PipelineError::Failed`](flowline_core::PipelineError::Failed)
    /// from stage `test_source.errors`, carrying `error`.
    ///
    /// # Panics
    ///
    /// If the source already ended.
    pub fn send_error(&self, error: impl Into<BoxError>) {
        self.signal(Signal::Error(error.into()));
    }

    /// Ends the stream after the items already sent.
    ///
    /// # Panics
    ///
    /// If the source already ended.
    pub fn complete(&self) {
        self.signal(Signal::Complete);
    }

    /// What the pipeline has asked for so far: the items it took, plus one
    /// if it is polling for the next.
    pub fn requested(&self) -> u64 {
        let state = lock(&self.shared);
        state.taken + u64::from(state.waiting)
    }

    /// Whether the pipeline dropped the source before it ended (the run was
    /// cancelled or failed downstream).
    pub fn is_cancelled(&self) -> bool {
        lock(&self.shared).cancelled
    }

    /// Lets the runtime settle, then checks that the pipeline has asked for
    /// exactly `n` items so far ([`requested`](Self::requested)).
    ///
    /// # Panics
    ///
    /// If it asked for a different number.
    pub async fn expect_demand(&self, n: u64) {
        self.clock.settle().await;
        let requested = self.requested();
        assert_eq!(
            requested, n,
            "flowline-test: expected the pipeline to have asked the TestSource for {n} items, \
             it asked for {requested} ({:?})",
            self
        );
    }
}

/// The stream side: what the pipeline polls.
struct ProbeStream<T> {
    shared: Shared<T>,
}

impl<T> Stream for ProbeStream<T> {
    type Item = Result<T, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = lock(&self.shared);
        if state.ended {
            return Poll::Ready(None);
        }
        match state.signals.pop_front() {
            Some(Signal::Item(item)) => {
                state.waiting = false;
                state.taken += 1;
                Poll::Ready(Some(Ok(item)))
            }
            Some(Signal::Error(e)) => {
                state.waiting = false;
                state.ended = true;
                Poll::Ready(Some(Err(e)))
            }
            Some(Signal::Complete) => {
                state.waiting = false;
                state.ended = true;
                Poll::Ready(None)
            }
            None => {
                state.waiting = true;
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for ProbeStream<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.waiting = false;
        state.cancelled = !state.ended;
    }
}
