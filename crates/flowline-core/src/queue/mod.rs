//! The one hand-off between tasks: a bounded queue of batches.
//!
//! Inside: `shared.rs` (the state both ends share and the geometry that
//! comes from the capacity), `sender.rs` (the open batch, backpressure and
//! the overflow moves), `receiver.rs` (the item stream and the outcome at
//! its end), `pump.rs` (the loops that move a stream's items into a sender,
//! sending as soon as the stream would wait: item by item, or a batch at a
//! time from stages that hand over whole batches), `batch_stream.rs` (how a
//! stage hands over a whole batch: [`PollBatch`]), `blocking_ends.rs` (ends
//! that are not async tasks: a plain thread's blocking send and receive, a
//! `Sink`'s wait for room, a failure delivered after the items).
//!
//! # The bound
//!
//! A queue of `capacity` holds at most `capacity` items: the batches queued
//! plus the sender's open batch. The receiver's batch in progress (taken
//! out of the queue, not yet yielded) is not counted, so an upstream runs at
//! most `capacity + batch` items ahead of a stalled consumer. Batches are
//! `Vec`s that hold exactly their items' memory (an open batch grows only to
//! the room it was given, and a batch sent part-full is shrunk first), so
//! the item slots allocated by a queue never exceed `capacity`, whatever the
//! producer's rhythm: a one-item batch holds one item's memory. (Besides:
//! the receiver's batch in hand, at most one batch, and a few words of
//! bookkeeping per queued batch.)
//!
//! # The geometry
//!
//! Batches hold up to a quarter of the capacity (at most 2048 items,
//! [`batch_size`]); how many are queued follows from the item count, so a
//! trickle of one-item batches may fill the whole capacity. A full sender
//! sleeps until the queue is down to half ([`Resume::HalfEmpty`]), or — for
//! the queues of a fan-out — until there is room for one item
//! ([`Resume::AnyRoom`]).
//!
//! # The end
//!
//! The sender finishes with an [`End`]; a sender dropped without finishing
//! ends the queue [`End::Aborted`]. The receiver yields every queued item,
//! then ends (`None`) on [`End::Completed`], or halts its run and stays
//! `Pending` on [`End::Failed`] / [`End::Aborted`], so no stage downstream
//! mistakes a failure for a finished stream.

mod batch_stream;
#[cfg(test)]
mod batch_tests;
mod blocking_ends;
#[cfg(test)]
mod blocking_ends_tests;
mod pump;
mod receiver;
mod sender;
mod shared;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub(crate) use batch_stream::{
    poll_into, BatchOut, Batched, KeepPrefix, PollBatch, Reached, Truncate,
};
pub(crate) use pump::{yield_now, Feeding};
pub(crate) use receiver::Receiver;
pub(crate) use sender::{PushError, Sender};
pub(crate) use shared::{batch_size, Resume};

#[cfg(doc)]
use crate::run::End;
use crate::run::RunContext;
use shared::Shared;

/// A queue of `capacity` items whose receiver halts `ctx` when the queue
/// ends other than [`End::Completed`].
///
/// # Panics
///
/// If `capacity` is 0 (the stage methods check it first, with a clearer
/// message).
pub(crate) fn bounded<T>(capacity: usize, ctx: Arc<RunContext>) -> (Sender<T>, Receiver<T>) {
    bounded_with(capacity, batch_size(capacity), Resume::HalfEmpty, ctx)
}

/// [`bounded`] with batches of at most `batch` items (1 ≤ `batch`), whose
/// full sender goes on as `resume` says.
pub(crate) fn bounded_with<T>(
    capacity: usize,
    batch: usize,
    resume: Resume,
    ctx: Arc<RunContext>,
) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "flowline: a queue needs a capacity of at least 1"
    );
    let batch = batch.clamp(1, capacity);
    let shared = Arc::new(Shared::new(capacity, batch, resume));
    (Sender::new(shared.clone()), Receiver::new(shared, ctx))
}
