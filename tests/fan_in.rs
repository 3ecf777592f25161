//! Fan-in: `merge`, `zip`, `concat`, `merge_all`, and fan-out joined back.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use flowline::stage::Overflow;
use flowline::{producer, PipelineError, StageKind};
use support::Rt;

/// A generator pausing every `every` items, so the two sides interleave in
/// time-dependent ways.
fn paced(
    env: &support::Env,
    tag: char,
    n: u32,
    every: u32,
) -> flowline::Pipeline<impl futures::Stream<Item = (char, u32)> + Send + 'static> {
    let sleeper = env.clone();
    producer::generator(move |out| async move {
        for i in 0..n {
            if i % every == 0 {
                sleeper.sleep(Duration::from_millis(1)).await;
            }
            out.emit((tag, i)).await;
        }
    })
}

fn merge_keeps_every_item_and_each_input_order(rt: Rt) {
    rt.block_on(|env| async move {
        let left = paced(&env, 'a', 3_000, 500).boundary(8).named("left");
        let right = paced(&env, 'b', 2_000, 300)
            .map(|(t, i)| (t, i * 2))
            .boundary(4)
            .named("right");
        let (out, report) = left
            .merge(right)
            .named("both")
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let from = |tag| -> Vec<u32> {
            out.iter()
                .filter(|(t, _)| *t == tag)
                .map(|(_, i)| *i)
                .collect()
        };
        assert_eq!(from('a'), (0..3_000).collect::<Vec<_>>());
        assert_eq!(from('b'), (0..2_000).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(out.len(), 5_000);
        let both = report.stage("both").unwrap();
        assert_eq!(both.kind, StageKind::FanIn);
        assert_eq!((both.items_in, both.items_out), (5_000, 5_000));
        // Both sides' stages are in the report, with their own counts.
        assert_eq!(report.stage("left").unwrap().items_out, 3_000);
        let right = report.stage("right").unwrap();
        assert_eq!((right.items_in, right.items_out), (2_000, 2_000));
        let names: HashSet<_> = report.stages.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names.len(), report.stages.len(), "unique names: {report}");
        assert_eq!(report.delivered(), 5_000);
    });
}

fn merge_takes_turns_when_both_are_ready(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, _) = producer::iter(0..100u32)
            .merge(producer::iter(1_000..1_050u32))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let mut expected = Vec::new();
        for i in 0..50 {
            expected.extend([i, 1_000 + i]);
        }
        expected.extend(50..100);
        assert_eq!(out, expected);
    });
}

fn absorbed_stages_are_renumbered(rt: Rt) {
    rt.block_on(|env| async move {
        let (_, report) = producer::iter(0..10u32)
            .map(|x| x + 1)
            .merge(producer::iter(0..4u32).filter(|x| x % 2 == 0))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let rows: Vec<(String, u64, u64)> = report
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.items_in, s.items_out))
            .collect();
        let expected = [
            ("iter#0", 10, 10),
            ("map#1", 10, 10),
            ("iter#2", 4, 4),
            ("filter#3", 4, 2),
            ("merge#4", 12, 12),
            ("consumer#5", 12, 12),
        ];
        let expected: Vec<(String, u64, u64)> = expected
            .iter()
            .map(|(n, i, o)| (n.to_string(), *i, *o))
            .collect();
        assert_eq!(rows, expected);
    });
}

fn an_error_in_the_absorbed_side_ends_the_run(rt: Rt) {
    rt.block_on(|env| async move {
        let right = producer::iter(0..100u32)
            .map(|x| {
                if x == 7 {
                    panic!("right side broke at {x}")
                } else {
                    x
                }
            })
            .named("right-map")
            .boundary(4);
        let err = producer::iter(0..100u32)
            .boundary(4)
            .merge(right)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap_err();
        match err {
            PipelineError::Panicked { stage, message, .. } => {
                assert_eq!(stage, "right-map");
                assert_eq!(message, "right side broke at 7");
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn zip_pairs_items_until_the_shorter_side_ends(rt: Rt) {
    rt.block_on(|env| async move {
        let (pairs, report) = paced(&env, 'a', 500, 100)
            .boundary(4)
            .zip(producer::iter(0..300u64).map(|x| x * 3).boundary(16))
            .named("zipped")
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let expected: Vec<((char, u32), u64)> =
            (0..300).map(|i| (('a', i as u32), i * 3)).collect();
        assert_eq!(pairs, expected);
        assert_eq!(report.stage("zipped").unwrap().items_out, 300);
        assert_eq!(report.delivered(), 300);
    });
}

fn concat_yields_all_of_the_first_then_the_second(rt: Rt) {
    rt.block_on(|env| async move {
        let (out, report) = paced(&env, 'a', 1_000, 250)
            .boundary(8)
            .concat(paced(&env, 'b', 700, 100).boundary(2))
            .named("chain")
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        let expected: Vec<(char, u32)> = (0..1_000)
            .map(|i| ('a', i))
            .chain((0..700).map(|i| ('b', i)))
            .collect();
        assert_eq!(out, expected);
        let chain = report.stage("chain").unwrap();
        assert_eq!((chain.items_in, chain.items_out), (1_700, 1_700));
    });
}

fn merge_all_merges_every_input(rt: Rt) {
    rt.block_on(|env| async move {
        let inputs =
            (0..4u32).map(|k| producer::iter((0..500u32).map(move |i| (k, i))).boundary(8));
        let (out, report) = producer::merge_all(inputs)
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        for k in 0..4 {
            let from: Vec<u32> = out
                .iter()
                .filter(|(t, _)| *t == k)
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(from, (0..500).collect::<Vec<_>>(), "input {k}");
        }
        let stage = report
            .stages
            .iter()
            .find(|s| s.kind == StageKind::FanIn)
            .unwrap();
        assert_eq!((stage.items_in, stage.items_out), (2_000, 2_000));
        assert_eq!(report.delivered(), 2_000);
    });
}

fn broadcast_branches_merged_back_share_one_upstream(rt: Rt) {
    rt.block_on(|env| async move {
        let [a, b]: [_; 2] = producer::iter(0..2_000u32)
            .boundary(16)
            .broadcast(2, 8, Overflow::Backpressure)
            .try_into()
            .unwrap();
        let (mut out, report) = a
            .map(|x| x * 2)
            .merge(b.map(|x| x * 2 + 1))
            .on_runtime(env.runtime.clone())
            .run_collect()
            .await
            .unwrap();
        out.sort_unstable();
        assert_eq!(out, (0..4_000).collect::<Vec<_>>());
        let sources = report
            .stages
            .iter()
            .filter(|s| s.kind == StageKind::Source)
            .count();
        assert_eq!(sources, 1, "the shared upstream is listed once: {report}");
        for branch in ["broadcast#2.0", "broadcast#2.1"] {
            let s = report.stage(branch).unwrap();
            assert_eq!((s.items_in, s.items_out), (2_000, 2_000), "{branch}");
        }
        let merge = report
            .stages
            .iter()
            .find(|s| s.kind == StageKind::FanIn)
            .unwrap();
        assert_eq!((merge.items_in, merge.items_out), (4_000, 4_000));
    });
}

#[test]
#[should_panic(expected = "flowline: merge_all needs at least 1 pipeline")]
fn merge_all_of_nothing_is_rejected() {
    let none: Vec<flowline::Pipeline<flowline::producer::Source<futures::stream::Empty<u8>>>> =
        Vec::new();
    let _ = producer::merge_all(none);
}

on_all_runtimes!(
    merge_keeps_every_item_and_each_input_order,
    merge_takes_turns_when_both_are_ready,
    absorbed_stages_are_renumbered,
    an_error_in_the_absorbed_side_ends_the_run,
    zip_pairs_items_until_the_shorter_side_ends,
    concat_yields_all_of_the_first_then_the_second,
    merge_all_merges_every_input,
    broadcast_branches_merged_back_share_one_upstream,
);
