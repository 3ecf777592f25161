//! Consumers: where items end up.
//!
//! A [`Consumer`] is any [`futures::Sink`]. The constructors here cover the
//! common cases: an async closure ([`for_each`], or the fallible [`from_fn`]),
//! collecting into a `Vec` ([`collect`]), counting ([`count`]), folding
//! ([`fold`]) and discarding ([`discard`]). Pass a consumer to
//! [`Pipeline::run`](crate::Pipeline::run); pass `&mut consumer` to read it
//! afterwards.
//!
//! Inside: `for_each.rs` (async-closure sinks), `collect.rs` (in-memory sinks).

mod collect;
mod for_each;

use futures::Sink;

pub use crate::blocking::{blocking, BlockingConsumer};
pub use collect::{collect, count, discard, fold, Collect, Count, Discard, Fold};
pub use for_each::{for_each, from_fn, ConsumerOutput, ForEach, FromFn};

/// Anything that accepts items: implemented for every [`futures::Sink`].
///
/// # Examples
///
/// ```
/// use flowline_core::Consumer;
///
/// fn takes_consumer<C: Consumer<u32>>(_: C) {}
/// takes_consumer(futures::sink::drain());
/// ```
pub trait Consumer<T>: Sink<T> {}

impl<T, S: Sink<T> + ?Sized> Consumer<T> for S {}
