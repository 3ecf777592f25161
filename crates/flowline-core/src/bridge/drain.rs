use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::Stream;

use super::deadline::{Deadline, ThreadWaker};
use super::drain_sink::DrainSink;
use super::shared::Shared;
use super::{Feed, Feeder, RecvTimeoutError, TryRecvError};
use crate::pipeline::Pipeline;
use crate::report::RunReport;
use crate::run::PipelineError;
use crate::runtime::{JoinError, JoinHandle, Runtime, RuntimeExt as _};

/// A pipeline's output as a blocking [`Iterator`], for synchronous callers:
/// the async → sync half of the bridge. Made by
/// [`Pipeline::into_drain`].
///
/// [`next`](Iterator::next) blocks until an item arrives and returns `None`
/// after the last one; [`recv_timeout`](Self::recv_timeout) and
/// [`try_recv`](Self::try_recv) wait for a while or not at all. When the
/// items are exhausted, [`finish`](Self::finish) gives the run's
/// [`RunReport`] or [`PipelineError`].
///
/// The pipeline runs on its own while the `Drain` is read: spawned on its
/// runtime ([`on`](Pipeline::on), or the default one the enabled features
/// provide). A runtime-free pipeline starts no thread: the reader drives it
/// inside `next`, `recv_timeout`, `try_recv` and `finish`, so it makes
/// progress only while the `Drain` is read. Up to `capacity` items wait for
/// the reader (plus the batch it is reading), then the pipeline waits:
/// backpressure.
///
/// Dropping the `Drain` cancels the pipeline.
///
/// # Caveats
///
/// `next`, `recv_timeout` and `finish` block the calling thread: call them
/// from synchronous code, not from an async task (there, run the pipeline
/// with a terminal method such as [`run_for_each`](Pipeline::run_for_each), or read
/// it as a `Stream`).
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let mut drain = producer::iter(1..=3u32).map(|x| x * 10).into_drain(8);
/// let items: Vec<u32> = drain.by_ref().collect();
/// assert_eq!(items, [10, 20, 30]);
/// let report = drain.finish().unwrap();
/// assert_eq!(report.delivered(), 3);
/// ```
#[must_use = "a Drain cancels its pipeline when dropped"]
pub struct Drain<T> {
    feed: Feed<T>,
    run: Run,
    waker: Option<(ThreadId, Waker)>,
    /// The clock `recv_timeout` times on: the pipeline's runtime (`None`
    /// when runtime-free: the real clock).
    clock: Option<Arc<dyn Runtime>>,
}

type RunResult = Result<RunReport, PipelineError>;

/// The drained pipeline's run: a task on its runtime, or (runtime-free) the
/// run itself, polled by the reader.
enum Run {
    Spawned(JoinHandle<RunResult>),
    Inline(BoxFuture<'static, RunResult>),
    Done(RunResult),
}

impl Run {
    /// Runtime-free, polls the run once: progress made by the reader.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Run::Inline(run) = self {
            if let Poll::Ready(result) = run.as_mut().poll(cx) {
                *self = Run::Done(result);
            }
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Run::Spawned(join) => join.is_finished(),
            Run::Inline(_) => false,
            Run::Done(_) => true,
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// Starts the pipeline and returns its output as a blocking iterator, for
    /// synchronous code: see [`Drain`].
    ///
    /// Call it last, after [`on`](Self::on) / [`on_runtime`](Self::on_runtime):
    /// the pipeline is spawned on its runtime right away (runtime-free, the
    /// reader drives it: see [`Drain`]). `capacity` items may wait for the
    /// reader before the pipeline waits.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: the drain needs room for at least one item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let drain = producer::iter(["a", "b"]).into_drain(4);
    /// for item in drain {
    ///     println!("{item}");
    /// }
    /// ```
    #[track_caller]
    pub fn into_drain(self, capacity: usize) -> Drain<S::Item>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
    {
        if capacity == 0 {
            crate::rejection::reject(format_args!(
                "into_drain capacity must be at least 1, got 0; \
                 pass the number of items that may wait for the reader, e.g. .into_drain(64)"
            ));
        }
        let shared = Arc::new(Shared::new(capacity));
        let sink = DrainSink::new(Feeder::new(shared.clone()));
        let feed = Feed::new(shared, None);
        let clock = self.core.ctx.executor();
        let run = match &clock {
            Some(rt) => Run::Spawned(rt.spawn(self.run(sink))),
            None => Run::Inline(Box::pin(self.run(sink))),
        };
        Drain {
            feed,
            run,
            waker: None,
            clock,
        }
    }
}

impl<T> Drain<T> {
    /// Waits up to `timeout` for the next item.
    ///
    /// The timeout is measured on the pipeline's clock (`Runtime::now`,
    /// waiting on the runtime's timer): on a virtual clock (the test kit's,
    /// tokio's paused one) it ends in virtual time; runtime-free, on the real
    /// clock. No timer is made when an item is ready at once.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none arrived in time,
    /// [`RecvTimeoutError::Ended`] after the last item.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let mut drain = producer::iter([5u8]).into_drain(1);
    /// assert_eq!(drain.recv_timeout(Duration::from_secs(10)), Ok(5));
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let clock = self.clock.clone();
        self.recv_until(Some((timeout, clock)))
    }

    /// Takes the next item if one is ready; never blocks.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if no item is ready yet,
    /// [`TryRecvError::Ended`] after the last item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::{bridge::{self, TryRecvError}};
    ///
    /// let (feeder, pipeline) = bridge::feeder::<u8>(4);
    /// let mut drain = pipeline.into_drain(4);
    /// assert_eq!(drain.try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        if let Poll::Ready(Some(item)) = self.feed.poll_item(&mut cx) {
            return Ok(item);
        }
        self.run.drive(&mut cx);
        match self.feed.poll_item(&mut cx) {
            Poll::Ready(Some(item)) => Ok(item),
            Poll::Ready(None) => Err(TryRecvError::Ended),
            Poll::Pending => Err(TryRecvError::Empty),
        }
    }

    /// Discards the items not read yet, waits for the pipeline to end and
    /// returns how the run went.
    ///
    /// # Errors
    ///
    /// The run's [`PipelineError`], if it failed. If the runtime shut down
    /// under the run: [`PipelineError::Failed`] from stage `drain` with a
    /// [`JoinError`] as its source.
    ///
    /// # Caveats
    ///
    /// Blocks until the pipeline ends: for a pipeline that never ends (an
    /// open [`Feeder`] upstream, an endless generator), end it first — close
    /// the feeder — or drop the `Drain` to cancel the run instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let drain = producer::iter(0..10).map(|x| 100 / (5 - x)).into_drain(4);
    /// let err = drain.finish().unwrap_err();
    /// assert_eq!(err.stage(), "map#1");
    /// ```
    pub fn finish(mut self) -> Result<RunReport, PipelineError> {
        while self.recv_until(None).is_ok() {}
        let joined = match std::mem::replace(&mut self.run, Run::Done(Ok(RunReport::default()))) {
            Run::Spawned(join) => futures::executor::block_on(join),
            Run::Inline(run) => Ok(futures::executor::block_on(run)),
            Run::Done(result) => Ok(result),
        };
        match joined {
            Ok(result) => result,
            Err(JoinError::Panicked(message)) => Err(PipelineError::Panicked {
                stage: "drain".to_string(),
                message,
                report: Box::default(),
            }),
            Err(error) => Err(PipelineError::failed("drain".to_string(), Box::new(error))),
        }
    }

    fn thread_waker(&mut self) -> Waker {
        let id = thread::current().id();
        match &self.waker {
            Some((owner, waker)) if *owner == id => waker.clone(),
            _ => {
                let waker = ThreadWaker::current();
                self.waker = Some((id, waker.clone()));
                waker
            }
        }
    }

    /// The next item, waiting for it without a limit (`None`) or for up to
    /// a timeout on a clock.
    fn recv_until(
        &mut self,
        limit: Option<(Duration, Option<Arc<dyn Runtime>>)>,
    ) -> Result<T, RecvTimeoutError> {
        let waker = self.thread_waker();
        let mut cx = Context::from_waker(&waker);
        let mut limit = limit;
        // Made on the first wait: no clock read when an item is ready.
        let mut deadline = None;
        loop {
            // Runtime-free, the reader makes the run progress.
            self.run.drive(&mut cx);
            match self.feed.poll_item(&mut cx) {
                Poll::Ready(Some(item)) => return Ok(item),
                Poll::Ready(None) => return Err(RecvTimeoutError::Ended),
                Poll::Pending => {}
            }
            let deadline = match (&mut deadline, limit.take()) {
                (Some(deadline), _) => deadline,
                (slot, Some((timeout, clock))) => slot.insert(Deadline::after(timeout, clock)),
                (slot, None) => slot.insert(Deadline::Never),
            };
            if deadline.poll_expired(&mut cx).is_ready() {
                return Err(RecvTimeoutError::Timeout);
            }
            // A spurious unpark only costs another poll.
            deadline.park();
        }
    }
}

impl<T> Iterator for Drain<T> {
    type Item = T;

    /// Blocks until the next item, or returns `None` after the last one.
    fn next(&mut self) -> Option<T> {
        self.recv_until(None).ok()
    }
}

impl<T> fmt::Debug for Drain<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("feed", &self.feed)
            .field("finished", &self.run.is_finished())
            .finish_non_exhaustive()
    }
}
