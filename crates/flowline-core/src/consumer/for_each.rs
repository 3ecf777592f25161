use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;
use pin_project_lite::pin_project;

mod sealed {
    pub trait Sealed {}
    impl Sealed for () {}
    impl<E> Sealed for Result<(), E> {}
}

/// What an async consumer closure may return: `()` (infallible) or
/// `Result<(), E>` (the run fails with `E` as the consumer's error).
pub trait ConsumerOutput: sealed::Sealed {
    /// The consumer's error type.
    type Error;
    /// Converts to a `Result`.
    fn into_result(self) -> Result<(), Self::Error>;
}

impl ConsumerOutput for () {
    type Error = Infallible;
    fn into_result(self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl<E> ConsumerOutput for Result<(), E> {
    type Error = E;
    fn into_result(self) -> Result<(), E> {
        self
    }
}

/// A consumer that awaits `f(item)` for each item, one at a time.
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let report = futures::executor::block_on(
///     producer::iter(1..=3).run(consumer::for_each(|x| async move { println!("got {x}") })),
/// )
/// .unwrap();
/// assert_eq!(report.delivered(), 3);
/// ```
pub fn for_each<T, F, Fut>(f: F) -> ForEach<F, Fut>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = ()>,
{
    FromFn { f, pending: None }
}

/// A fallible consumer: awaits `f(item)` for each item; the first `Err` ends
/// the run with [`PipelineError::Failed`](crate::PipelineError::Failed).
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let result = futures::executor::block_on(producer::iter(1..=5).run(consumer::from_fn(
///     |x: u32| async move { if x < 3 { Ok(()) } else { Err(std::io::Error::other("disk full")) } },
/// )));
/// let err = result.unwrap_err();
/// assert_eq!(err.to_string(), "stage `consumer#1` failed: disk full");
/// ```
pub fn from_fn<T, F, Fut, E>(f: F) -> FromFn<F, Fut>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    FromFn { f, pending: None }
}

/// Sink for [`for_each`].
pub type ForEach<F, Fut> = FromFn<F, Fut>;

pin_project! {
    /// Sink for [`from_fn`] and [`for_each`].
    #[must_use = "sinks do nothing unless used"]
    pub struct FromFn<F, Fut> {
        f: F,
        #[pin]
        pending: Option<Fut>,
    }
}

impl<F, Fut> fmt::Debug for FromFn<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn")
            .field("busy", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, Fut> FromFn<F, Fut>
where
    Fut: Future,
    Fut::Output: ConsumerOutput,
{
    fn poll_pending(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), <Fut::Output as ConsumerOutput>::Error>> {
        let mut this = self.project();
        if let Some(fut) = this.pending.as_mut().as_pin_mut() {
            let out = futures::ready!(fut.poll(cx));
            this.pending.set(None);
            out.into_result()?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T, F, Fut> Sink<T> for FromFn<F, Fut>
where
    F: FnMut(T) -> Fut,
    Fut: Future,
    Fut::Output: ConsumerOutput,
{
    type Error = <Fut::Output as ConsumerOutput>::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let mut this = self.project();
        let fut = (this.f)(item);
        this.pending.set(Some(fut));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_pending(cx)
    }
}
