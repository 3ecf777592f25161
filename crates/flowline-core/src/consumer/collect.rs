use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;

/// A consumer that collects items into a `Vec`, in order.
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let mut sink = consumer::collect();
/// futures::executor::block_on(producer::iter(1..=3).run(&mut sink)).unwrap();
/// assert_eq!(sink.into_vec(), [1, 2, 3]);
/// ```
pub fn collect<T>() -> Collect<T> {
    Collect::default()
}

/// Sink for [`collect`].
#[derive(Debug, Clone)]
pub struct Collect<T> {
    items: Vec<T>,
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect { items: Vec::new() }
    }
}

impl<T> Collect<T> {
    /// The items collected so far.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Takes the collected items.
    pub fn into_vec(self) -> Vec<T> {
        self.items
    }
}

impl<T> Unpin for Collect<T> {}

impl<T> Sink<T> for Collect<T> {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        self.get_mut().items.push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
}

/// A consumer that counts items.
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let mut counter = consumer::count();
/// futures::executor::block_on(producer::iter(0..42).run(&mut counter)).unwrap();
/// assert_eq!(counter.get(), 42);
/// ```
pub fn count() -> Count {
    Count::default()
}

/// Sink for [`count`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Count {
    n: u64,
}

impl Count {
    /// Items counted so far.
    pub fn get(&self) -> u64 {
        self.n
    }
}

impl<T> Sink<T> for Count {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, _: T) -> Result<(), Infallible> {
        self.get_mut().n += 1;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
}

/// A consumer that drops every item (the run report still counts them).
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let report = futures::executor::block_on(producer::iter(0..5).run(consumer::discard())).unwrap();
/// assert_eq!(report.delivered(), 5);
/// ```
pub fn discard() -> Discard {
    Discard
}

/// Sink for [`discard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl<T> Sink<T> for Discard {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, _: T) -> Result<(), Infallible> {
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
}

/// A consumer that folds items into an accumulator with a synchronous `f`.
///
/// # Examples
///
/// ```
/// use flowline_core::{consumer, producer};
///
/// let mut max = consumer::fold(0, |m: u32, x| m.max(x));
/// futures::executor::block_on(producer::iter([3, 9, 4]).run(&mut max)).unwrap();
/// assert_eq!(max.into_inner(), 9);
/// ```
pub fn fold<A, F>(init: A, f: F) -> Fold<A, F> {
    Fold { acc: Some(init), f }
}

/// Sink for [`fold`].
pub struct Fold<A, F> {
    acc: Option<A>,
    f: F,
}

impl<A: fmt::Debug, F> fmt::Debug for Fold<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fold")
            .field("acc", &self.acc)
            .finish_non_exhaustive()
    }
}

impl<A, F> Fold<A, F> {
    /// The accumulator.
    ///
    /// # Panics
    ///
    /// If `f` panicked during a fold, leaving no accumulator.
    pub fn into_inner(self) -> A {
        self.acc
            .expect("flowline: fold accumulator lost to a panic in the fold function")
    }
}

impl<A, F> Unpin for Fold<A, F> {}

impl<T, A, F: FnMut(A, T) -> A> Sink<T> for Fold<A, F> {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        let this = self.get_mut();
        if let Some(acc) = this.acc.take() {
            this.acc = Some((this.f)(acc, item));
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
}
