//! What a bounded queue does when it is full: [`Overflow`], and the
//! [`Overflowed`] error of [`Overflow::Fail`].

use std::error::Error;
use std::fmt;

use crate::queue::{batch_size, PushError, Sender};
use crate::run::StageInfo;

/// What a buffer ([`Pipeline::buffer`](crate::Pipeline::buffer)) or a
/// broadcast branch ([`Pipeline::broadcast`](crate::Pipeline::broadcast))
/// does with a new item when its queue is full.
///
/// Every item an overflow policy drops is counted in the stage's
/// [`StageReport::dropped`](crate::StageReport::dropped): nothing is lost
/// silently.
///
/// # Examples
///
/// ```
/// use flowline_core::{producer, stage::Overflow};
///
/// let (out, report) = futures::executor::block_on(
///     producer::iter(0..100u32).buffer(8, Overflow::DropNewest).named("latest").run_collect(),
/// )
/// .unwrap();
/// let stage = report.stage("latest").unwrap();
/// assert_eq!(out.len() as u64 + stage.dropped, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room: a slow consumer slows the producer. Nothing is dropped.
    #[default]
    Backpressure,
    /// Make room by dropping the oldest queued item: the consumer sees the
    /// most recent items.
    DropOldest,
    /// Drop the new item: the consumer sees the items that were queued first.
    DropNewest,
    /// End the run with [`PipelineError::Failed`](crate::PipelineError::Failed)
    /// whose source is [`Overflowed`].
    Fail,
}

/// The error of a queue with [`Overflow::Fail`] that was full when an item
/// arrived. Found as the `source` of
/// [`PipelineError::Failed`](crate::PipelineError::Failed), which names the
/// stage.
///
/// # Examples
///
/// ```
/// use flowline_core::stage::Overflowed;
///
/// let error = Overflowed { capacity: 4 };
/// assert_eq!(error.to_string(), "queue of 4 items is full (Overflow::Fail)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflowed {
    /// The queue's capacity.
    pub capacity: usize,
}

impl fmt::Display for Overflowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queue of {} items is full (Overflow::Fail)",
            self.capacity
        )
    }
}

impl Error for Overflowed {}

/// What became of an offered item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Queued, or dropped by the policy (and counted).
    Done,
    /// The receiving side is gone.
    Closed,
    /// The queue was full and the policy is [`Overflow::Fail`].
    Overflowed,
}

/// Puts `item` into `tx` according to `overflow`, counting drops in `info`.
/// Only [`Overflow::Backpressure`] ever waits.
pub(crate) async fn offer<T>(
    tx: &mut Sender<T>,
    item: T,
    overflow: Overflow,
    info: &StageInfo,
) -> Offered {
    let pushed = match overflow {
        Overflow::Backpressure => tx.send(item).await,
        Overflow::DropOldest => tx.push_displacing(item).map(|displaced| {
            if displaced.is_some() {
                info.dropped.add(1);
            }
        }),
        Overflow::DropNewest | Overflow::Fail => tx.try_push(item),
    };
    match pushed {
        Ok(()) => Offered::Done,
        Err(PushError::Closed(_)) => Offered::Closed,
        Err(PushError::Full(_)) if overflow == Overflow::DropNewest => {
            info.dropped.add(1);
            Offered::Done
        }
        Err(PushError::Full(_)) => {
            info.failed.add(1);
            Offered::Overflowed
        }
    }
}

/// Largest batch of a queue with [`Overflow::DropOldest`]: dropping its
/// oldest item shifts the rest of its batch.
const DROP_OLDEST_BATCH: usize = 64;

/// The batch size of a queue of `capacity` items applying `overflow`.
pub(crate) fn queue_batch(capacity: usize, overflow: Overflow) -> usize {
    let batch = batch_size(capacity);
    match overflow {
        Overflow::DropOldest => batch.min(DROP_OLDEST_BATCH),
        _ => batch,
    }
}

/// Items a task moves without waiting before it yields to its executor, so a
/// never-waiting loop (drop policies, an always-ready source) cannot hog a
/// thread or, runtime-free, the pipeline's poll.
pub(crate) const YIELD_EVERY: u32 = 1024;

/// How often a task feeding a queue of `capacity` items with `overflow`
/// yields. A drop policy never waits, so its task yields once per queueful:
/// runtime-free, the consumer polls the task for each item it takes, and
/// moving more than a queueful per item would only drop more items.
pub(crate) fn yield_every(capacity: usize, overflow: Overflow) -> u32 {
    match overflow {
        Overflow::DropOldest | Overflow::DropNewest => {
            capacity.clamp(1, YIELD_EVERY as usize) as u32
        }
        Overflow::Backpressure | Overflow::Fail => YIELD_EVERY,
    }
}

/// The capacity check of [`buffer`](crate::Pipeline::buffer) and
/// [`buffer_local`](crate::Pipeline::buffer_local): `method` is the one
/// called, named in the message and its suggested call.
#[track_caller]
pub(crate) fn check_capacity(method: &str, capacity: usize, overflow: Overflow) {
    if capacity == 0 {
        crate::rejection::reject(format_args!(
            "{method} capacity must be at least 1, got 0; \
             pass the number of items the queue may hold, e.g. .{method}(64, {})",
            crate::rejection::overflow_expr(overflow)
        ));
    }
}
