use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::EventListener;
use futures::Sink;

use super::{Feeder, TryPushError};

/// The consumer a [`Drain`](super::Drain)'s pipeline runs into: pushes each
/// item into the drain's queue, waiting (asynchronously) while it is full.
pub(crate) struct DrainSink<T> {
    feeder: Feeder<T>,
    /// An item that found the queue full, pushed again on the next poll.
    pending: Option<T>,
    listener: Option<EventListener>,
}

/// The [`Drain`](super::Drain) was dropped while its pipeline ran.
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
        DrainSink {
            feeder,
            pending: None,
            listener: None,
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        while let Some(item) = self.pending.take() {
            match self.feeder.try_push(item) {
                Ok(()) => self.listener = None,
                Err(TryPushError::Closed(_)) => return Poll::Ready(Err(DrainDropped)),
                Err(TryPushError::Full(item)) => {
                    self.pending = Some(item);
                    match &mut self.listener {
                        // Listen, then try again: room made in between is not missed.
                        None => self.listener = Some(self.feeder.listen_for_space()),
                        Some(listener) => {
                            futures::ready!(Pin::new(listener).poll(cx));
                            self.listener = None;
                        }
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T> Sink<T> for DrainSink<T> {
    type Error = DrainDropped;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), DrainDropped> {
        let this = self.get_mut();
        match this.feeder.try_push(item) {
            Ok(()) => Ok(()),
            Err(TryPushError::Full(item)) => {
                this.pending = Some(item);
                Ok(())
            }
            Err(TryPushError::Closed(_)) => Err(DrainDropped),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), DrainDropped>> {
        // The drain's stream ends when this sink (its only feeder) is dropped.
        self.get_mut().poll_pending(cx)
    }
}

impl<T> Unpin for DrainSink<T> {}

impl<T> fmt::Debug for DrainSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainSink")
            .field("feeder", &self.feeder)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}
