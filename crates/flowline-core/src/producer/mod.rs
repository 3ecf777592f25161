//! Producers: where items come from.
//!
//! A [`Producer`] is any [`futures::Stream`]. The constructors here start a
//! [`Pipeline`] from the common cases — an iterator ([`iter`]), an async
//! generator ([`generator`]), any stream ([`from_stream`]) — and
//! [`ProducerExt::into_pipeline`] starts one from any stream.
//!
//! Inside: `source.rs` (the counting source adapter), `generator.rs` (the
//! async generator stream and the state it shares with its emitters),
//! `emitter.rs` ([`Emitter`] and its [`Emit`] future), `free_capacity.rs`
//! ([`free_capacity`]: the room in the queue a producer feeds).

mod emitter;
mod free_capacity;
mod generator;
mod source;

use futures::stream::{self, Stream};

use crate::pipeline::Pipeline;

pub use crate::blocking::{from_blocking_iter, FromBlockingIter};
pub use crate::stage::merge_all;
pub use emitter::{Emit, Emitter};
pub(crate) use free_capacity::feeding;
pub use free_capacity::free_capacity;
pub use generator::Generator;
pub use source::Source;
pub(crate) use source::{poll_producer_batch, BatchProducer};

/// Anything that yields items: implemented for every [`futures::Stream`].
///
/// # Examples
///
/// ```
/// use flowline_core::Producer;
///
/// fn takes_producer<P: Producer<Item = u32>>(_: P) {}
/// takes_producer(futures::stream::iter([1, 2, 3]));
/// ```
pub trait Producer: Stream {}

impl<S: Stream + ?Sized> Producer for S {}

/// Starts a [`Pipeline`] from any producer.
///
/// # Examples
///
/// ```
/// use flowline_core::ProducerExt;
///
/// let (out, _) = futures::executor::block_on(
///     futures::stream::iter(1..=3).into_pipeline().map(|x| x * x).run_collect(),
/// )
/// .unwrap();
/// assert_eq!(out, [1, 4, 9]);
/// ```
pub trait ProducerExt: Producer + Sized {
    /// Wraps this producer as the source stage of a new pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::ProducerExt;
    ///
    /// let pipeline = futures::stream::iter(["a", "b"]).into_pipeline();
    /// let (out, report) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    /// assert_eq!(out, ["a", "b"]);
    /// assert_eq!(report.stages[0].name, "stream#0");
    /// ```
    fn into_pipeline(self) -> Pipeline<Source<Self>> {
        from_stream(self)
    }
}

impl<S: Producer + Sized> ProducerExt for S {}

/// A pipeline whose source is `stream` (stage `stream#0`).
///
/// A [`Pipeline`] is a `Stream` too, but do not nest one
/// here: read as a plain stream, a pipeline *ends* when it fails (so that
/// `StreamExt` code over it terminates), and the outer run would see a
/// short, successful input. Add the stages to that pipeline instead, join
/// it with `merge`/`chain`/`zip` (errors then reach the joined run), or
/// nest [`into_try_stream`](crate::Pipeline::into_try_stream), whose failure
/// is an `Err` item.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let (out, _) = futures::executor::block_on(
///     producer::from_stream(futures::stream::iter([7, 7])).run_collect(),
/// )
/// .unwrap();
/// assert_eq!(out, [7, 7]);
/// ```
pub fn from_stream<S: Stream>(stream: S) -> Pipeline<Source<S>> {
    Source::pipeline("stream", stream)
}

/// A pipeline whose source is an iterator (stage `iter#0`).
///
/// The iterator runs inside the pipeline's task: keep it cheap, or use a
/// blocking producer for iterators that block.
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let (out, _) = futures::executor::block_on(producer::iter(vec!['a', 'b']).run_collect()).unwrap();
/// assert_eq!(out, ['a', 'b']);
/// ```
pub fn iter<I: IntoIterator>(items: I) -> Pipeline<Source<stream::Iter<I::IntoIter>>> {
    Source::pipeline_with("iter", stream::iter(items), Source::poll_iter_batch)
}

/// A pipeline whose source is an async generator (stage `generator#0`).
///
/// `body` receives an [`Emitter`] and writes an ordinary async loop, awaiting
/// whatever it needs and handing each item out with
/// [`emit(item).await`](Emitter::emit) — like Python's `async def` with
/// `yield`, or Kotlin's `flow { emit(x) }`. `emit` returns when downstream has
/// taken the item, so a generator never runs ahead of its consumer. The
/// stream ends when `body` has returned and every [`Emitter`] clone (handed
/// to other tasks or threads) is dropped. A dropped, unfinished `emit` does
/// not send its item ([`Emit::cancel`] hands it back).
///
/// # Examples
///
/// ```
/// use flowline_core::producer;
///
/// let countdown = producer::generator(|out| async move {
///     for i in (1..=3).rev() {
///         out.emit(i).await;
///     }
/// });
/// let (items, _) = futures::executor::block_on(countdown.run_collect()).unwrap();
/// assert_eq!(items, [3, 2, 1]);
/// ```
pub fn generator<T, F, Fut>(body: F) -> Pipeline<Source<Generator<T, Fut>>>
where
    F: FnOnce(Emitter<T>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    Source::pipeline("generator", Generator::new(body))
}
