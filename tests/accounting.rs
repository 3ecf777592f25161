//! The accounting invariant, by property test: random pipelines of random
//! stages (map, filter, try_map with random failures and panics under random
//! policies, then with small delays, boundaries of random capacity, panicking
//! maps, map_blocking (ordered or not, on one or two threads, panicking at
//! random items), batch, batch_weighted, debounce, sample, zip, merge, broadcast with a
//! dropped branch, balance and partition merged back), completed, failed and
//! cancelled, on smol, tokio and runtime-free. Every stage must balance, a
//! completed run holds nothing in flight, and (for linear pipelines) every
//! source item must end in exactly one place. Unboxed linear pipelines of
//! map, filter and inspect between boundaries (whose upstream tasks then
//! move whole batches) must give exactly the items and per-stage counts.
//!
//! `FLOWLINE_PROPTEST_CASES` scales the case counts (CI runs the default:
//! over 10,000 cases in all).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use flowline::blocking::BlockingOptions;
use flowline::{consumer, producer, Backoff, ErrorPolicy, Pipeline, RunReport};
use futures::stream::BoxStream;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::{Env, Rt, Stop};

const BOOM: &str = "flowline-test-boom";

#[derive(Debug, Clone, Copy)]
enum Policy {
    Stop,
    Skip,
    Retry(u32),
    DeadLetter,
}

#[derive(Debug, Clone)]
enum Op {
    Map(u64),
    Filter(u64),
    TryMap {
        one_in: u64,
        panic: bool,
        transient: bool,
        policy: Policy,
    },
    Then,
    Boundary(usize),
    PanicMap(u64),
    /// `map_blocking` on `parallelism` threads of its own, ordered or not,
    /// panicking at one item in `panic_one_in` if set.
    MapBlocking {
        parallelism: usize,
        ordered: bool,
        panic_one_in: Option<u64>,
    },
    Batch(usize),
    BatchWeighted(usize),
    Debounce,
    Sample,
    Zip(u64),
    Merge(u64),
    BroadcastDropped(usize),
    Balance(usize),
    Partition(usize),
}

impl Op {
    /// Whether the stage changes which items come out, or in which order, in
    /// a way that depends on timing: then only the invariants are checked,
    /// not the exact output.
    fn is_inexact(&self) -> bool {
        matches!(
            self,
            Op::MapBlocking { ordered: false, .. }
                | Op::Batch(_)
                | Op::BatchWeighted(_)
                | Op::Debounce
                | Op::Sample
                | Op::Zip(_)
                | Op::Merge(_)
                | Op::BroadcastDropped(_)
                | Op::Balance(_)
                | Op::Partition(_)
        )
    }
}

fn op() -> impl Strategy<Value = Op> {
    let policy = prop_oneof![
        Just(Policy::Stop),
        Just(Policy::Skip),
        (0u32..3).prop_map(Policy::Retry),
        Just(Policy::DeadLetter),
    ];
    prop_oneof![
        3 => (0u64..100).prop_map(Op::Map),
        2 => (2u64..6).prop_map(Op::Filter),
        4 => (2u64..40, any::<bool>(), any::<bool>(), policy).prop_map(
            |(one_in, panic, transient, policy)| Op::TryMap { one_in, panic, transient, policy }
        ),
        2 => Just(Op::Then),
        3 => (1usize..9).prop_map(Op::Boundary),
        1 => (20u64..200).prop_map(Op::PanicMap),
        1 => (1usize..3, any::<bool>(), proptest::option::weighted(0.3, 20u64..200)).prop_map(
            |(parallelism, ordered, panic_one_in)| Op::MapBlocking { parallelism, ordered, panic_one_in }
        ),
        1 => (1usize..6).prop_map(Op::Batch),
        1 => (1usize..6).prop_map(Op::BatchWeighted),
        1 => Just(Op::Debounce),
        1 => Just(Op::Sample),
        1 => (0u64..50).prop_map(Op::Zip),
        1 => (0u64..50).prop_map(Op::Merge),
        1 => (1usize..5).prop_map(Op::BroadcastDropped),
        1 => (1usize..5).prop_map(Op::Balance),
        1 => (1usize..5).prop_map(Op::Partition),
    ]
}

/// Whether item `id` is hit at stage `stage`, one time in `one_in`.
fn hit(id: u64, stage: usize, one_in: u64) -> bool {
    let mut z = id
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(stage as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % one_in == 0
}

/// Where each item should end, per the stages' rules.
#[derive(Debug, Default)]
struct Expected {
    delivered: Vec<(u64, u64)>,
    filtered: BTreeMap<usize, u64>,
    skipped: BTreeMap<usize, u64>,
    dead: BTreeMap<usize, u64>,
    retried: BTreeMap<usize, u64>,
    /// Whether some item ends the run.
    fatal: bool,
}

fn simulate(n: u64, ops: &[Op]) -> Expected {
    let mut e = Expected::default();
    'items: for id in 0..n {
        let mut val = id;
        for (i, op) in ops.iter().enumerate() {
            let stage = i + 1;
            match *op {
                Op::Map(k) => val = val.wrapping_mul(3).wrapping_add(k),
                Op::Filter(m) if val % m == 0 => {
                    *e.filtered.entry(stage).or_default() += 1;
                    continue 'items;
                }
                Op::Filter(_) => {}
                Op::TryMap {
                    one_in,
                    transient,
                    policy,
                    ..
                } => {
                    if hit(id, stage, one_in) {
                        match policy {
                            Policy::Retry(a) if transient && a >= 1 => {
                                *e.retried.entry(stage).or_default() += 1;
                            }
                            Policy::Skip => {
                                *e.skipped.entry(stage).or_default() += 1;
                                continue 'items;
                            }
                            Policy::DeadLetter => {
                                *e.dead.entry(stage).or_default() += 1;
                                continue 'items;
                            }
                            Policy::Stop | Policy::Retry(_) => {
                                e.fatal = true;
                                continue 'items;
                            }
                        }
                    }
                    val += 1;
                }
                Op::Then => val ^= 1,
                Op::Boundary(_) => {}
                Op::PanicMap(one_in) if hit(id, stage, one_in) => {
                    e.fatal = true;
                    continue 'items;
                }
                Op::PanicMap(_) => {}
                Op::MapBlocking { panic_one_in, .. } => {
                    if panic_one_in.is_some_and(|k| hit(id, stage, k)) {
                        e.fatal = true;
                        continue 'items;
                    }
                    val = val.wrapping_add(7);
                }
                // Inexact stages: only the invariants are checked.
                _ => {}
            }
        }
        e.delivered.push((id, val));
    }
    e
}

type Item = (u64, u64);

type Letters = Arc<Mutex<Vec<(usize, u64)>>>;

/// Builds the pipeline `ops` describes over items `(id, id)` for id in 0..n.
fn build(env: &Env, n: u64, ops: &[Op], letters: &Letters) -> Pipeline<BoxStream<'static, Item>> {
    let mut p = producer::iter((0..n).map(|id| (id, id))).boxed();
    for (i, op) in ops.iter().cloned().enumerate() {
        let stage = i + 1;
        p = match op {
            Op::Map(k) => p
                .map(move |(id, v): Item| (id, v.wrapping_mul(3).wrapping_add(k)))
                .boxed(),
            Op::Filter(m) => p.filter(move |(_, v)| v % m != 0).boxed(),
            Op::TryMap {
                one_in,
                panic,
                transient,
                policy,
            } => {
                let failed_once = Arc::new(Mutex::new(HashSet::new()));
                let q = p.try_map(move |(id, v): Item| {
                    let fails = hit(id, stage, one_in)
                        && (!transient || failed_once.lock().unwrap().insert(id));
                    if !fails {
                        Ok((id, v + 1))
                    } else if panic {
                        panic!("{BOOM}")
                    } else {
                        Err(std::io::Error::other("no"))
                    }
                });
                let q = match policy {
                    Policy::Stop => q,
                    Policy::Skip => q.on_error(ErrorPolicy::Skip),
                    Policy::Retry(attempts) => q.on_error(ErrorPolicy::Retry {
                        attempts,
                        backoff: Backoff::fixed(Duration::from_micros(50)),
                    }),
                    Policy::DeadLetter => {
                        let store = letters.clone();
                        q.on_error(ErrorPolicy::dead_letter(consumer::for_each(
                            move |l: flowline::DeadLetter<Item>| {
                                store.lock().unwrap().push((stage, l.item.0));
                                async {}
                            },
                        )))
                    }
                };
                q.boxed()
            }
            Op::Then => {
                let env = env.clone();
                p.then(move |(id, v): Item| {
                    let env = env.clone();
                    async move {
                        if id % 16 == 0 {
                            env.sleep(Duration::from_micros(100)).await;
                        }
                        (id, v ^ 1)
                    }
                })
                .boxed()
            }
            Op::Boundary(capacity) => p.boundary(capacity).boxed(),
            Op::PanicMap(one_in) => p
                .map(move |(id, v): Item| {
                    if hit(id, stage, one_in) {
                        panic!("{BOOM}");
                    }
                    (id, v)
                })
                .boxed(),
            Op::MapBlocking {
                parallelism,
                ordered,
                panic_one_in,
            } => p
                .map_blocking_with(
                    blocking_options(parallelism, ordered),
                    move |(id, v): Item| {
                        if panic_one_in.is_some_and(|k| hit(id, stage, k)) {
                            panic!("{BOOM}");
                        }
                        (id, v.wrapping_add(7))
                    },
                )
                .boxed(),
            // A batch goes on as its first item (the others are grouped).
            Op::Batch(size) => p
                .batch(size, Duration::from_micros(200))
                .map(|batch: Vec<Item>| batch[0])
                .boxed(),
            Op::BatchWeighted(max) => p
                .batch_weighted(max, Duration::from_micros(200), |(id, _): &Item| {
                    (*id % 3) as usize + 1
                })
                .map(|batch: Vec<Item>| batch[0])
                .boxed(),
            Op::Debounce => p.debounce(Duration::from_micros(50)).boxed(),
            Op::Sample => p.sample(Duration::from_micros(100)).boxed(),
            Op::Zip(k) => p
                .zip(producer::iter(0..k).boundary(2))
                .map(|(item, _): (Item, u64)| item)
                .boxed(),
            Op::Merge(k) => p
                .merge(producer::iter((0..k).map(|i| (1_000_000 + i, i))).boundary(2))
                .boxed(),
            Op::BroadcastDropped(capacity) => {
                let mut branches = p.broadcast(2, capacity, flowline::Overflow::Backpressure);
                drop(branches.pop());
                branches.pop().unwrap().boxed()
            }
            Op::Balance(capacity) => {
                let mut branches = p.balance(2, capacity);
                let (b, a) = (branches.pop().unwrap(), branches.pop().unwrap());
                a.merge(b).boxed()
            }
            Op::Partition(capacity) => {
                let mut branches = p.partition(2, capacity, |(id, _): &Item| (*id % 2) as usize);
                let (b, a) = (branches.pop().unwrap(), branches.pop().unwrap());
                a.merge(b).boxed()
            }
        };
    }
    p.on_runtime(env.runtime.clone())
}

async fn run_case(env: Env, n: u64, ops: Vec<Op>) {
    if std::env::var_os("FLOWLINE_PROPTEST_TRACE").is_some() {
        eprintln!("case {:?}: n={n} {ops:?}", env.kind);
    }
    if ops.iter().any(Op::is_inexact) {
        return inexact_case(env, n, ops).await;
    }
    let expected = simulate(n, &ops);
    let letters: Letters = Arc::default();
    let p = build(&env, n, &ops, &letters);
    let monitor = p.monitor();
    let result = p.run_collect().await;
    let report: RunReport = monitor.report();
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
    }
    let letters = letters.lock().unwrap().clone();
    let per_stage = |f: fn(&flowline::StageReport) -> u64| -> BTreeMap<usize, u64> {
        report
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s) > 0)
            .map(|(i, s)| (i, f(s)))
            .collect()
    };
    if expected.fatal {
        assert!(result.is_err(), "expected a failure\n{report}");
        // Whatever was delivered is a prefix of what would have been.
        let delivered = report.delivered() as usize;
        assert!(delivered <= expected.delivered.len());
        let failed: u64 = report.stages.iter().map(|s| s.failed).sum();
        assert!(failed >= 1, "{report}");
        assert_eq!(report.stages[0].items_out, report.stages[0].items_in);
    } else {
        let (out, _) = result.unwrap_or_else(|e| panic!("{e}\n{report}"));
        assert_eq!(out, expected.delivered);
        assert_eq!(report.in_flight(), 0, "{report}");
        assert_eq!(per_stage(|s| s.filtered), expected.filtered);
        assert_eq!(per_stage(|s| s.skipped), expected.skipped);
        assert_eq!(per_stage(|s| s.dead_lettered), expected.dead);
        assert_eq!(per_stage(|s| s.retried), expected.retried);
        assert_eq!(per_stage(|s| s.failed), BTreeMap::new());
        // Every source item ends in exactly one place.
        let ended: u64 = report.delivered()
            + report
                .stages
                .iter()
                .map(|s| s.filtered + s.skipped + s.dead_lettered + s.failed + s.dropped)
                .sum::<u64>();
        assert_eq!((report.stages[0].items_out, ended), (n, n));
        assert_eq!(letters.len() as u64, expected.dead.values().sum::<u64>());
    }
}

/// A pipeline with timing-dependent stages: every stage balances, a
/// completed run holds nothing in flight, and (without a zip, which stops
/// reading its input early) the source produced every item.
async fn inexact_case(env: Env, n: u64, ops: Vec<Op>) {
    let letters: Letters = Arc::default();
    let p = build(&env, n, &ops, &letters);
    let monitor = p.monitor();
    let result = p.run_collect().await;
    let report: RunReport = monitor.report();
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}\n{ops:?}");
    }
    match result {
        Ok((out, report)) => {
            assert_eq!(out.len() as u64, report.delivered(), "{report}");
            assert_eq!(report.in_flight(), 0, "{report}\n{ops:?}");
            if !ops.iter().any(|op| matches!(op, Op::Zip(_))) {
                assert_eq!(report.stages[0].items_out, n, "{report}\n{ops:?}");
            }
        }
        Err(e) => {
            let failed: u64 = e.report().stages.iter().map(|s| s.failed).sum();
            assert!(failed >= 1, "{e}\n{report}\n{ops:?}");
        }
    }
}

/// How a spawned run ends.
#[derive(Debug, Clone, Copy)]
enum End {
    Shutdown(u64),
    Abort(u64),
}

/// Spawns the pipeline, stops it after `delay` microseconds, and checks that
/// every stage balances and the consumer got exactly what was counted as
/// delivered; after a shutdown, exactly what the source produced (minus what
/// the stages removed).
async fn stop_case(env: Env, n: u64, ops: Vec<Op>, end: End) {
    if std::env::var_os("FLOWLINE_PROPTEST_TRACE").is_some() {
        eprintln!("stop case {:?}: n={n} {ops:?} {end:?}", env.kind);
    }
    let expected = simulate(n, &ops);
    let letters: Letters = Arc::default();
    let received: Arc<Mutex<Vec<Item>>> = Arc::default();
    let sink_received = received.clone();
    let handle = build(&env, n, &ops, &letters).spawn(consumer::for_each(move |item| {
        sink_received.lock().unwrap().push(item);
        async {}
    }));
    let monitor = handle.monitor();
    let (result, report) = match end {
        End::Shutdown(delay) => {
            env.sleep(Duration::from_micros(delay)).await;
            let result = handle.shutdown().await;
            (Some(result), monitor.report())
        }
        End::Abort(delay) => {
            env.sleep(Duration::from_micros(delay)).await;
            let report = handle.abort().await;
            // Final: nothing of the run moves after `abort` resolved.
            env.sleep(Duration::from_micros(200)).await;
            assert_eq!(report.stages, monitor.report().stages);
            (None, report)
        }
    };
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len() as u64, report.delivered(), "{report}");
    if let Some(Ok(_)) = &result {
        assert_eq!(report.in_flight(), 0, "{report}");
    }
    if ops.iter().any(Op::is_inexact) {
        return;
    }
    if let Some(Ok(_)) = result {
        let produced = report.stages[0].items_out;
        let want: Vec<Item> = expected
            .delivered
            .iter()
            .copied()
            .filter(|(id, _)| *id < produced)
            .collect();
        assert_eq!(received, want, "{report}");
        assert_eq!(report.in_flight(), 0, "{report}");
    }
}

fn spawned_runs_stop_without_losing_items(rt: Rt) {
    let strategy = || {
        let end = prop_oneof![
            (0u64..3000).prop_map(End::Shutdown),
            (0u64..3000).prop_map(End::Abort),
        ];
        (0u64..400, proptest::collection::vec(op(), 1..7), end)
    };
    run_cases(rt, cases(900), strategy, |rt, (n, ops, end)| {
        rt.block_on(|env| stop_case(env, n, ops, end))
    });
}

/// Threads a test's cases are spread over. Most of a case's time is spent
/// waiting on timers (tokio's are 1 ms coarse), so cases on parallel
/// threads overlap their waits; every thread runs its own cases on its own
/// kept executor.
const SHARDS: u32 = 3;

/// Runs `cases` cases of the strategy `strategy` makes through `case`,
/// spread over [`SHARDS`] threads, each with its own randomly seeded
/// proptest runner.
fn run_cases<S: Strategy>(
    rt: Rt,
    cases: u32,
    strategy: fn() -> S,
    case: fn(&support::Reused, S::Value),
) {
    quiet_panics();
    std::thread::scope(|scope| {
        for shard in 0..SHARDS {
            scope.spawn(move || {
                let mut runner = TestRunner::new(Config {
                    cases: cases / SHARDS + u32::from(shard < cases % SHARDS),
                    failure_persistence: None,
                    ..Config::default()
                });
                let rt = rt.reused();
                runner
                    .run(&strategy(), |value| {
                        case(&rt, value);
                        Ok(())
                    })
                    .unwrap();
            });
        }
    });
}

/// `default` cases, scaled by `FLOWLINE_PROPTEST_CASES` (a count per test
/// and runtime) when set.
fn cases(default: u32) -> u32 {
    std::env::var("FLOWLINE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Keeps the test's deliberate panics out of the output.
fn quiet_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.contains(BOOM));
            if !quiet {
                default(info);
            }
        }));
    });
}

fn invariant_holds_for_random_pipelines(rt: Rt) {
    let strategy = || (0u64..200, proptest::collection::vec(op(), 1..7));
    run_cases(rt, cases(2500), strategy, |rt, (n, ops)| {
        rt.block_on(|env| run_case(env, n, ops))
    });
}

/// A linear pipeline whose stages all move whole batches between its
/// boundaries (not boxed, so the boundaries' upstream tasks take the batch
/// path): source → map → filter → map that may panic → inspect → boundary →
/// map → filter_map → buffer (backpressure) → filter. Exactly the items and per-stage counts
/// item-by-item semantics give; on a panic, a balanced failed run.
#[derive(Debug, Clone)]
struct Linear {
    n: u64,
    keep_a: u64,
    keep_b: u64,
    keep_c: u64,
    panic_one_in: Option<u64>,
    capacities: (usize, usize),
    /// Consumed by `run_fold` (which takes whole batches), whose closure
    /// panics at this item if set, rather than by `run_collect`.
    fold: Option<Option<usize>>,
}

fn linear() -> impl Strategy<Value = Linear> {
    (
        0u64..3000,
        (2u64..5, 2u64..5, 2u64..5),
        proptest::option::weighted(0.3, 50u64..2000),
        (1usize..600, 1usize..600),
        proptest::option::of(proptest::option::weighted(0.3, 0usize..1500)),
    )
        .prop_map(
            |(n, (keep_a, keep_b, keep_c), panic_one_in, capacities, fold)| Linear {
                n,
                keep_a,
                keep_b,
                keep_c,
                panic_one_in,
                capacities,
                fold,
            },
        )
}

async fn linear_case(env: Env, case: Linear) {
    let Linear {
        n,
        keep_a,
        keep_b,
        keep_c,
        panic_one_in,
        capacities,
        fold,
    } = case.clone();
    let inspected = Arc::new(Mutex::new(0u64));
    let seen = inspected.clone();
    let p = producer::iter(0..n)
        .map(|x| x * 3)
        .filter(move |x| x % keep_a != 0)
        .map(move |x| {
            if panic_one_in.is_some_and(|k| hit(x, 3, k)) {
                panic!("{BOOM}");
            }
            x + 1
        })
        .inspect(move |_| *seen.lock().unwrap() += 1)
        .boundary(capacities.0)
        .map(|x| x ^ 5)
        .filter_map(move |x| (x % keep_b != 0).then_some(x))
        .buffer(capacities.1, flowline::Overflow::Backpressure)
        .filter(move |x| x % keep_c != 0)
        .on_runtime(env.runtime.clone());
    let monitor = p.monitor();
    let result = match fold {
        None => p.run_collect().await,
        Some(panic_at) => {
            p.run_fold(Vec::new(), move |mut out, x| {
                if Some(out.len()) == panic_at {
                    panic!("{BOOM}");
                }
                out.push(x);
                out
            })
            .await
        }
    };
    let report: RunReport = monitor.report();
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}\n{case:?}");
    }
    let mut want = Vec::new();
    let mut filtered = [0u64; 3];
    let mut fatal = false;
    for x in 0..n {
        let x = x * 3;
        if x % keep_a == 0 {
            filtered[0] += 1;
            continue;
        }
        if panic_one_in.is_some_and(|k| hit(x, 3, k)) {
            fatal = true;
            break;
        }
        let x = (x + 1) ^ 5;
        if x % keep_b == 0 {
            filtered[1] += 1;
            continue;
        }
        if x % keep_c == 0 {
            filtered[2] += 1;
            continue;
        }
        want.push(x);
    }
    let consumer_panics = fold.flatten().is_some_and(|at| at < want.len());
    if fatal {
        let err = result.expect_err("a panicking map fails the run");
        // Unless the fold panicked first (another task: either may).
        if !consumer_panics {
            assert_eq!(err.stage(), "map#3", "{report}");
            assert_eq!(report.stages[3].failed, 1, "{report}");
            let failed: u64 = report.stages.iter().map(|s| s.failed).sum();
            assert_eq!(failed, 1, "{report}");
        }
        assert!(report.delivered() as usize <= want.len(), "{report}");
        assert_eq!(report.stages[0].items_out, report.stages[0].items_in);
    } else if consumer_panics {
        let err = result.expect_err("a panicking fold fails the run");
        assert_eq!(err.stage(), "consumer#10", "{report}");
        assert_eq!(
            report.delivered(),
            fold.flatten().unwrap() as u64,
            "{report}"
        );
        assert_eq!(report.stages[10].failed, 1, "{report}");
    } else {
        let (out, _) = result.unwrap_or_else(|e| panic!("{e}\n{report}\n{case:?}"));
        assert_eq!(out, want, "{case:?}");
        assert_eq!(report.in_flight(), 0, "{report}");
        assert_eq!(report.stages[0].items_out, n);
        let counts: Vec<u64> = [2, 7, 9]
            .iter()
            .map(|&i| report.stages[i].filtered)
            .collect();
        assert_eq!(counts, filtered, "{report}");
        assert_eq!(report.stages[4].items_out, *inspected.lock().unwrap());
        assert_eq!(report.delivered(), want.len() as u64);
    }
}

fn batched_linear_pipelines_account_exactly(rt: Rt) {
    quiet_panics();
    let mut runner = TestRunner::new(Config {
        cases: cases(300),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&linear(), |case| {
            rt.block_on(|env| linear_case(env, case));
            Ok(())
        })
        .unwrap();
}

/// A panic in the middle of a batch: the items before it go on (and are
/// delivered), the items after it, never reached, are given back to the
/// stage that counted them — in flight at a filter (not filtered: its
/// predicate let them through), uncounted at a source — so every stage
/// balances and reports what happened to its items.
fn a_panic_mid_batch_gives_back_what_it_did_not_reach(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        let p = producer::iter(0..10u64)
            .filter(|x| x % 2 == 0)
            .map(|x| if x == 4 { panic!("{BOOM}") } else { x })
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        let err = p.run_collect().await.unwrap_err();
        assert_eq!(err.stage(), "map#2");
        let report = monitor.report();
        for s in &report.stages {
            assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
        }
        let counts = |i: usize| {
            let s = &report.stages[i];
            (s.items_in, s.items_out, s.filtered, s.failed, s.in_flight)
        };
        // The source handed over its batch of 10; the filter looked at all
        // of them (0, 2, 4, 6, 8 kept); the map reached 0 and 2, failed on
        // 4, and gave 6 and 8 back to the filter.
        assert_eq!(counts(0), (10, 10, 0, 0, 0), "{report}");
        assert_eq!(counts(1), (10, 3, 5, 0, 2), "{report}");
        assert_eq!(counts(2), (3, 2, 0, 1, 0), "{report}");
        // What the map passed on before it failed was delivered, as it
        // would have been item by item.
        assert_eq!(report.delivered(), 2, "{report}");
    });
}

/// A predicate or an inspect closure that panics mid-batch: exactly the
/// counts and deliveries of item-by-item polling.
fn a_panic_in_a_filter_or_inspect_mid_batch_counts_as_one_by_one(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        let p = producer::iter(0..10u64)
            .filter(|x| {
                if *x == 5 {
                    panic!("{BOOM}")
                } else {
                    x % 2 == 0
                }
            })
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        assert_eq!(p.run_collect().await.unwrap_err().stage(), "filter#1");
        let report = monitor.report();
        let s = &report.stages[1];
        assert_eq!(
            (s.items_in, s.items_out, s.filtered, s.failed, s.in_flight),
            (6, 3, 2, 1, 0),
            "{report}"
        );
        assert_eq!((report.stages[0].items_out, report.delivered()), (6, 3));

        let p = producer::iter(0..10u64)
            .inspect(|x| assert!(*x != 5, "{BOOM}"))
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        assert_eq!(p.run_collect().await.unwrap_err().stage(), "inspect#1");
        let report = monitor.report();
        let s = &report.stages[1];
        assert_eq!((s.items_in, s.items_out, s.failed), (6, 5, 1), "{report}");
        assert_eq!(report.delivered(), 5, "{report}");
        for s in &report.stages {
            assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
        }

        let p = producer::iter(0..10u64)
            .filter_map(|x| {
                assert!(x != 5, "{BOOM}");
                (x % 2 == 0).then_some(x * 10)
            })
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        assert_eq!(p.run_collect().await.unwrap_err().stage(), "filter_map#1");
        let report = monitor.report();
        let s = &report.stages[1];
        assert_eq!(
            (s.items_in, s.items_out, s.filtered, s.failed, s.in_flight),
            (6, 3, 2, 1, 0),
            "{report}"
        );
        assert_eq!((report.stages[0].items_out, report.delivered()), (6, 3));
        for s in &report.stages {
            assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
        }
    });
}

/// A panic downstream of a `filter_map` mid-batch gives the items it had
/// not reached back to the `filter_map` (in flight there, not filtered), as
/// for a `filter`.
fn a_panic_after_a_filter_map_mid_batch_gives_back_to_it(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        let p = producer::iter(0..10u64)
            .filter_map(|x| (x % 2 == 0).then_some(x + 100))
            .map(|x| if x == 104 { panic!("{BOOM}") } else { x })
            .on_runtime(env.runtime.clone());
        let monitor = p.monitor();
        let err = p.run_collect().await.unwrap_err();
        assert_eq!(err.stage(), "map#2");
        let report = monitor.report();
        for s in &report.stages {
            assert!(s.is_balanced(), "unbalanced {s:?}\n{report}");
        }
        let counts = |i: usize| {
            let s = &report.stages[i];
            (s.items_in, s.items_out, s.filtered, s.failed, s.in_flight)
        };
        assert_eq!(counts(0), (10, 10, 0, 0, 0), "{report}");
        assert_eq!(counts(1), (10, 3, 5, 0, 2), "{report}");
        assert_eq!(counts(2), (3, 2, 0, 1, 0), "{report}");
        assert_eq!(report.delivered(), 2, "{report}");
    });
}

/// Behind a `filter_map` a boundary's upstream task and `run_fold` still
/// move whole batches: the `inspect` before it sees a batch's items before
/// the `filter_map` sees the first of them (item by item, they would
/// alternate).
fn a_filter_map_passes_whole_batches_on(rt: Rt) {
    rt.block_on(|env| async move {
        for boundary in [false, true] {
            let log = Arc::new(Mutex::new(Vec::new()));
            let (a, b) = (log.clone(), log.clone());
            let p = producer::iter(0..64u64)
                .inspect(move |_| a.lock().unwrap().push('i'))
                .filter_map(move |x| {
                    b.lock().unwrap().push('f');
                    (x % 4 != 0).then_some(x * 2)
                })
                .on_runtime(env.runtime.clone());
            let out = if boundary {
                p.boundary(16).run_collect().await
            } else {
                p.run_collect().await
            };
            let (out, report) = out.unwrap();
            let want: Vec<u64> = (0..64).filter(|x| x % 4 != 0).map(|x| x * 2).collect();
            assert_eq!(out, want);
            assert_eq!(report.stages[2].filtered, 16, "{report}");
            let log = log.lock().unwrap();
            assert_eq!(log.len(), 128);
            // Batches grow from one item (see `run_fold`, the pump).
            let together = log.windows(4).any(|w| w == ['i'; 4]);
            assert!(together, "filter_map called item by item: {log:?}");
        }
    });
}

/// Options for a `map_blocking` stage: `parallelism` calls at once, results
/// in input order or not.
fn blocking_options(parallelism: usize, ordered: bool) -> BlockingOptions {
    let options = BlockingOptions::new().parallelism(parallelism);
    if ordered {
        options
    } else {
        options.unordered()
    }
}

fn blocking_name(ordered: bool) -> &'static str {
    if ordered {
        "map_blocking#1"
    } else {
        "map_blocking_unordered#1"
    }
}

/// Runs `pipeline` into a consumer that keeps what it receives; returns that
/// and the run's error.
async fn received_before_failure<S>(pipeline: Pipeline<S>) -> (Vec<u64>, flowline::PipelineError)
where
    S: futures::Stream<Item = u64> + Send + 'static,
{
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let err = pipeline
        .run_for_each(move |x| {
            sink.lock().unwrap().push(x);
            async {}
        })
        .await
        .expect_err("the run fails");
    let received = received.lock().unwrap().clone();
    (received, err)
}

/// Every stage of `report` balances, and the map_blocking stage (index 1)
/// passed on exactly what the stage after it took in, with what it admitted
/// and did not pass on or fail in flight.
fn assert_blocking_accounts(report: &RunReport, case: &str) {
    for s in &report.stages {
        assert!(s.is_balanced(), "unbalanced {s:?}\n{report}\n{case}");
    }
    let (source, stage, next) = (&report.stages[0], &report.stages[1], &report.stages[2]);
    assert_eq!(stage.items_in, source.items_out, "{report}\n{case}");
    assert_eq!(next.items_in, stage.items_out, "{report}\n{case}");
    assert_eq!(
        stage.in_flight,
        stage.items_in - stage.items_out - stage.failed,
        "{report}\n{case}"
    );
}

/// A panic in a `map_blocking` call at item `k` of 1,000, ordered or not, on
/// one or four threads: the stage fails that one item; the items it had
/// admitted but not called (or called and not passed on) are in flight; it
/// passed on exactly what the consumer received (ordered: the items before
/// `k`).
fn map_blocking_panic_leaves_uncalled_items_in_flight(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            for parallelism in [1, 4] {
                for k in [0u64, 5, 100] {
                    let case =
                        format!("ordered {ordered}, parallelism {parallelism}, panic at {k}");
                    let calls = Arc::new(Mutex::new(0u64));
                    let counted = calls.clone();
                    let p = producer::iter(0..1000u64)
                        .map_blocking_with(blocking_options(parallelism, ordered), move |x| {
                            *counted.lock().unwrap() += 1;
                            assert!(x != k, "{BOOM}");
                            x
                        })
                        .on_runtime(env.runtime.clone());
                    let (received, err) = received_before_failure(p).await;
                    let report = err.report();
                    assert_eq!(err.stage(), blocking_name(ordered), "{report}\n{case}");
                    assert_blocking_accounts(report, &case);
                    let stage = &report.stages[1];
                    assert_eq!(stage.failed, 1, "{report}\n{case}");
                    let failed: u64 = report.stages.iter().map(|s| s.failed).sum();
                    assert_eq!(failed, 1, "{report}\n{case}");
                    assert_eq!(stage.items_out, received.len() as u64, "{report}\n{case}");
                    assert_eq!(
                        report.delivered(),
                        received.len() as u64,
                        "{report}\n{case}"
                    );
                    assert!(*calls.lock().unwrap() <= stage.items_in, "{report}\n{case}");
                    if ordered {
                        assert_eq!(received, (0..k).collect::<Vec<_>>(), "{case}");
                    } else {
                        assert!(!received.contains(&k), "{case}");
                        let unique: HashSet<_> = received.iter().collect();
                        assert_eq!(unique.len(), received.len(), "{case}");
                    }
                }
            }
        }
    });
}

/// A stage after `map_blocking` fails at item `k`: the blocking stage fails
/// nothing, passed on exactly what the failing stage took in (ordered: the
/// items up to `k`), and holds the rest of what it admitted in flight.
fn map_blocking_downstream_failure_leaves_its_items_in_flight(rt: Rt) {
    quiet_panics();
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            for parallelism in [1, 4] {
                for k in [0u64, 5, 100] {
                    let case = format!("ordered {ordered}, parallelism {parallelism}, fail at {k}");
                    let p = producer::iter(0..1000u64)
                        .map_blocking_with(blocking_options(parallelism, ordered), |x| x)
                        .map(move |x| {
                            assert!(x != k, "{BOOM}");
                            x
                        })
                        .named("check")
                        .on_runtime(env.runtime.clone());
                    let (received, err) = received_before_failure(p).await;
                    let report = err.report();
                    assert_eq!(err.stage(), "check", "{report}\n{case}");
                    assert_blocking_accounts(report, &case);
                    let (stage, check) = (&report.stages[1], &report.stages[2]);
                    assert_eq!((stage.failed, check.failed), (0, 1), "{report}\n{case}");
                    assert_eq!(check.items_out, received.len() as u64, "{report}\n{case}");
                    assert_eq!(
                        stage.items_out,
                        received.len() as u64 + 1,
                        "{report}\n{case}"
                    );
                    if ordered {
                        assert_eq!(received, (0..k).collect::<Vec<_>>(), "{case}");
                    } else {
                        assert!(!received.contains(&k), "{case}");
                    }
                }
            }
        }
    });
}

/// A run aborted while `map_blocking` calls run: every stage balances, and
/// the consumer received exactly what the blocking stage passed on and the
/// report counts as delivered.
fn map_blocking_abort_leaves_its_items_in_flight(rt: Rt) {
    rt.block_on(|env| async move {
        for ordered in [true, false] {
            for parallelism in [1, 4] {
                let case = format!("ordered {ordered}, parallelism {parallelism}, aborted");
                let received = Arc::new(Mutex::new(0u64));
                let sink = received.clone();
                let handle = producer::iter(0..1000u64)
                    .map_blocking_with(blocking_options(parallelism, ordered), |x| {
                        std::thread::sleep(Duration::from_micros(200));
                        x
                    })
                    .on_runtime(env.runtime.clone())
                    .spawn(consumer::for_each(move |_: u64| {
                        *sink.lock().unwrap() += 1;
                        async {}
                    }));
                let seen = received.clone();
                let result = env
                    .stop_when(
                        handle,
                        Duration::from_secs(10),
                        move || *seen.lock().unwrap() >= 20,
                        Stop::Abort,
                    )
                    .await;
                let err = result.expect_err("an aborted run fails");
                let report = err.report();
                assert_blocking_accounts(report, &case);
                let received = *received.lock().unwrap();
                assert!(received < 1000, "{report}\n{case}");
                assert_eq!(report.delivered(), received, "{report}\n{case}");
                assert_eq!(report.stages[1].items_out, received, "{report}\n{case}");
                let failed: u64 = report.stages.iter().map(|s| s.failed).sum();
                assert_eq!(failed, 0, "{report}\n{case}");
            }
        }
    });
}

on_all_runtimes!(
    invariant_holds_for_random_pipelines,
    spawned_runs_stop_without_losing_items,
    batched_linear_pipelines_account_exactly,
    a_panic_mid_batch_gives_back_what_it_did_not_reach,
    a_panic_in_a_filter_or_inspect_mid_batch_counts_as_one_by_one,
    a_panic_after_a_filter_map_mid_batch_gives_back_to_it,
    a_filter_map_passes_whole_batches_on,
    map_blocking_panic_leaves_uncalled_items_in_flight,
    map_blocking_downstream_failure_leaves_its_items_in_flight,
    map_blocking_abort_leaves_its_items_in_flight
);
