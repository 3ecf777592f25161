use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::run::{Pipeline, RunContext, StageInfo, StageKind};
use crate::runtime::{Runtime, Sleep};

pin_project! {
    /// Stream for [`Pipeline::debounce`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Debounce<S: Stream> {
        #[pin]
        upstream: S,
        quiet: Duration,
        latest: Option<S::Item>,
        // When `latest` may go out, if nothing newer arrives first.
        due: Option<Instant>,
        // Armed for `due` or earlier; re-armed when it fires early, so a
        // burst of items costs one timer, not one per item.
        sleep: Option<Sleep>,
        done: bool,
        runtime: Option<Arc<dyn Runtime>>,
        ctx: Arc<RunContext>,
        info: Arc<StageInfo>,
    }
}

impl<S: Stream> fmt::Debug for Debounce<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Debounce")
            .field("quiet", &self.quiet)
            .field("holding", &self.latest.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Debounce<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        let rt = this
            .runtime
            .get_or_insert_with(|| this.ctx.runtime_or_free())
            .clone();
        while !*this.done {
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    if this.latest.replace(item).is_some() {
                        // Superseded before it was due: left out by design.
                        this.info.discarded.add(1);
                    }
                    *this.due = Some(rt.now() + *this.quiet);
                }
                Poll::Ready(None) => *this.done = true,
                Poll::Pending => break,
            }
        }
        if *this.done {
            // The last item goes out at once: nothing newer can replace it.
            *this.sleep = None;
            return Poll::Ready(this.info.emit(this.latest.take()));
        }
        let Some(due) = *this.due else {
            return Poll::Pending;
        };
        loop {
            let sleep = this.sleep.get_or_insert_with(|| rt.sleep_until(due));
            futures::ready!(sleep.as_mut().poll(cx));
            *this.sleep = None;
            if rt.now() >= due {
                *this.due = None;
                this.info.out.bump();
                return Poll::Ready(this.latest.take());
            }
        }
    }
}

impl<S: Stream> Pipeline<S> {
    /// Emits an item only once upstream has been quiet for `quiet` after it;
    /// an item followed sooner by a newer one is skipped (counted as
    /// `discarded`). The last item is emitted as soon as upstream ends.
    ///
    /// For bursts that only matter once they settle (file-change events,
    /// keystrokes, config reloads). Skipped items show in the report's
    /// `discarded` column. Timers run on the pipeline's
    /// runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::producer;
    ///
    /// let events = producer::generator(|out| async move {
    ///     for burst in [[1, 2, 3], [4, 5, 6]] {
    ///         for e in burst {
    ///             out.emit(e).await;
    ///         }
    ///         async_io::Timer::after(Duration::from_millis(100)).await;
    ///     }
    /// });
    /// let (out, _) = futures::executor::block_on(
    ///     events.debounce(Duration::from_millis(30)).run_collect(),
    /// )
    /// .unwrap();
    /// assert_eq!(out, [3, 6]);
    /// ```
    pub fn debounce(mut self, quiet: Duration) -> Pipeline<Debounce<S>> {
        let info = self.core.add_stage("debounce", StageKind::Timing);
        let stream = Debounce {
            upstream: self.stream,
            quiet,
            latest: None,
            due: None,
            sleep: None,
            done: false,
            runtime: None,
            ctx: self.core.ctx.clone(),
            info,
        };
        Pipeline::from_parts(stream, self.core)
    }
}
