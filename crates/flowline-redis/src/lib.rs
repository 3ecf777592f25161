//! Redis Streams consumer groups for [flowline](https://docs.rs/flowline):
//! many workers on many machines share one stream of work, each entry
//! acked once it has been processed — at least once, nothing lost when a
//! worker dies.
//!
//! - [`source`] reads a consumer group: this consumer's own pending entries
//!   first, then new ones; it takes over entries idle too long in dead
//!   consumers (`XAUTOCLAIM`) and moves entries delivered too often to a
//!   dead-letter stream. Its items are [`Delivery`]s: a payload and an
//!   [`AckToken`].
//! - [`Deliveries`] is the pipeline of deliveries: its stages (`map`,
//!   `filter`, `try_map`, `map_concurrent`, `map_blocking`, `batch`,
//!   `boundary`, …) keep every token with its item, or settle it when they
//!   remove the item. A stage that could lose a token is not offered (see
//!   [`token`] for the design).
//! - A [`Committer`] hands the payloads to your consumer and acks their
//!   entries in batches once the consumer has flushed them, and at the end
//!   of a successful run — never on drop, abort, panic or failure: those
//!   entries stay pending and are delivered again.
//! - [`sink`] appends to a stream with pipelined `XADD`s.
//! - The run's [`RunReport`](flowline_core::RunReport) has each source's
//!   counts — read, taken, settled, acked, pending at the end, reclaimed,
//!   redelivered, dead-lettered — as named counters of its source stage
//!   ([`source_reports`], [`is_balanced`]); [`Stats`] reads them live.
//! - [`MemoryBackend`] has the same consumer-group semantics in memory,
//!   for tests and for one machine with no server; [`RedisBackend`] talks
//!   to Redis through the `redis` crate, on the pipeline's runtime (smol or
//!   tokio).
//!
//! # Examples
//!
//! ```
//! use flowline_core::{consumer, producer};
//! use flowline_redis::{sink_with, source_with, MemoryBackend};
//!
//! futures::executor::block_on(async {
//!     let mem = MemoryBackend::new(); // or a Redis URL with `source` and `sink`
//!     producer::iter(1..=100u32)
//!         .map(|n| vec![("n".to_string(), n.to_string().into_bytes())])
//!         .run(sink_with(mem.clone(), "jobs"))
//!         .await?;
//!
//!     let jobs = source_with(mem.clone(), "jobs", "workers", "worker-1")
//!         .stop_when_empty()
//!         .connect()
//!         .await?;
//!     let (tx, rx) = std::sync::mpsc::channel();
//!     let report = jobs
//!         .map(|entry| entry.get_str("n").unwrap().parse::<u64>().unwrap())
//!         .filter(|n| n % 10 == 0)
//!         .run(consumer::for_each(move |n| { tx.send(n).unwrap(); async {} }))
//!         .await?;
//!
//!     assert_eq!(rx.iter().sum::<u64>(), 550);
//!     assert_eq!(mem.pending("jobs", "workers"), 0);
//!     // The run's report has the source's counts (and shows them in its table).
//!     let source = &flowline_redis::source_reports(&report)[0];
//!     assert_eq!((source.read, source.taken, source.settled, source.acked), (100, 10, 90, 100));
//!     assert!(flowline_redis::is_balanced(&report));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! .unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod backend;
mod committer;
mod deliveries;
mod entry;
mod error;
mod link;
mod sink;
mod source;
mod stats;
pub mod token;

use std::sync::Arc;

/// The `redis` client crate this connector is built on, for
/// [`RedisBackend::new`] and for plain commands.
pub use ::redis;

pub use backend::{MemoryBackend, RedisBackend};
pub use committer::{CommitError, CommitPolicy, Committer};
pub use deliveries::{Deliveries, OnError};
pub use entry::{Entry, EntryId, Fields, ParseEntryIdError};
pub use error::{Error, ErrorKind};
pub use sink::StreamSink;
pub use source::SourceBuilder;
pub use stats::{is_balanced, source_reports, SourceReport, Stats};
pub use token::{AckToken, Delivery};

/// A source reading `stream` as `consumer` in `group`, on the Redis server
/// at `url` (`redis://host:port/db`). Configure it, then
/// [`connect`](SourceBuilder::connect) (checks the server and the group
/// first) or [`build`](SourceBuilder::build).
///
/// # Examples
///
/// ```
/// let builder = flowline_redis::source("redis://127.0.0.1:6379/", "jobs", "workers", "worker-1");
/// # drop(builder);
/// ```
pub fn source(url: &str, stream: &str, group: &str, consumer: &str) -> SourceBuilder {
    SourceBuilder::new(
        source::redis_backend(url, stream, group),
        stream,
        group,
        consumer,
    )
}

/// [`source`] over any [`Backend`](backend::Backend), such as a
/// [`MemoryBackend`].
///
/// # Examples
///
/// ```
/// use flowline_redis::{source_with, MemoryBackend};
///
/// let builder = source_with(MemoryBackend::new(), "jobs", "workers", "worker-1");
/// # drop(builder);
/// ```
pub fn source_with(
    backend: impl backend::Backend,
    stream: &str,
    group: &str,
    consumer: &str,
) -> SourceBuilder {
    SourceBuilder::new(Ok(Arc::new(backend)), stream, group, consumer)
}

/// A consumer appending to `stream` on the Redis server at `url`, with
/// pipelined `XADD`s.
///
/// # Examples
///
/// ```
/// let sink = flowline_redis::sink("redis://127.0.0.1:6379/", "jobs").max_len(1_000_000);
/// # drop(sink);
/// ```
pub fn sink(url: &str, stream: &str) -> StreamSink {
    let backend = RedisBackend::open(url)
        .map(|b| Arc::new(b) as Arc<dyn backend::Backend>)
        .map_err(|e| Error::redis(e, stream, None, "open"));
    StreamSink::new(backend, stream)
}

/// [`sink`] over any [`Backend`](backend::Backend).
///
/// # Examples
///
/// ```
/// let sink = flowline_redis::sink_with(flowline_redis::MemoryBackend::new(), "jobs");
/// # drop(sink);
/// ```
pub fn sink_with(backend: impl backend::Backend, stream: &str) -> StreamSink {
    StreamSink::new(Ok(Arc::new(backend)), stream)
}
