use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use flowline_core::runtime::RuntimeExt;
use flowline_core::{Pipeline, PipelineError, PipelineHandle, RunReport};
use futures::{FutureExt, Sink, Stream};

use crate::VirtualHandle;

/// What reached the sink, in order.
#[derive(Debug)]
enum Event<T> {
    Next(T),
    /// The run completed (the sink was closed); its report.
    Complete(Box<RunReport>),
    /// The run failed.
    Error(PipelineError),
}

struct State<T> {
    events: VecDeque<Event<T>>,
    /// Items the sink will still accept.
    credit: u64,
    closed: bool,
    /// The sink's task, waiting for credit.
    sink_waker: Option<Waker>,
    /// The probe, waiting for an event.
    probe_waker: Option<Waker>,
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A consumer the test drives by hand: it accepts only as many items as the
/// test [`request`](Self::request)s, and every item, the completion or the
/// failure of the run is an event the test must
/// [`expect`](Self::expect_next).
///
/// [`run`](Self::run) starts the pipeline into it on the virtual runtime.
/// Every `expect_*` waits in virtual time (auto-advancing timers) and panics
/// with a message, instead of hanging, when the pipeline stalls with the
/// event still missing.
///
/// # Panics
///
/// Dropped with events nobody expected (items, completion, failure), it
/// panics listing them (unless the thread is already panicking).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::producer;
/// use flowline_test::{TestSink, VirtualRuntime};
///
/// let rt = VirtualRuntime::new();
/// let h = rt.handle();
/// let mut sink = TestSink::run(&h, producer::iter(1..=3u32).boundary(2));
/// rt.block_on(async {
///     sink.request(1);
///     assert_eq!(sink.expect_next().await, 1);
///     sink.expect_no_event(Duration::from_secs(1)).await; // no credit, no item
///     sink.request(10);
///     assert_eq!(sink.expect_next().await, 2);
///     assert_eq!(sink.expect_next().await, 3);
///     let report = sink.expect_complete().await;
///     assert_eq!(report.delivered(), 3);
/// });
/// ```
pub struct TestSink<T> {
    shared: Shared<T>,
    run: Option<PipelineHandle>,
    clock: VirtualHandle,
    /// `Debug` for the events left at drop (`Drop` cannot require `T: Debug`).
    describe: fn(&Event<T>) -> String,
}

impl<T: fmt::Debug> fmt::Debug for TestSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared);
        f.debug_struct("TestSink")
            .field("events", &state.events)
            .field("credit", &state.credit)
            .field("running", &self.run.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: fmt::Debug + Send + 'static> TestSink<T> {
    /// Starts `pipeline` on `clock`'s runtime into a new probe (with no
    /// credit: [`request`](Self::request) items to let them in).
    ///
    /// The run is a task on the virtual runtime: it moves while the test
    /// awaits inside [`VirtualRuntime::block_on`](crate::VirtualRuntime::block_on).
    pub fn run<S>(clock: &VirtualHandle, pipeline: Pipeline<S>) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let shared: Shared<T> = Arc::new(Mutex::new(State {
            events: VecDeque::new(),
            credit: 0,
            closed: false,
            sink_waker: None,
            probe_waker: None,
        }));
        let sink = ProbeSink {
            shared: shared.clone(),
        };
        let run = pipeline.on(clock.clone()).spawn(sink);
        TestSink {
            shared,
            run: Some(run),
            clock: clock.clone(),
            describe: |event| format!("{event:?}"),
        }
    }
}

impl<T: fmt::Debug> TestSink<T> {
    /// Lets `n` more items into the sink.
    pub fn request(&self, n: u64) {
        let mut state = lock(&self.shared);
        state.credit += n;
        let waker = state.sink_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// An item that reached the sink, else the run's end, else pending.
    /// Items come first: they reached the sink before the run ended.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event<T>> {
        let mut state = lock(&self.shared);
        if let Some(event) = state.events.pop_front() {
            return Poll::Ready(event);
        }
        state.probe_waker = Some(cx.waker().clone());
        drop(state);
        let Some(run) = self.run.as_mut() else {
            return Poll::Pending;
        };
        let result = futures::ready!(run.poll_unpin(cx));
        self.run = None;
        Poll::Ready(match result {
            Ok(report) => Event::Complete(Box::new(report)),
            Err(e) => Event::Error(e),
        })
    }

    /// The next event, or `None` when the pipeline stalled without one.
    async fn next_event(&mut self) -> Option<Event<T>> {
        let mut stalled = self.clock.stalled();
        poll_fn(|cx| {
            if let Poll::Ready(event) = self.poll_event(cx) {
                return Poll::Ready(Some(event));
            }
            Pin::new(&mut stalled).poll(cx).map(|()| None)
        })
        .await
    }

    fn stuck(&self, expected: &str) -> ! {
        panic!(
            "flowline-test: expected {expected}, but the pipeline stalled \
             (nothing runnable, no timer pending) at {:?} of virtual time",
            self.clock.elapsed()
        )
    }

    /// Waits for the next item and returns it.
    ///
    /// # Panics
    ///
    /// If the run completes or fails instead, or stalls without an item.
    pub async fn expect_next(&mut self) -> T {
        match self.next_event().await {
            Some(Event::Next(item)) => item,
            Some(other) => panic!("flowline-test: expected an item, got {other:?}"),
            None => self.stuck("an item"),
        }
    }

    /// Gives the sink one unit of credit if it has none: flowline's consumer
    /// loop, like `futures`' `forward`, waits for the sink to be ready before
    /// it pulls, so without credit it would never see the stream end.
    fn let_the_end_in(&self) {
        if lock(&self.shared).credit == 0 {
            self.request(1);
        }
    }

    /// Waits for the run to complete (every item delivered and the sink
    /// closed) and returns its report.
    ///
    /// A sink with no credit left gets one item's worth, so the pipeline can
    /// pull and see its end; an item that comes instead fails the
    /// expectation.
    ///
    /// # Panics
    ///
    /// If an item comes first, the run fails, or it stalls.
    pub async fn expect_complete(&mut self) -> RunReport {
        self.let_the_end_in();
        match self.next_event().await {
            Some(Event::Complete(report)) => {
                assert!(
                    lock(&self.shared).closed,
                    "flowline-test: the run completed without closing the sink"
                );
                *report
            }
            Some(other) => panic!("flowline-test: expected the run to complete, got {other:?}"),
            None => self.stuck("the run to complete"),
        }
    }

    /// Waits for the run to fail and checks that `stage` failed; returns
    /// the error. Gives credit as [`expect_complete`](Self::expect_complete)
    /// does.
    ///
    /// # Panics
    ///
    /// If an item comes first, the run completes, another stage fails, or it
    /// stalls.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    /// use flowline_test::{TestSink, VirtualRuntime};
    ///
    /// let rt = VirtualRuntime::new();
    /// let h = rt.handle();
    /// let parsed = producer::iter(["1", "x"]).try_map(|s| s.parse::<u32>()).named("parse");
    /// let mut sink = TestSink::run(&h, parsed);
    /// rt.block_on(async {
    ///     sink.request(1);
    ///     assert_eq!(sink.expect_next().await, 1);
    ///     let err = sink.expect_error("parse").await;
    ///     assert_eq!(err.report().delivered(), 1);
    /// });
    /// ```
    pub async fn expect_error(&mut self, stage: &str) -> PipelineError {
        self.let_the_end_in();
        match self.next_event().await {
            Some(Event::Error(e)) => {
                assert_eq!(
                    e.stage(),
                    stage,
                    "flowline-test: expected stage {stage:?} to fail, got {e:?}"
                );
                assert!(
                    !lock(&self.shared).closed,
                    "flowline-test: a failed run closed the sink"
                );
                e
            }
            Some(other) => {
                panic!("flowline-test: expected stage {stage:?} to fail, got {other:?}")
            }
            None => self.stuck(&format!("stage {stage:?} to fail")),
        }
    }

    /// Waits `duration` of virtual time and checks that nothing reached the
    /// sink meanwhile (no item, no completion, no failure). On a manual
    /// runtime it moves the clock itself, with
    /// [`advance`](crate::VirtualHandle::advance).
    ///
    /// # Panics
    ///
    /// On the first event, listing it.
    pub async fn expect_no_event(&mut self, duration: Duration) {
        let clock = self.clock.clone();
        let mut timer: Pin<Box<dyn Future<Output = ()> + Send>> = if clock.auto_advances() {
            clock.sleep(duration)
        } else {
            Box::pin(async move { clock.advance(duration).await })
        };
        let event = poll_fn(|cx| {
            if let Poll::Ready(event) = self.poll_event(cx) {
                return Poll::Ready(Some(event));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(event) = event {
            panic!(
                "flowline-test: expected no event for {duration:?}, got {event:?} at {:?} of virtual time",
                self.clock.elapsed()
            );
        }
    }

    /// Cancels the run (aborts it) and returns its report. Events already
    /// received stay to be expected.
    ///
    /// # Panics
    ///
    /// If the run had already ended (its end is an event to expect).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    /// use flowline_test::{TestSink, VirtualRuntime};
    ///
    /// let rt = VirtualRuntime::new();
    /// let h = rt.handle();
    /// let endless = producer::iter(0u64..).boundary(8);
    /// let mut sink = TestSink::run(&h, endless);
    /// let report = rt.block_on(async {
    ///     sink.request(2);
    ///     assert_eq!(sink.expect_next().await, 0);
    ///     assert_eq!(sink.expect_next().await, 1);
    ///     sink.cancel().await
    /// });
    /// assert_eq!(report.delivered(), 2);
    /// assert_eq!(h.live_tasks(), 0);
    /// ```
    pub async fn cancel(&mut self) -> RunReport {
        let run = self
            .run
            .take()
            .expect("flowline-test: cancel: the run has already ended");
        run.abort().await
    }
}

impl<T> Drop for TestSink<T> {
    fn drop(&mut self) {
        let events = std::mem::take(&mut lock(&self.shared).events);
        if !events.is_empty() && !std::thread::panicking() {
            let listed: Vec<String> = events.iter().map(self.describe).collect();
            panic!(
                "flowline-test: TestSink dropped with {} unexpected event(s): {}",
                listed.len(),
                listed.join(", ")
            );
        }
    }
}

/// The `Sink` the pipeline writes to.
struct ProbeSink<T> {
    shared: Shared<T>,
}

impl<T> ProbeSink<T> {
    fn wake_probe(mut state: MutexGuard<'_, State<T>>) {
        let waker = state.probe_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Sink<T> for ProbeSink<T> {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let mut state = lock(&self.shared);
        if state.credit > 0 {
            Poll::Ready(Ok(()))
        } else {
            state.sink_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        let mut state = lock(&self.shared);
        state.credit = state.credit.saturating_sub(1);
        state.events.push_back(Event::Next(item));
        Self::wake_probe(state);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let mut state = lock(&self.shared);
        state.closed = true;
        Self::wake_probe(state);
        Poll::Ready(Ok(()))
    }
}
