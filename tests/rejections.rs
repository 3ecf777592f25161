//! Build-time rejections (design invariant 5): every message names one
//! suggested call, and that call is valid and means what it says.
//!
//! Each case makes the rejected call, takes the text after `e.g. ` from the
//! panic message (whose payload must be a `String`, as for every rejection),
//! checks it is exactly the call written next to it (token for token, spaces
//! aside), then makes that very call — same other arguments — and runs it.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use flowline::blocking::{BlockingOptions, BlockingPool};
use flowline::stage::Overflow;
use flowline::{bridge, producer, time, Pipeline, Snapshot};
use futures::Stream;
use support::{Env, Rt};

/// The suggested call in the message of the panic `bad` makes.
fn hint_of(bad: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(bad)).expect_err("the call must be rejected");
    let message = payload
        .downcast::<String>()
        .expect("every rejection's payload is a String");
    assert!(message.starts_with("flowline: "), "{message}");
    let (_, hint) = message
        .split_once(", e.g. ")
        .unwrap_or_else(|| panic!("no suggested call in: {message}"));
    hint.to_string()
}

fn squash(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `hinted!(bad: <rejected call>, on: <receiver>, good: .<call>)` checks the
/// hint is `.<call>` and evaluates `<receiver>.<call>`; without `on:`, the
/// call is a free function's.
macro_rules! hinted {
    (bad: $bad:expr, on: $recv:expr, good: $($call:tt)*) => {{
        let hint = hint_of(|| drop($bad));
        assert_eq!(squash(&hint), squash(stringify!($($call)*)), "hint: {hint}");
        $recv $($call)*
    }};
    (bad: $bad:expr, good: $($call:tt)*) => {{
        let hint = hint_of(|| drop($bad));
        assert_eq!(squash(&hint), squash(stringify!($($call)*)), "hint: {hint}");
        $($call)*
    }};
}

fn four() -> Pipeline<impl Stream<Item = u32> + Send + 'static> {
    producer::iter(0..4u32)
}

async fn run<S>(env: &Env, pipeline: Pipeline<S>) -> Vec<S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    pipeline
        .on_runtime(env.runtime.clone())
        .run_collect()
        .await
        .expect("the suggested call runs")
        .0
}

async fn run_all<S>(env: &Env, branches: Vec<Pipeline<S>>) -> Vec<Vec<S::Item>>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    futures::future::join_all(branches.into_iter().map(|b| run(env, b))).await
}

fn boundary(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(bad: four().boundary(0), on: four(), good: .boundary(64));
        assert_eq!(run(&env, p).await, [0, 1, 2, 3]);
    });
}

fn buffer(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(
            bad: four().buffer(0, Overflow::DropOldest),
            on: four(), good: .buffer(64, Overflow::DropOldest)
        );
        assert_eq!(run(&env, p).await, [0, 1, 2, 3]);
    });
}

fn broadcast_zero_capacity(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(
            bad: four().broadcast(3, 0, Overflow::Backpressure),
            on: four(), good: .broadcast(3, 64, Overflow::Backpressure)
        );
        assert_eq!(run_all(&env, branches).await, vec![vec![0, 1, 2, 3]; 3]);
    });
}

fn broadcast_zero_branches(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(
            bad: four().broadcast(0, 8, Overflow::DropNewest),
            on: four(), good: .broadcast(2, 8, Overflow::DropNewest)
        );
        assert_eq!(run_all(&env, branches).await, vec![vec![0, 1, 2, 3]; 2]);
    });
}

fn broadcast_zero_both(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(
            bad: four().broadcast(0, 0, Overflow::Backpressure),
            on: four(), good: .broadcast(2, 64, Overflow::Backpressure)
        );
        assert_eq!(run_all(&env, branches).await, vec![vec![0, 1, 2, 3]; 2]);
    });
}

fn broadcast_with_no_queue(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(
            bad: four().broadcast_with(Vec::<(usize, Overflow)>::new()),
            on: four(),
            good: .broadcast_with([(64, Overflow::Backpressure), (64, Overflow::Backpressure)])
        );
        assert_eq!(run_all(&env, branches).await, vec![vec![0, 1, 2, 3]; 2]);
    });
}

fn broadcast_with_zero_capacity(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(
            bad: four().broadcast_with([(16, Overflow::Backpressure), (0, Overflow::DropOldest)]),
            on: four(),
            good: .broadcast_with([(16, Overflow::Backpressure), (64, Overflow::DropOldest)])
        );
        assert_eq!(run_all(&env, branches).await, vec![vec![0, 1, 2, 3]; 2]);
    });
}

fn balance_zero_capacity(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(bad: four().balance(2, 0), on: four(), good: .balance(2, 64));
        assert_eq!(branches.len(), 2);
        let mut all: Vec<u32> = run_all(&env, branches).await.concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3]);
    });
}

fn balance_zero_branches(rt: Rt) {
    rt.block_on(|env| async move {
        let branches = hinted!(bad: four().balance(0, 16), on: four(), good: .balance(2, 16));
        assert_eq!(branches.len(), 2);
        let mut all: Vec<u32> = run_all(&env, branches).await.concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3]);
    });
}

fn partition_zero_capacity(rt: Rt) {
    rt.block_on(|env| async move {
        let key = |x: &u32| *x as usize;
        let branches = hinted!(
            bad: four().partition(3, 0, key),
            on: four(), good: .partition(3, 64, key)
        );
        assert_eq!(
            run_all(&env, branches).await,
            [vec![0, 3], vec![1], vec![2]]
        );
    });
}

fn partition_zero_branches(rt: Rt) {
    rt.block_on(|env| async move {
        let key = |x: &u32| *x as usize;
        let branches = hinted!(
            bad: four().partition(0, 4, key),
            on: four(), good: .partition(2, 4, key)
        );
        assert_eq!(run_all(&env, branches).await, [vec![0, 2], vec![1, 3]]);
    });
}

fn map_concurrent(rt: Rt) {
    rt.block_on(|env| async move {
        let f = |x: u32| async move { x * 10 };
        let p = hinted!(bad: four().map_concurrent(0, f), on: four(), good: .map_concurrent(16, f));
        assert_eq!(run(&env, p).await, [0, 10, 20, 30]);
    });
}

fn map_concurrent_unordered(rt: Rt) {
    rt.block_on(|env| async move {
        let f = |x: u32| async move { x * 10 };
        let p = hinted!(
            bad: four().map_concurrent_unordered(0, f),
            on: four(), good: .map_concurrent_unordered(16, f)
        );
        let mut out = run(&env, p).await;
        out.sort_unstable();
        assert_eq!(out, [0, 10, 20, 30]);
    });
}

fn map_concurrent_by_key(rt: Rt) {
    rt.block_on(|env| async move {
        let key_fn = |x: &u32| *x % 2;
        let f = |x: u32| async move { x * 10 };
        let p = hinted!(
            bad: four().map_concurrent_by_key(0, key_fn, f),
            on: four(), good: .map_concurrent_by_key(16, key_fn, f)
        );
        assert_eq!(run(&env, p).await, [0, 10, 20, 30]);
    });
}

fn blocking_parallelism(rt: Rt) {
    rt.block_on(|env| async move {
        let f = |x: u32| x + 1;
        let p = hinted!(
            bad: four().map_blocking_with(BlockingOptions::new().parallelism(0), f),
            on: four(), good: .map_blocking_with(BlockingOptions::new().parallelism(4), f)
        );
        assert_eq!(run(&env, p).await, [1, 2, 3, 4]);
    });
}

fn interval(rt: Rt) {
    rt.block_on(|env| async move {
        use futures::StreamExt as _;
        let ticks = hinted!(
            bad: time::interval(Duration::ZERO),
            good: time::interval(Duration::from_millis(100))
        );
        let p = producer::from_stream(ticks.take(2)).map(|_| 1u32);
        assert_eq!(run(&env, p).await, [1, 1]);
    });
}

fn batch(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(
            bad: four().batch(0, Duration::from_millis(10)),
            on: four(), good: .batch(1024, Duration::from_millis(10))
        );
        assert_eq!(run(&env, p).await, [vec![0, 1, 2, 3]]);
    });
}

fn batch_weighted(rt: Rt) {
    rt.block_on(|env| async move {
        let weight_fn = |x: &u32| *x as usize;
        let p = hinted!(
            bad: four().batch_weighted(0, Duration::from_secs(2), weight_fn),
            on: four(), good: .batch_weighted(65536, Duration::from_secs(2), weight_fn)
        );
        assert_eq!(run(&env, p).await, [vec![0, 1, 2, 3]]);
    });
}

fn sample(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(
            bad: four().sample(Duration::ZERO),
            on: four(), good: .sample(Duration::from_millis(100))
        );
        // An iterator ends before the first tick: nothing is emitted (like
        // Kotlin's `sample`), and the run completes.
        assert_eq!(run(&env, p).await, Vec::<u32>::new());
    });
}

fn throttle_zero_rate(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(bad: four().throttle(0, 2), on: four(), good: .throttle(100, 2));
        assert_eq!(run(&env, p).await, [0, 1, 2, 3]);
    });
}

fn throttle_zero_burst(rt: Rt) {
    rt.block_on(|env| async move {
        let p = hinted!(
            bad: four().throttle((5, Duration::from_millis(10)), 0),
            on: four(), good: .throttle((5, Duration::from_millis(10)), 1)
        );
        assert_eq!(run(&env, p).await, [0, 1, 2, 3]);
    });
}

fn on_progress(rt: Rt) {
    rt.block_on(|env| async move {
        let f = |_: &Snapshot| {};
        let p = hinted!(
            bad: four().on_progress(Duration::ZERO, f),
            on: four(), good: .on_progress(Duration::from_secs(1), f)
        );
        assert_eq!(run(&env, p).await, [0, 1, 2, 3]);
    });
}

fn into_drain(rt: Rt) {
    rt.block_on(|env| async move {
        let drain = hinted!(
            bad: four().into_drain(0),
            on: four().on_runtime(env.runtime.clone()), good: .into_drain(64)
        );
        let out: Vec<u32> = drain.collect();
        assert_eq!(out, [0, 1, 2, 3]);
    });
}

fn feeder(rt: Rt) {
    rt.block_on(|env| async move {
        let (feeder, pipeline) = hinted!(bad: bridge::feeder::<u32>(0), good: bridge::feeder(64));
        feeder.push(7u32).unwrap();
        drop(feeder);
        assert_eq!(run(&env, pipeline).await, [7]);
    });
}

fn blocking_pool(rt: Rt) {
    rt.block_on(|env| async move {
        let pool = hinted!(bad: BlockingPool::new(0), good: BlockingPool::new(4));
        assert_eq!(pool.threads(), 4);
        let p = four().map_blocking_with(BlockingOptions::new().pool(&pool), |x| x * 2);
        assert_eq!(run(&env, p).await, [0, 2, 4, 6]);
    });
}

fn merge_all(rt: Rt) {
    rt.block_on(|env| async move {
        let (first, second) = (four(), four());
        let p = hinted!(
            bad: producer::merge_all(Vec::<Pipeline<producer::Source<futures::stream::Iter<std::ops::Range<u32>>>>>::new()),
            good: producer::merge_all([first, second])
        );
        let mut out = run(&env, p).await;
        out.sort_unstable();
        assert_eq!(out, [0, 0, 1, 1, 2, 2, 3, 3]);
    });
}

on_all_runtimes!(
    boundary,
    buffer,
    broadcast_zero_capacity,
    broadcast_zero_branches,
    broadcast_zero_both,
    broadcast_with_no_queue,
    broadcast_with_zero_capacity,
    balance_zero_capacity,
    balance_zero_branches,
    partition_zero_capacity,
    partition_zero_branches,
    map_concurrent,
    map_concurrent_unordered,
    map_concurrent_by_key,
    blocking_parallelism,
    interval,
    batch,
    batch_weighted,
    sample,
    throttle_zero_rate,
    throttle_zero_burst,
    on_progress,
    into_drain,
    feeder,
    blocking_pool,
    merge_all,
);
