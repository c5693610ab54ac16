//! Conservation under cancellation: random pipelines, cancelled at a random
//! point, account for every item in every stage, deliver a prefix of the
//! expected output, and leave no item alive.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_accounted, watchdog};
use flowgate::{Error, OnError, Pipeline, State};
use proptest::prelude::*;

/// An item that counts how many of its kind are alive.
#[derive(Debug)]
struct Tracked {
    value: u64,
    live: Arc<AtomicI64>,
}

impl Tracked {
    fn new(value: u64, live: &Arc<AtomicI64>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked {
            value,
            live: Arc::clone(live),
        }
    }
    fn with(&self, value: u64) -> Self {
        Tracked::new(value, &self.live)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.with(self.value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    DropMultiplesOf(u64),
    Repeat(u64),
    AsyncAdd(u64),
    TrySkipMultiplesOf(u64),
    /// Where the cancel may come from: this stage cancels on its k-th item.
    CancelAt,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..5u64).prop_map(Op::Add),
        (2..5u64).prop_map(Op::DropMultiplesOf),
        (0..3u64).prop_map(Op::Repeat),
        (1..5u64).prop_map(Op::AsyncAdd),
        (2..6u64).prop_map(Op::TrySkipMultiplesOf),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Runner {
    Run,
    Threads,
    Future,
    Stream,
}

#[derive(Debug, Clone)]
struct Case {
    items: u64,
    ops: Vec<Op>,
    cancel_after: usize,
    capacity: usize,
    chunk_limit: usize,
    runner: Runner,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..1500u64,
        prop::collection::vec(op(), 1..6),
        0..6usize,
        0..1600usize,
        1..70usize,
        1..80usize,
        prop_oneof![
            Just(Runner::Run),
            Just(Runner::Threads),
            Just(Runner::Future),
            Just(Runner::Stream)
        ],
    )
        .prop_map(
            |(items, mut ops, at, cancel_after, capacity, chunk_limit, runner)| {
                ops.insert(at.min(ops.len()), Op::CancelAt);
                Case {
                    items,
                    ops,
                    cancel_after,
                    capacity,
                    chunk_limit,
                    runner,
                }
            },
        )
}

/// The output of `ops` over `0..items`, ignoring the cancel.
fn expected(case: &Case) -> Vec<u64> {
    let mut values: Vec<u64> = (0..case.items).collect();
    for op in &case.ops {
        values = match *op {
            Op::Add(c) | Op::AsyncAdd(c) => values.into_iter().map(|v| v + c).collect(),
            Op::DropMultiplesOf(m) | Op::TrySkipMultiplesOf(m) => {
                values.into_iter().filter(|v| v % m != 0).collect()
            }
            Op::Repeat(n) => values
                .into_iter()
                .flat_map(|v| std::iter::repeat_n(v, n as usize))
                .collect(),
            Op::CancelAt => values,
        };
    }
    values
}

#[derive(Debug)]
struct Odd;
impl std::fmt::Display for Odd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a multiple")
    }
}
impl std::error::Error for Odd {}

fn build(case: &Case, live: &Arc<AtomicI64>) -> Pipeline<Tracked> {
    let live = Arc::clone(live);
    let mut p = flowgate::from_iter((0..case.items).map(move |v| Tracked::new(v, &live)))
        .capacity(case.capacity)
        .chunk_limit(case.chunk_limit);
    let control = p.control();
    for op in case.ops.clone() {
        p = match op {
            Op::Add(c) => p.map(move |t| t.with(t.value + c)),
            Op::DropMultiplesOf(m) => p.filter(move |t| t.value % m != 0),
            Op::Repeat(n) => {
                p.flat_map(move |t| (0..n).map(move |_| t.clone()).collect::<Vec<_>>())
            }
            Op::AsyncAdd(c) => p.then(move |t| async move {
                if t.value % 7 == 0 {
                    futures_lite::future::yield_now().await;
                }
                t.with(t.value + c)
            }),
            Op::TrySkipMultiplesOf(m) => p
                .try_map(move |t| if t.value % m == 0 { Err(Odd) } else { Ok(t) })
                .on_error(OnError::skip())
                .map(|t| t),
            Op::CancelAt => {
                let (stop, mut seen, at) = (control.clone(), 0, case.cancel_after);
                p.inspect(move |_| {
                    seen += 1;
                    if seen == at {
                        stop.cancel();
                    }
                })
            }
        }
        .capacity(case.capacity)
        .chunk_limit(case.chunk_limit);
    }
    p
}

fn run(case: Case) -> Result<(), TestCaseError> {
    use futures_lite::StreamExt;

    let live = Arc::new(AtomicI64::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let pipeline = build(&case, &live);
    let control = pipeline.control();
    let sink = Arc::clone(&out);
    let result: Result<(), Error> = watchdog(move || match case.runner {
        Runner::Stream => futures_lite::future::block_on(async {
            let mut stream = pipeline.into_stream();
            while let Some(item) = stream.next().await {
                sink.lock().unwrap().push(item?.value);
            }
            Ok(())
        }),
        runner => {
            let job = pipeline.for_each(move |t| sink.lock().unwrap().push(t.value));
            match runner {
                Runner::Run => job.run(),
                Runner::Threads => job.run_on_threads(2),
                _ => futures_lite::future::block_on(std::future::IntoFuture::into_future(job)),
            }
        }
    });
    let want = expected(&case);
    let got = out.lock().unwrap().clone();
    prop_assert!(got.len() <= want.len());
    prop_assert_eq!(&got[..], &want[..got.len()], "not a prefix");
    let report = control.report();
    assert_accounted(&report);
    prop_assert_eq!(report.delivered(), got.len() as u64, "{}", report);
    match result {
        Ok(()) => {
            prop_assert_eq!(got.len(), want.len());
            prop_assert_eq!(report.state, State::Done);
            prop_assert_eq!(report.dropped(), 0);
        }
        Err(Error::Cancelled { report: carried }) => {
            prop_assert_eq!(carried.state, State::Cancelled);
            assert_accounted(&carried);
            prop_assert_eq!(carried.delivered(), got.len() as u64);
        }
        Err(other) => return Err(TestCaseError::fail(format!("unexpected error {other}"))),
    }
    prop_assert_eq!(live.load(Ordering::SeqCst), 0, "items left alive");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_item_is_accounted_for_when_a_random_pipeline_is_cancelled(case in case()) {
        run(case)?;
    }
}
