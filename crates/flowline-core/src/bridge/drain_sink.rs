use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;

use super::Feeder;

/// The consumer a [`Drain`](super::Drain)'s pipeline runs into: pushes each
/// item into the drain's queue, waiting (asynchronously) while it is full.
pub(crate) struct DrainSink<T> {
    feeder: Feeder<T>,
}

#[derive(Debug)]
pub(crate) struct DrainDropped;

impl fmt::Display for DrainDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Drain reading this pipeline was dropped")
    }
}

impl Error for DrainDropped {}

impl<T> DrainSink<T> {
    pub(crate) fn new(feeder: Feeder<T>) -> Self {
        DrainSink { feeder }
    }

    fn feeder(self: Pin<&mut Self>) -> Pin<&mut Feeder<T>> {
        Pin::new(&mut self.get_mut().feeder)
    }
}

/// The feeder's own `Sink`, with its failure (the queue closed) told as the
/// `Drain` having gone.
impl<T> Sink<T> for DrainSink<T> {
    type Error = DrainDropped;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        self.feeder().poll_ready(cx).map_err(|_| DrainDropped)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), DrainDropped> {
        self.feeder().start_send(item).map_err(|_| DrainDropped)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        self.feeder().poll_flush(cx).map_err(|_| DrainDropped)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        // Retires the drain's only feeder: its stream then ends.
        self.feeder().poll_close(cx).map_err(|_| DrainDropped)
    }
}

impl<T> fmt::Debug for DrainSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainSink")
            .field("feeder", &self.feeder)
            .finish()
    }
}
