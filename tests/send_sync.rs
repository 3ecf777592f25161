//! Auto traits are part of the API: every public type of flowline-core (and
//! of flowline-redis, with the `redis` feature) is asserted `Send`, `Sync`
//! and `Unpin` — or, where it deliberately is not, asserted *not* to be, with
//! the reason — so a change that gains or loses one fails to compile here.
//! The shape follows tokio-stream's `tests/async_send_sync.rs`.
//!
//! A positive check is a call to a function bounded by the trait. A negative
//! check asks for `<T as AmbiguousIfSync<_>>::some_item`: when `T` is `Sync`
//! both impls apply and the `_` cannot be inferred (a compile error), so it
//! compiles only while `T` is not `Sync`.
//!
//! Why some types are not `Send`, `Sync` or `Unpin` (deliberate, asserted):
//!
//! - **Not `Send`**: `BoundaryLocal` (and every pipeline holding one): the
//!   upstream task of `boundary_local` may hold `!Send` values and stays on
//!   the thread that built it, so the pipeline must too.
//! - **Not `Sync`**: streams, sinks and futures that hold a boxed `Send`
//!   future, stream, sink or closure (a pipeline's boundary tasks, a stage's
//!   timer or retry future, a blocking stage's queued panic payload, a dead
//!   letter sink in an `ErrorPolicy`). Such a value is only ever used through
//!   `&mut` / `Pin<&mut>` — polled, pushed into, awaited — so `Sync` would buy
//!   nothing, and requiring `Sync` of every boxed future would forbid
//!   `!Sync` user futures. futures-util's `BoxStream` / `BoxFuture` make the
//!   same choice. Everything meant to be shared between threads by reference
//!   *is* `Sync`: `Feeder`, `StopHandle`, `Monitor`, `BlockingPool`, reports,
//!   errors, runtimes.
//! - **Not `Unpin`**: the `async fn` futures (`run*`, `shutdown`) are
//!   self-referential state machines, as every `async fn`'s is. The queues of
//!   `boundary`, `buffer`, fan-out branches and `from_blocking_iter` are
//!   `Unpin`, and so are pipelines that end in them.
//!
//! Generic types are checked with parameters that are themselves `Send +
//! Sync + Unpin` (fn pointers, `Ready` futures, a `Vec` iterator stream), so
//! what is checked is what the type adds on its own.

#![allow(clippy::type_complexity)]

use std::future::Future;
use std::pin::Pin;
use std::thread;

use futures::future::{BoxFuture, Ready};
use futures::stream::{BoxStream, Iter};

use flowline::blocking::{BlockingConsumer, FromBlockingIter, MapBlocking};
use flowline::bridge::{
    Drain, Feed, Feeder, PushError, PushTimeoutError, RecvTimeoutError, TryPushError, TryRecvError,
};
use flowline::consumer::{Collect, Count, Discard, Fold, ForEach, FromFn};
use flowline::producer::{Emit, Emitter, Generator, Source};
use flowline::runtime::{
    BlockingFn, JoinError, JoinHandle, NoTokioRuntime, RuntimeFree, Sleep, TokioRuntime,
};
use flowline::smol::SmolRuntime;
use flowline::stage::fan::Branch;
use flowline::stage::{
    Batch, BatchWeighted, Boundary, BoundaryLocal, Buffer, Chain, Debounce, Filter, FilterMap,
    IdleTimeout, Inspect, Map, MapConcurrent, MapConcurrentByKey, MapConcurrentUnordered, Merge,
    MergeAll, Overflowed, Sample, Then, ThenTimeout, Throttle, TryMap, TryThen, Zip,
};
use flowline::time::{Interval, Timeout};
use flowline::{
    consumer, producer, Backoff, BlockingOptions, BlockingPool, BoxError, DeadLetter, Elapsed,
    ErrorPolicy, Monitor, Overflow, Pipeline, PipelineError, PipelineHandle, Rate, RunReport,
    Snapshot, SpawnLocalError, StageError, StageKind, StageReport, StageSnapshot, StopHandle,
    Topology, TryPipeline,
};

fn send<T: ?Sized + Send>() {}
fn sync<T: ?Sized + Sync>() {}
fn unpin<T: ?Sized + Unpin>() {}

/// A stand-in for `!Send` in a negative check (see the module docs).
struct Invalid;

trait AmbiguousIfSync<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<Invalid> for T {}

trait AmbiguousIfSend<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}

trait AmbiguousIfUnpin<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfUnpin<()> for T {}
impl<T: ?Sized + Unpin> AmbiguousIfUnpin<Invalid> for T {}

/// `assert_auto!(Type: Send & !Sync & Unpin)`: each of the three auto
/// traits, positive or negated, checked at compile time.
macro_rules! assert_auto {
    ($ty:ty: Send & $($rest:tt)+) => {{ send::<$ty>(); assert_auto!($ty: $($rest)+); }};
    ($ty:ty: !Send & $($rest:tt)+) => {{
        let _ = <$ty as AmbiguousIfSend<_>>::some_item;
        assert_auto!($ty: $($rest)+);
    }};
    ($ty:ty: Sync & $($rest:tt)+) => {{ sync::<$ty>(); assert_auto!($ty: $($rest)+); }};
    ($ty:ty: !Sync & $($rest:tt)+) => {{
        let _ = <$ty as AmbiguousIfSync<_>>::some_item;
        assert_auto!($ty: $($rest)+);
    }};
    ($ty:ty: Unpin) => { unpin::<$ty>() };
    ($ty:ty: !Unpin) => {
        let _ = <$ty as AmbiguousIfUnpin<_>>::some_item;
    };
}

/// The same for the value of an expression whose type cannot be named (the
/// futures of `async fn` methods).
fn value_send<T: Send>(_: &T) {}

type Item = u32;
type St = Iter<std::vec::IntoIter<Item>>;
type Src = Source<St>;
type Fut = Ready<Item>;
type MapFn = fn(Item) -> Item;
type PredFn = fn(&Item) -> bool;
type FilterMapFn = fn(Item) -> Option<Item>;
type ThenFn = fn(Item) -> Fut;
type TryFn = fn(Item) -> Result<Item, std::io::Error>;
type TryFut = Ready<Result<Item, std::io::Error>>;
type TryThenFn = fn(Item) -> TryFut;
type WeightFn = fn(&Item) -> usize;

#[test]
fn pipelines_producers_and_bridges() {
    assert_auto!(Pipeline<Src>: Send & !Sync & Unpin);
    assert_auto!(TryPipeline<Src>: Send & !Sync & Unpin);
    assert_auto!(Source<St>: Send & Sync & Unpin);
    assert_auto!(Emitter<String>: Send & Sync & Unpin);
    assert_auto!(Emit<'static, String>: Send & Sync & Unpin);
    assert_auto!(Generator<String, BoxFuture<'static, ()>>: Send & !Sync & Unpin);
    assert_auto!(FromBlockingIter<Item>: Send & !Sync & Unpin);
    assert_auto!(Feeder<String>: Send & Sync & Unpin);
    assert_auto!(Feed<String>: Send & Sync & Unpin);
    assert_auto!(Drain<String>: Send & !Sync & Unpin);
    assert_auto!(PushError<String>: Send & Sync & Unpin);
    assert_auto!(TryPushError<String>: Send & Sync & Unpin);
    assert_auto!(PushTimeoutError<String>: Send & Sync & Unpin);
    assert_auto!(TryRecvError: Send & Sync & Unpin);
    assert_auto!(RecvTimeoutError: Send & Sync & Unpin);
}

#[test]
fn stage_streams() {
    assert_auto!(Map<Src, MapFn>: Send & Sync & Unpin);
    assert_auto!(Filter<Src, PredFn>: Send & Sync & Unpin);
    assert_auto!(FilterMap<Src, FilterMapFn>: Send & Sync & Unpin);
    assert_auto!(Then<Src, ThenFn, Fut>: Send & Sync & Unpin);
    assert_auto!(Inspect<Src, fn(&Item)>: Send & Sync & Unpin);
    assert_auto!(Boundary<Item>: Send & Sync & Unpin);
    assert_auto!(Buffer<Item>: Send & Sync & Unpin);
    assert_auto!(Batch<Src>: Send & !Sync & Unpin);
    assert_auto!(BatchWeighted<Src, WeightFn>: Send & !Sync & Unpin);
    assert_auto!(MapConcurrent<Item>: Send & Sync & Unpin);
    assert_auto!(MapConcurrentUnordered<Item>: Send & Sync & Unpin);
    assert_auto!(MapConcurrentByKey<Item>: Send & Sync & Unpin);
    assert_auto!(MapBlocking<Src, MapFn, Item>: Send & !Sync & Unpin);
    assert_auto!(TryMap<Src, TryFn>: Send & !Sync & Unpin);
    assert_auto!(TryThen<Src, TryThenFn, TryFut>: Send & !Sync & Unpin);
    assert_auto!(ThenTimeout<Src, ThenFn, Fut>: Send & !Sync & Unpin);
    assert_auto!(Throttle<Src>: Send & !Sync & Unpin);
    assert_auto!(Debounce<Src>: Send & !Sync & Unpin);
    assert_auto!(Sample<Src>: Send & !Sync & Unpin);
    assert_auto!(IdleTimeout<Src>: Send & !Sync & Unpin);
    assert_auto!(Merge<Src, Src>: Send & Sync & Unpin);
    assert_auto!(MergeAll<Src>: Send & Sync & Unpin);
    assert_auto!(Zip<Src, Src>: Send & Sync & Unpin);
    assert_auto!(Chain<Src, Src>: Send & Sync & Unpin);
    assert_auto!(Branch<Item>: Send & Sync & Unpin);
    assert_auto!(Pipeline<BoxStream<'static, Item>>: Send & !Sync & Unpin);
    // A pipeline with a queue in it can be read with `StreamExt::next`
    // without pinning it first.
    assert_auto!(Pipeline<Boundary<Item>>: Send & !Sync & Unpin);
    assert_auto!(TryPipeline<Boundary<Item>>: Send & !Sync & Unpin);
    assert_auto!(Pipeline<Buffer<Item>>: Send & !Sync & Unpin);
    assert_auto!(Pipeline<Branch<Item>>: Send & !Sync & Unpin);
    // Deliberately `!Send` whatever its items: its upstream task stays on
    // the thread that built it (`boundary_local`'s docs).
    assert_auto!(BoundaryLocal<Item>: !Send & !Sync & Unpin);
    assert_auto!(Pipeline<BoundaryLocal<Item>>: !Send & !Sync & Unpin);
    assert_auto!(Pipeline<Source<FromBlockingIter<Item>>>: Send & !Sync & Unpin);
}

#[test]
fn consumers() {
    assert_auto!(Collect<Item>: Send & Sync & Unpin);
    assert_auto!(Count: Send & Sync & Unpin);
    assert_auto!(Discard: Send & Sync & Unpin);
    assert_auto!(Fold<Item, fn(Item, Item) -> Item>: Send & Sync & Unpin);
    assert_auto!(FromFn<ThenFn, Fut>: Send & Sync & Unpin);
    assert_auto!(ForEach<fn(Item) -> Ready<()>, Ready<()>>: Send & Sync & Unpin);
    assert_auto!(BlockingConsumer<Item, fn(Item)>: Send & Sync & Unpin);
}

#[test]
fn runs_handles_reports_and_errors() {
    assert_auto!(PipelineHandle: Send & !Sync & Unpin);
    assert_auto!(StopHandle: Send & Sync & Unpin);
    assert_auto!(Monitor: Send & Sync & Unpin);
    assert_auto!(Snapshot: Send & Sync & Unpin);
    assert_auto!(StageSnapshot: Send & Sync & Unpin);
    assert_auto!(RunReport: Send & Sync & Unpin);
    assert_auto!(StageReport: Send & Sync & Unpin);
    assert_auto!(StageKind: Send & Sync & Unpin);
    assert_auto!(Topology: Send & Sync & Unpin);
    assert_auto!(PipelineError: Send & Sync & Unpin);
    assert_auto!(SpawnLocalError: Send & Sync & Unpin);
    assert_auto!(BoxError: Send & Sync & Unpin);
    assert_auto!(StageError: Send & Sync & Unpin);
    assert_auto!(ErrorPolicy<Item>: Send & !Sync & Unpin);
    assert_auto!(DeadLetter<Item>: Send & Sync & Unpin);
    assert_auto!(Backoff: Send & Sync & Unpin);
    assert_auto!(Overflow: Send & Sync & Unpin);
    assert_auto!(Overflowed: Send & Sync & Unpin);
    assert_auto!(Rate: Send & Sync & Unpin);
    assert_auto!(Elapsed: Send & Sync & Unpin);
    assert_auto!(BlockingOptions: Send & Sync & Unpin);
    assert_auto!(BlockingPool: Send & Sync & Unpin);
}

#[test]
fn runtimes_and_timers() {
    assert_auto!(SmolRuntime: Send & Sync & Unpin);
    assert_auto!(TokioRuntime: Send & Sync & Unpin);
    assert_auto!(NoTokioRuntime: Send & Sync & Unpin);
    assert_auto!(RuntimeFree: Send & Sync & Unpin);
    // What `on_runtime` takes and `time::current_runtime` returns.
    assert_auto!(std::sync::Arc<dyn flowline::runtime::Runtime>: Send & Sync & Unpin);
    assert_auto!(JoinHandle<Item>: Send & Sync & Unpin);
    assert_auto!(JoinError: Send & Sync & Unpin);
    assert_auto!(Sleep: Send & !Sync & Unpin);
    assert_auto!(BlockingFn: Send & !Sync & Unpin);
    assert_auto!(Interval: Send & !Sync & Unpin);
    assert_auto!(Timeout<Fut>: Send & !Sync & Unpin);
    assert_auto!(Timeout<Pin<Box<dyn Future<Output = ()> + Send>>>: Send & !Sync & Unpin);
}

/// The futures of the `async fn` terminal methods cannot be named: they are
/// checked as values, built from a pipeline with a boundary, a blocking
/// stage and a concurrent stage so that every task-owning part is in them.
#[test]
fn run_futures_are_send() {
    let p = || {
        producer::iter(vec![1u32, 2, 3])
            .map(|x| x + 1)
            .boundary(4)
            .map_blocking(|x| x * 2)
            .map_concurrent(2, |x| async move { x })
    };
    value_send(&p().run(consumer::collect()));
    value_send(&p().run_collect());
    value_send(&p().run_count());
    value_send(&p().run_fold(0, |a, x| a + x));
    value_send(&p().run_for_each(|_| async {}));
    let handle = p().on(SmolRuntime::new()).spawn(consumer::discard());
    let shutdown = handle.shutdown();
    value_send(&shutdown);
    // An async fn's state machine is self-referential: not Unpin.
    AmbiguousIfUnpin::some_item(&shutdown);
    drop(shutdown);
}

/// What the bounds above promise, exercised: the bridge's ends, the stop
/// handle and a monitor each move to another thread while the run goes on.
#[test]
fn bridge_ends_and_handles_work_from_other_threads() {
    let (feeder, items) = flowline::bridge::feeder::<u32>(4);
    let mut drain = items.map(|x| x * 10).into_drain(4);
    let pusher = {
        let feeder = feeder.clone();
        thread::spawn(move || {
            for n in 1..=100 {
                feeder.push(n).unwrap();
            }
        })
    };
    drop(feeder);
    let reader = thread::spawn(move || {
        let got: Vec<u32> = drain.by_ref().collect();
        (got, drain.finish().unwrap())
    });
    pusher.join().unwrap();
    let (got, report) = reader.join().unwrap();
    assert_eq!(got, (1..=100).map(|x| x * 10).collect::<Vec<_>>());
    assert_eq!(report.delivered(), 100);

    smol::block_on(async {
        let (feeder, items) = flowline::bridge::feeder::<u32>(8);
        let handle = items.on(SmolRuntime::new()).spawn(consumer::count());
        let stop = handle.stop_handle();
        let monitor = handle.monitor();
        let pushed = thread::spawn(move || {
            for n in 0..10 {
                feeder.push(n).unwrap();
            }
            // Only now stop: the ten accepted items are still delivered.
            stop.shutdown();
            feeder
        });
        let feeder = pushed.join().unwrap();
        let report = handle.await.unwrap();
        assert_eq!(report.delivered(), 10);
        assert!(feeder.push(99).is_err(), "shutdown closes every feeder");
        let seen = thread::spawn(move || monitor.report().delivered());
        assert_eq!(seen.join().unwrap(), 10);
    });
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use flowline::redis::backend::{
        Backend, BackendFuture, DeadLetterEntry, GroupKey, ReadFrom, Received,
    };
    use flowline::redis::{
        AckToken, CommitError, CommitPolicy, Committer, Deliveries, Delivery, Entry, EntryId,
        Error, ErrorKind, Fields, MemoryBackend, OnError, ParseEntryIdError, RedisBackend,
        SourceBuilder, SourceReport, Stats, StreamSink,
    };

    #[test]
    fn redis_types() {
        assert_auto!(Delivery<Entry>: Send & Sync & Unpin);
        assert_auto!(AckToken: Send & Sync & Unpin);
        assert_auto!(Deliveries<Src>: Send & !Sync & Unpin);
        assert_auto!(Committer<Discard>: Send & !Sync & Unpin);
        assert_auto!(CommitPolicy: Send & Sync & Unpin);
        assert_auto!(CommitError<std::io::Error>: Send & Sync & Unpin);
        assert_auto!(StreamSink: Send & !Sync & Unpin);
        assert_auto!(SourceBuilder: Send & Sync & Unpin);
        assert_auto!(Entry: Send & Sync & Unpin);
        assert_auto!(EntryId: Send & Sync & Unpin);
        assert_auto!(Fields: Send & Sync & Unpin);
        assert_auto!(ParseEntryIdError: Send & Sync & Unpin);
        assert_auto!(Error: Send & Sync & Unpin);
        assert_auto!(ErrorKind: Send & Sync & Unpin);
        assert_auto!(OnError: Send & Sync & Unpin);
        assert_auto!(Stats: Send & Sync & Unpin);
        assert_auto!(SourceReport: Send & Sync & Unpin);
        assert_auto!(MemoryBackend: Send & Sync & Unpin);
        assert_auto!(RedisBackend: Send & Sync & Unpin);
        assert_auto!(std::sync::Arc<dyn Backend>: Send & Sync & Unpin);
        assert_auto!(GroupKey: Send & Sync & Unpin);
        assert_auto!(ReadFrom: Send & Sync & Unpin);
        assert_auto!(Received: Send & Sync & Unpin);
        assert_auto!(DeadLetterEntry: Send & Sync & Unpin);
        assert_auto!(BackendFuture<()>: Send & !Sync & Unpin);
    }
}
