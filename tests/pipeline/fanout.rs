//! Fan-out and fan-in: broadcast gives every branch everything, partition
//! splits disjointly and completely, balance and merge lose nothing, and
//! the whole graph is one run with one report.

use std::collections::BTreeSet;

use crate::support::{assert_graph_accounted, watchdog};
use flowgate::{Error, State};
use futures_lite::future::yield_now;
use proptest::prelude::*;

#[test]
fn broadcast_gives_every_branch_every_item() {
    let job = flowgate::from_iter(0..10_000u32).broadcast(3, |i, branch| {
        branch.map(move |x| (i, x)).collect::<Vec<_>>()
    });
    let control = job.control();
    let out = watchdog(move || job.run()).unwrap();
    assert_eq!(out.len(), 3);
    for (i, branch) in out.iter().enumerate() {
        let expected: Vec<(usize, u32)> = (0..10_000).map(|x| (i, x)).collect();
        assert_eq!(branch, &expected);
    }
    let report = control.report();
    assert_graph_accounted(&report);
    let fan = report.stage("broadcast#1").unwrap();
    assert_eq!(
        (fan.received, fan.passed, fan.emitted),
        (10_000, 10_000, 30_000)
    );
    assert_eq!(report.delivered(), 30_000);
}

#[test]
fn broadcast_branches_can_merge_again() {
    let job = flowgate::from_iter(0..1000u64)
        .broadcast(2, |i, branch| match i {
            0 => branch.map(|x| x * 2),
            _ => branch.filter(|x| x % 2 == 0),
        })
        .fold(0u64, |a, x| a + x);
    let control = job.control();
    let sum = watchdog(move || job.run_on_threads(2)).unwrap();
    let expected: u64 =
        (0..1000u64).map(|x| x * 2).sum::<u64>() + (0..1000u64).filter(|x| x % 2 == 0).sum::<u64>();
    assert_eq!(sum, expected);
    assert_graph_accounted(&control.report());
}

#[test]
fn a_slow_broadcast_branch_is_absorbed_by_its_hop_capacity() {
    // The slow branch has room for every item, so the fast one finishes
    // first: a burst is absorbed, not passed on as backpressure.
    let (fast_done_tx, fast_done_rx) = async_channel::bounded::<()>(1);
    let out = watchdog(move || {
        flowgate::from_iter(0..100u32)
            .broadcast(2, move |i, branch| {
                let fast_done_rx = fast_done_rx.clone();
                let fast_done_tx = fast_done_tx.clone();
                if i == 0 {
                    branch.capacity(100).for_each_async(move |_| {
                        let wait = fast_done_rx.clone();
                        async move {
                            // Waits until the fast branch has seen all.
                            let _ = wait.recv().await;
                        }
                    })
                } else {
                    let mut seen = 0;
                    branch.capacity(1).for_each_async(move |_| {
                        seen += 1;
                        if seen == 100 {
                            fast_done_tx.close();
                        }
                        async {}
                    })
                }
            })
            .run()
    })
    .unwrap();
    assert_eq!(out.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn partition_is_disjoint_complete_and_keeps_order(
        items in prop::collection::vec(0u32..1000, 0..2000),
        branches in 1usize..6,
        capacity in 1usize..64,
    ) {
        let input = items.clone();
        let out = watchdog(move || {
            flowgate::from_iter(input)
                .partition(branches, |x| *x as usize, move |_, branch| {
                    branch.capacity(capacity).collect::<Vec<_>>()
                })
                .run()
        })
        .unwrap();
        prop_assert_eq!(out.len(), branches);
        for (i, branch) in out.iter().enumerate() {
            let expected: Vec<u32> = items.iter().copied().filter(|x| *x as usize % branches == i).collect();
            prop_assert_eq!(branch, &expected);
        }
    }

    #[test]
    fn balance_and_merge_lose_and_duplicate_nothing(
        n in 0u32..5000,
        branches in 1usize..5,
        slow in 0usize..5,
        threads in 1usize..=2,
    ) {
        let job = flowgate::from_iter(0..n)
            .chunk_limit(7)
            .balance(branches, move |i, branch| {
                branch.then(move |x| async move {
                    if i == slow {
                        yield_now().await;
                    }
                    (i, x)
                })
            })
            .collect::<Vec<_>>();
        let control = job.control();
        let out = watchdog(move || if threads == 1 { job.run() } else { job.run_on_threads(2) }).unwrap();
        let mut values: Vec<u32> = out.iter().map(|&(_, x)| x).collect();
        values.sort_unstable();
        prop_assert_eq!(values, (0..n).collect::<Vec<_>>());
        // Each branch keeps its own order.
        for b in 0..branches {
            let seen: Vec<u32> = out.iter().filter(|e| e.0 == b).map(|e| e.1).collect();
            prop_assert!(seen.windows(2).all(|w| w[0] < w[1]));
        }
        assert_graph_accounted(&control.report());
    }
}

#[test]
fn merge_takes_every_item_of_independent_pipelines() {
    let sources: Vec<_> = (0..4u64)
        .map(|k| flowgate::from_iter((0..2500u64).map(move |x| k * 10_000 + x)).map(|x| x + 1))
        .collect();
    let job = flowgate::merge(sources).collect::<BTreeSet<_>>();
    let control = job.control();
    let out = watchdog(move || job.run()).unwrap();
    let expected: BTreeSet<u64> = (0..4u64)
        .flat_map(|k| (0..2500).map(move |x| k * 10_000 + x + 1))
        .collect();
    assert_eq!(out, expected);
    let report = control.report();
    assert_graph_accounted(&report);
    assert_eq!(
        report.stages.iter().filter(|s| s.name == "source").count(),
        4
    );
}

#[test]
fn one_control_stops_every_merged_pipeline() {
    let a = flowgate::from_iter(0u64..);
    let early = a.control();
    let b = flowgate::from_iter(0u64..);
    let merged = a.merge(b);
    let control = merged.control();
    let stop = control.clone();
    let err = watchdog(move || {
        merged
            .inspect(move |x| {
                if *x == 50_000 {
                    stop.cancel();
                }
            })
            .count()
            .run()
    })
    .unwrap_err();
    let Error::Cancelled { report } = err else {
        panic!("{err}")
    };
    assert!(report.is_balanced(), "{report}");
    assert!(
        report.stages.iter().all(|s| s.state.is_finished()),
        "{report}"
    );
    // A control taken from an input before the merge sees the same run.
    assert_eq!(early.state(), State::Cancelled);
}

#[test]
fn shutdown_drains_both_sides_of_a_merge() {
    let a = flowgate::from_iter(0u64..);
    let b = flowgate::from_iter(0u64..);
    let merged = a.merge(b);
    let control = merged.control();
    let stop = control.clone();
    let n = watchdog(move || {
        merged
            .fold(0u64, move |n, _| {
                if n == 10_000 {
                    stop.shutdown();
                }
                n + 1
            })
            .run()
    })
    .unwrap();
    let report = control.report();
    assert_eq!(report.state, State::Done);
    assert_eq!(report.dropped(), 0, "{report}");
    assert_eq!(report.delivered(), n);
    assert_graph_accounted(&report);
}

#[test]
fn a_branch_that_panics_fails_the_whole_graph() {
    let job = flowgate::from_iter(0..10_000u32).broadcast(2, |i, branch| {
        branch
            .map(move |x| {
                if i == 1 && x == 777 {
                    panic!("branch {i} broke")
                } else {
                    x
                }
            })
            .name(format!("work{i}"))
            .count()
    });
    let control = job.control();
    let err = watchdog(move || job.run()).unwrap_err();
    assert!(
        matches!(err, Error::StagePanicked { ref stage, .. } if stage == "work1"),
        "{err}"
    );
    let report = control.report();
    assert_eq!(report.state, State::Failed);
    assert!(report.is_balanced(), "{report}");
}

#[test]
fn bad_fan_outs_are_typed_errors() {
    let err = watchdog(|| {
        flowgate::from_iter(0..3u8)
            .broadcast(0, |_, b| b.count())
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::ZeroBranches { .. }), "{err}");
    let err = watchdog(|| {
        flowgate::merge(Vec::<flowgate::Pipeline<u8>>::new())
            .count()
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::ZeroBranches { .. }), "{err}");
    // A builder that drops its branch and returns another pipeline.
    let err = watchdog(|| {
        flowgate::from_iter(0..3u8)
            .partition(
                2,
                |x| usize::from(*x),
                |i, b| {
                    if i == 1 {
                        flowgate::from_iter(0..3u8)
                    } else {
                        b
                    }
                },
            )
            .count()
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::LostBranch { branch: 1, .. }), "{err}");
    let err = watchdog(|| {
        flowgate::from_iter(0..3u8)
            .balance(2, |_, b| b.capacity(0).count())
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::ZeroCapacity { .. }), "{err}");
}
