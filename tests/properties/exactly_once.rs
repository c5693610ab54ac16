//! Exactly once, in order: random pipelines of 1 to 8 stages, with parallel
//! and fan-out/fan-in stages, random capacities and chunk limits and seeded
//! delays, deliver exactly the output a plain `Vec` model computes (in order
//! wherever the stages promise order), and every item is dropped once.
//!
//! 1,000 cases by default; 10,000 with `FLOWGATE_STRESS=1`.

use crate::support::runner::Runner;
use crate::support::tracked::{Live, Tracked};
use crate::support::{assert_graph_accounted, scaled, watchdog};
use flowgate::Pipeline;
use futures_lite::future::yield_now;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Par {
    Ordered,
    Unordered,
    ByKey,
}

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    Keep(u64),
    Repeat(usize),
    Delay,
    ParMap(Par, usize),
    ParThen(Par, usize),
    Chunked(usize),
    Broadcast(usize),
    Partition(usize),
    Balance(usize),
    /// A fallible parallel map whose refusals are skipped.
    TryPar(Par, usize),
    /// Ends the input early; only where the order is known.
    Take(usize),
    /// Only where the order is known.
    Skip(usize),
    /// A throttle fast enough to only batch.
    Throttle,
    /// Windows of time, flattened again.
    Windowed,
}

impl Op {
    /// How many outputs one input can give at most.
    fn growth(&self) -> usize {
        match *self {
            Op::Repeat(n) => n.max(1),
            Op::Broadcast(n) => n,
            _ => 1,
        }
    }

    /// Whether the stage keeps its input's order.
    fn keeps_order(&self) -> bool {
        match *self {
            Op::ParMap(par, _) | Op::ParThen(par, _) | Op::TryPar(par, _) => {
                matches!(par, Par::Ordered)
            }
            Op::Broadcast(_) | Op::Partition(_) | Op::Balance(_) => false,
            _ => true,
        }
    }

    /// Whether the stage counts places, so that it needs its input in a
    /// known order.
    fn counts_places(&self) -> bool {
        matches!(self, Op::Take(_) | Op::Skip(_))
    }
}

fn par() -> impl Strategy<Value = Par> {
    prop_oneof![Just(Par::Ordered), Just(Par::Unordered), Just(Par::ByKey)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..5u64).prop_map(Op::Add),
        2 => (2..5u64).prop_map(Op::Keep),
        2 => (0..3usize).prop_map(Op::Repeat),
        2 => Just(Op::Delay),
        2 => (par(), 1..5usize).prop_map(|(p, n)| Op::ParMap(p, n)),
        2 => (par(), 1..5usize).prop_map(|(p, n)| Op::ParThen(p, n)),
        1 => (1..20usize).prop_map(Op::Chunked),
        1 => (1..4usize).prop_map(Op::Broadcast),
        1 => (1..4usize).prop_map(Op::Partition),
        1 => (1..4usize).prop_map(Op::Balance),
        2 => (par(), 1..5usize).prop_map(|(p, n)| Op::TryPar(p, n)),
        1 => (0..500usize).prop_map(Op::Take),
        1 => (0..50usize).prop_map(Op::Skip),
        1 => Just(Op::Throttle),
        1 => Just(Op::Windowed),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    items: u64,
    ops: Vec<Op>,
    /// One (capacity, chunk limit) per stage, the source's first; `None`
    /// leaves the stage's hop as it is, so that the stage may be fused into
    /// the next one.
    hops: Vec<Option<(usize, usize)>>,
    /// Whether stage fusion is on.
    fusion: bool,
    seed: u64,
    runner: Runner,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..400u64,
        prop::collection::vec(op(), 1..=8),
        prop::collection::vec(
            prop::option::weighted(
                0.6,
                (
                    prop_oneof![3 => 1..8usize, 2 => 8..300usize, 1 => Just(usize::MAX)],
                    1..70usize,
                ),
            ),
            9,
        ),
        any::<bool>(),
        any::<u64>(),
        Runner::any(),
    )
        .prop_map(|(items, mut ops, hops, fusion, seed, runner)| {
            // Keep the fan-out bounded: at most 8 outputs per input overall.
            let mut growth = 1;
            let mut ordered = true;
            ops.retain(|op| {
                growth *= op.growth();
                let keep = growth <= 8 && (ordered || !op.counts_places());
                ordered &= !keep || op.keeps_order();
                keep
            });
            Case {
                items,
                ops,
                hops,
                fusion,
                seed,
                runner,
            }
        })
}

/// A seeded number of scheduler yields for one item: delays without a clock.
fn yields(seed: u64, value: u64) -> u64 {
    (seed ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17) % 4
}

async fn delay(seed: u64, value: u64) {
    for _ in 0..yields(seed, value) {
        yield_now().await;
    }
}

/// What the pipeline must deliver, and whether in this order.
fn expected(case: &Case) -> (Vec<u64>, bool) {
    let mut values: Vec<u64> = (0..case.items).collect();
    let mut ordered = true;
    for op in &case.ops {
        values = match *op {
            Op::Add(c) => values.into_iter().map(|v| v + c).collect(),
            Op::Keep(m) => values.into_iter().filter(|v| v % m != 0).collect(),
            Op::Repeat(n) => values
                .into_iter()
                .flat_map(|v| std::iter::repeat_n(v, n))
                .collect(),
            Op::Delay | Op::Chunked(_) => values,
            Op::ParMap(par, _) | Op::ParThen(par, _) => {
                ordered &= matches!(par, Par::Ordered);
                values.into_iter().map(|v| v * 2).collect()
            }
            Op::Broadcast(n) => {
                ordered = false;
                let n = n as u64;
                values
                    .into_iter()
                    .flat_map(|v| (0..n).map(move |i| v * n + i))
                    .collect()
            }
            Op::Partition(_) | Op::Balance(_) => {
                ordered = false;
                values
            }
            Op::TryPar(par, _) => {
                ordered &= matches!(par, Par::Ordered);
                values.into_iter().filter(|v| v % 7 != 3).collect()
            }
            Op::Take(n) => values.into_iter().take(n).collect(),
            Op::Skip(n) => values.into_iter().skip(n).collect(),
            Op::Throttle | Op::Windowed => values,
        };
    }
    (values, ordered)
}

fn stage(p: Pipeline<Tracked>, op: &Op, seed: u64) -> Pipeline<Tracked> {
    match *op {
        Op::Add(c) => p.map(move |t| t.with(t.value + c)),
        Op::Keep(m) => p.filter(move |t| t.value % m != 0),
        Op::Repeat(n) => p.flat_map(move |t| vec![t; n]),
        Op::Delay => p.then(move |t| async move {
            delay(seed, t.value).await;
            t
        }),
        Op::ParMap(par, n) => {
            let f = |t: Tracked| t.with(t.value * 2);
            match par {
                Par::Ordered => p.par_map(n, f),
                Par::Unordered => p.par_map_unordered(n, f),
                Par::ByKey => p.par_map_by_key(n, |t| t.value % 3, f),
            }
        }
        Op::ParThen(par, n) => {
            let f = move |t: Tracked| async move {
                delay(seed, t.value).await;
                t.with(t.value * 2)
            };
            match par {
                Par::Ordered => p.par_then(n, f),
                Par::Unordered => p.par_then_unordered(n, f),
                Par::ByKey => p.par_then_by_key(n, |t| t.value % 3, f),
            }
        }
        Op::Chunked(size) => p.chunks(size).flat_map(|batch| batch),
        Op::Broadcast(n) => p.broadcast(n, move |i, branch| {
            let n = n as u64;
            branch.map(move |t| t.with(t.value * n + i as u64))
        }),
        Op::Partition(n) => p.partition(
            n,
            |t| t.value as usize,
            |_, branch| branch.then(|t| async move { t }),
        ),
        Op::Balance(n) => p.balance(n, move |i, branch| {
            branch.then(move |t| async move {
                delay(seed ^ i as u64, t.value).await;
                t
            })
        }),
        Op::TryPar(par, n) => {
            let f = move |t: Tracked| async move {
                delay(seed, t.value).await;
                if t.value % 7 == 3 {
                    Err("refused")
                } else {
                    Ok(t)
                }
            };
            let p = match par {
                Par::Ordered => p.try_par_then(n, f),
                Par::Unordered => p.try_par_then_unordered(n, f),
                Par::ByKey => p.try_par_then_by_key(n, |t| t.value % 3, f),
            };
            p.on_error(flowgate::OnError::skip()).map(|t| t)
        }
        Op::Take(n) => p.take(n),
        Op::Skip(n) => p.skip(n),
        Op::Throttle => p.throttle(1 << 40, std::time::Duration::from_millis(1)),
        Op::Windowed => p
            .windows(std::time::Duration::from_micros(300))
            .flat_map(|window| window),
    }
}

fn build(case: &Case, live: &Live) -> Pipeline<Tracked> {
    let live = live.clone();
    let hop = |p: Pipeline<Tracked>, hop: Option<(usize, usize)>| match hop {
        Some((capacity, chunk_limit)) => p.capacity(capacity).chunk_limit(chunk_limit),
        None => p,
    };
    let source = flowgate::from_iter((0..case.items).map(move |v| live.item(v)));
    let mut p = hop(source.fusion(case.fusion), case.hops[0]);
    for (op, &config) in case.ops.iter().zip(&case.hops[1..]) {
        p = hop(stage(p, op, case.seed), config);
    }
    p
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let live = Live::new();
    let pipeline = build(&case, &live);
    let control = pipeline.control();
    let runner = case.runner;
    let got = watchdog(move || -> Result<Vec<u64>, flowgate::Error> {
        let items = runner.collect(pipeline)?;
        Ok(items.iter().map(|t| t.value).collect())
    });
    let mut got = got.map_err(|e| TestCaseError::fail(format!("run failed: {e}")))?;
    prop_assert_eq!(live.count(), 0, "items left alive or dropped twice");
    let (mut want, ordered) = expected(&case);
    if !ordered {
        got.sort_unstable();
        want.sort_unstable();
    }
    prop_assert_eq!(got.len(), want.len(), "wrong number of items");
    prop_assert_eq!(got, want);
    let report = control.report();
    assert_graph_accounted(&report);
    prop_assert_eq!(report.delivered() as usize, expected(&case).0.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled(1_000, 10_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_item_arrives_exactly_once(case in case()) {
        run(case)?;
    }
}

#[test]
fn keyed_stages_keep_each_keys_order() {
    // The by-key stages promise order within a key: check it directly, with
    // seeded delays that make the keys overtake one another.
    for seed in 0..20u64 {
        let out: Vec<u64> = watchdog(move || {
            flowgate::from_iter(0..2_000u64)
                .par_then_by_key(
                    4,
                    |v| v % 5,
                    move |v| async move {
                        delay(seed, v).await;
                        v
                    },
                )
                .capacity(7)
                .chunk_limit(3)
                .collect()
                .run_on_threads(2)
        })
        .unwrap();
        assert_eq!(out.len(), 2_000);
        for key in 0..5 {
            let of_key: Vec<u64> = out.iter().copied().filter(|v| v % 5 == key).collect();
            assert!(
                of_key.windows(2).all(|w| w[0] < w[1]),
                "seed {seed}: key {key} out of order"
            );
        }
    }
}
