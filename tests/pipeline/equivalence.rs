//! A pipeline gives exactly what the same chain of `Iterator` adapters
//! gives, in order, whatever its stages, capacities, chunk limits and runner,
//! the stages that end the input early (`take`, `take_while`, `scan`)
//! included.

use crate::support::runner::Runner;
use crate::support::watchdog;

use flowgate::Pipeline;
use proptest::prelude::*;

/// One stage, as data, so the same chain can be built both ways.
#[derive(Debug, Clone, Copy)]
enum Op {
    Map(u64),
    Filter(u64),
    FilterMap(u64),
    /// Each item becomes `x % k` items: none, one or several.
    FlatMap(u64),
    /// An async map that waits (yields) on some items.
    Then(u64),
    Skip(usize),
    /// Ends the input after this many items.
    Take(usize),
    /// Skips while items are not divisible by this.
    SkipWhile(u64),
    /// Ends the input at the first item divisible by this.
    TakeWhile(u64),
    /// Running sums, ending the input once the sum passes this.
    Scan(u64),
    /// Pairs with places, and keeps those in even places.
    Enumerate,
    /// Drops an item whose value over this equals the one before's.
    Dedup(u64),
    /// A parallel fallible map that refuses items divisible by this,
    /// skipped by its policy.
    TryParMap(u64),
    /// A throttle so fast that it only batches.
    Throttle,
}

impl Op {
    fn map(a: u64, x: u64) -> u64 {
        x.wrapping_mul(a).wrapping_add(1)
    }
    fn keep(m: u64, x: &u64) -> bool {
        x % m != 0
    }
    fn filter_map(m: u64, x: u64) -> Option<u64> {
        (x % m != 1).then(|| x / m + x % m)
    }
    fn flat_map(k: u64, x: u64) -> std::ops::Range<u64> {
        x..x + x % k
    }
    fn then(a: u64, x: u64) -> u64 {
        x ^ a
    }
    fn scan(limit: u64, sum: &mut u64, x: u64) -> Option<u64> {
        *sum = sum.wrapping_add(x % 1000);
        (*sum <= limit).then_some(*sum)
    }

    fn apply_iter(self, it: Box<dyn Iterator<Item = u64>>) -> Box<dyn Iterator<Item = u64>> {
        match self {
            Op::Map(a) => Box::new(it.map(move |x| Op::map(a, x))),
            Op::Filter(m) => Box::new(it.filter(move |x| Op::keep(m, x))),
            Op::FilterMap(m) => Box::new(it.filter_map(move |x| Op::filter_map(m, x))),
            Op::FlatMap(k) => Box::new(it.flat_map(move |x| Op::flat_map(k, x))),
            Op::Then(a) => Box::new(it.map(move |x| Op::then(a, x))),
            Op::Skip(n) => Box::new(it.skip(n)),
            Op::Take(n) => Box::new(it.take(n)),
            Op::SkipWhile(m) => Box::new(it.skip_while(move |x| x % m != 0)),
            Op::TakeWhile(m) => Box::new(it.take_while(move |x| x % m != 0)),
            Op::Scan(limit) => Box::new(it.scan(0, move |sum, x| Op::scan(limit, sum, x))),
            Op::Enumerate => Box::new(it.enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, x)| x)),
            Op::Dedup(d) => {
                let mut last = None;
                Box::new(it.filter(move |x| {
                    let keep = last != Some(x / d);
                    last = Some(x / d);
                    keep
                }))
            }
            Op::TryParMap(m) => Box::new(it.filter(move |x| x % m != 0)),
            Op::Throttle => it,
        }
    }

    fn apply_pipeline(self, p: Pipeline<u64>) -> Pipeline<u64> {
        match self {
            Op::Map(a) => p.map(move |x| Op::map(a, x)),
            Op::Filter(m) => p.filter(move |x| Op::keep(m, x)),
            Op::FilterMap(m) => p.filter_map(move |x| Op::filter_map(m, x)),
            Op::FlatMap(k) => p.flat_map(move |x| Op::flat_map(k, x)),
            Op::Then(a) => p.then(move |x| async move {
                if x % 5 == 0 {
                    futures_lite::future::yield_now().await;
                }
                Op::then(a, x)
            }),
            Op::Skip(n) => p.skip(n),
            Op::Take(n) => p.take(n),
            Op::SkipWhile(m) => p.skip_while(move |x| x % m != 0),
            Op::TakeWhile(m) => p.take_while(move |x| x % m != 0),
            Op::Scan(limit) => p.scan(0, move |sum, x| Op::scan(limit, sum, x)),
            Op::Enumerate => p.enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, x)| x),
            Op::Dedup(d) => p.dedup_by_key(move |x| x / d),
            Op::TryParMap(m) => p
                .try_par_map(3, move |x| if x % m == 0 { Err("refused") } else { Ok(x) })
                .on_error(flowgate::OnError::skip())
                .map(|x| x),
            Op::Throttle => p.throttle(1 << 40, std::time::Duration::from_secs(1)),
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..1000u64).prop_map(Op::Map),
        (2..5u64).prop_map(Op::Filter),
        (2..5u64).prop_map(Op::FilterMap),
        // x % k averages about one output per item, so chains stay small.
        (1..4u64).prop_map(Op::FlatMap),
        (0..1000u64).prop_map(Op::Then),
        (0..50usize).prop_map(Op::Skip),
        (0..3000usize).prop_map(Op::Take),
        (2..20u64).prop_map(Op::SkipWhile),
        (5..50u64).prop_map(Op::TakeWhile),
        (0..200_000u64).prop_map(Op::Scan),
        Just(Op::Enumerate),
        (1..4u64).prop_map(Op::Dedup),
        (2..6u64).prop_map(Op::TryParMap),
        Just(Op::Throttle),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    items: u64,
    /// The stages, each with the capacity and chunk limit of its output
    /// hop, or `None` to leave the hop as it is, so that the stage may be
    /// fused into the next one.
    stages: Vec<(Op, Option<(usize, usize)>)>,
    source: Option<(usize, usize)>,
    fusion: bool,
    runner: Runner,
}

fn case() -> impl Strategy<Value = Case> {
    let hop = || prop::option::weighted(0.6, (1..=64usize, 1..=80usize));
    (
        0..=5000u64,
        prop::collection::vec((op(), hop()), 1..=8),
        hop(),
        any::<bool>(),
        Runner::any(),
    )
        .prop_map(|(items, stages, source, fusion, runner)| Case {
            items,
            stages,
            source,
            fusion,
            runner,
        })
}

fn run_case(case: &Case) -> Vec<u64> {
    let hop = |p: Pipeline<u64>, hop: Option<(usize, usize)>| match hop {
        Some((capacity, chunk_limit)) => p.capacity(capacity).chunk_limit(chunk_limit),
        None => p,
    };
    let mut p = hop(
        flowgate::from_iter(0..case.items).fusion(case.fusion),
        case.source,
    );
    for &(op, config) in &case.stages {
        p = hop(op.apply_pipeline(p), config);
    }
    case.runner
        .collect(p)
        .unwrap_or_else(|err| panic!("{:?} run failed: {err}", case.runner))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn output_equals_the_iterator_chain(case in case()) {
        let mut expected: Box<dyn Iterator<Item = u64>> = Box::new(0..case.items);
        for &(op, _) in &case.stages {
            expected = op.apply_iter(expected);
        }
        let expected: Vec<u64> = expected.collect();
        let got = {
            let case = case.clone();
            watchdog(move || run_case(&case))
        };
        prop_assert_eq!(got, expected);
    }
}
