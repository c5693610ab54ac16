//! Conservation under cancellation: random pipelines, stopped at a random
//! point (a cancel between stages or inside an async stage, a panic, a
//! deadline), account for every item in every stage, deliver a prefix of
//! the expected output, and leave no item alive. Items that fail, are
//! skipped, time out or go to a dead-letter output are counted too:
//! delivered + filtered + failed + skipped + dead-lettered + dropped = sent.
//! When the source attaches an acknowledgement to each item, each is told
//! exactly once, and the outcomes add up to the same counts as the report.
//!
//! 1,000 cases by default, 5,000 with `FLOWGATE_STRESS=1`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::runner::Runner;
use crate::support::tracked::{Live, Tracked};
use crate::support::{assert_accounted, scaled, watchdog};
use flowgate::{DeadLetter, Error, ItemError, OnError, Outcome, Pipeline, State};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    DropMultiplesOf(u64),
    Repeat(u64),
    AsyncAdd(u64),
    TrySkipMultiplesOf(u64),
    DeadLetterMultiplesOf(u64),
    /// Multiples of this never finish and time out, then are skipped.
    TimeOutMultiplesOf(u64),
    /// Where the stop comes from (see [`Stop`]).
    StopAt,
    /// Ends the input after this many items.
    Take(usize),
    /// Panics on multiples of this, and goes on after each panic.
    RestartPanicsOn(u64),
    /// A fallible parallel stage that skips multiples of this.
    TryParSkip(u64),
}

/// How the run is stopped at the `StopAt` stage's k-th item.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// `cancel()` from a sync stage, between receive and send.
    Cancel,
    /// `cancel()` from inside an async stage, which then awaits forever.
    CancelInside,
    /// The stage panics.
    Panic,
    /// No stop from a stage: a deadline on the whole run.
    Deadline(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..5u64).prop_map(Op::Add),
        (2..5u64).prop_map(Op::DropMultiplesOf),
        (0..3u64).prop_map(Op::Repeat),
        (1..5u64).prop_map(Op::AsyncAdd),
        (2..6u64).prop_map(Op::TrySkipMultiplesOf),
        (2..6u64).prop_map(Op::DeadLetterMultiplesOf),
        (5..40u64).prop_map(Op::TimeOutMultiplesOf),
        (0..300usize).prop_map(Op::Take),
        (3..9u64).prop_map(Op::RestartPanicsOn),
        (2..6u64)
            .prop_map(Op::TrySkipMultiplesOf)
            .prop_map(|op| match op {
                Op::TrySkipMultiplesOf(m) => Op::TryParSkip(m),
                other => other,
            }),
    ]
}

fn stop() -> impl Strategy<Value = Stop> {
    prop_oneof![
        3 => Just(Stop::Cancel),
        2 => Just(Stop::CancelInside),
        2 => Just(Stop::Panic),
        1 => (0..3_000u64).prop_map(Stop::Deadline),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    items: u64,
    ops: Vec<Op>,
    cancel_after: usize,
    stop: Stop,
    capacity: usize,
    chunk_limit: usize,
    runner: Runner,
    /// Whether the source attaches an acknowledgement to each item.
    acked: bool,
    /// Whether the source's hop is configured; if not, the source may run
    /// fused into the stage after it.
    source_hop: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..1500u64,
        prop::collection::vec(op(), 1..6),
        0..6usize,
        0..1600usize,
        stop(),
        1..70usize,
        1..80usize,
        Runner::any(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                items,
                mut ops,
                at,
                cancel_after,
                stop,
                capacity,
                chunk_limit,
                runner,
                acked,
                source_hop,
            )| {
                ops.insert(at.min(ops.len()), Op::StopAt);
                Case {
                    items,
                    ops,
                    cancel_after,
                    stop,
                    capacity,
                    chunk_limit,
                    runner,
                    acked,
                    source_hop,
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
            Op::DropMultiplesOf(m)
            | Op::TrySkipMultiplesOf(m)
            | Op::DeadLetterMultiplesOf(m)
            | Op::TimeOutMultiplesOf(m)
            | Op::RestartPanicsOn(m)
            | Op::TryParSkip(m) => values.into_iter().filter(|v| v % m != 0).collect(),
            Op::Take(n) => values.into_iter().take(n).collect(),
            Op::Repeat(n) => values
                .into_iter()
                .flat_map(|v| std::iter::repeat_n(v, n as usize))
                .collect(),
            Op::StopAt => values,
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

/// What the test keeps to check the run: the dead-letter output.
struct Outputs {
    dead: async_channel::Receiver<DeadLetter<Tracked, Odd>>,
}

/// The outcomes each source item was told, by item.
type Told = Arc<Mutex<Vec<Vec<Outcome>>>>;

fn build(
    case: &Case,
    live: &Live,
    sent: &Arc<AtomicU64>,
    told: &Told,
) -> (Pipeline<Tracked>, Outputs) {
    let (live, sent) = (live.clone(), Arc::clone(sent));
    let make = move |v| {
        sent.fetch_add(1, Ordering::SeqCst);
        live.item(v)
    };
    let source = if case.acked {
        let told = Arc::clone(told);
        flowgate::from_iter_acked((0..case.items).map(move |v| {
            let told = Arc::clone(&told);
            let ack = move |outcome| told.lock().unwrap()[v as usize].push(outcome);
            (make(v), ack)
        }))
    } else {
        flowgate::from_iter((0..case.items).map(make))
    };
    let mut p = if case.source_hop {
        source.capacity(case.capacity).chunk_limit(case.chunk_limit)
    } else {
        source
    };
    // Room for every dead letter, so that the output never blocks the run.
    let (dead_tx, dead) = async_channel::bounded(1 << 16);
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
            Op::DeadLetterMultiplesOf(m) => p
                .try_map(move |t| if t.value % m == 0 { Err(Odd) } else { Ok(t) })
                .on_error(OnError::dead_letter(dead_tx.clone()))
                .map(|t| t),
            Op::TimeOutMultiplesOf(m) => p
                .try_then(move |t: Tracked| async move {
                    if t.value % m == 0 {
                        futures_lite::future::pending::<()>().await;
                    }
                    Ok::<_, Odd>(t)
                })
                .timeout(Duration::from_micros(200))
                .on_error(OnError::skip())
                .map(|t| t),
            Op::Take(n) => p.take(n),
            Op::RestartPanicsOn(m) => p
                .map(move |t| {
                    assert!(t.value % m != 0, "a panic the stage restarts after");
                    t
                })
                .restart_on_panic(u32::MAX, flowgate::Backoff::fixed(Duration::ZERO)),
            Op::TryParSkip(m) => p
                .try_par_map(3, move |t| if t.value % m == 0 { Err(Odd) } else { Ok(t) })
                .on_error(OnError::skip())
                .map(|t| t),
            Op::StopAt => {
                let (stop, mut seen, at) = (control.clone(), 0, case.cancel_after);
                let cancels = matches!(case.stop, Stop::Cancel);
                match case.stop {
                    Stop::Cancel | Stop::Deadline(_) => p.inspect(move |_| {
                        seen += 1;
                        if seen == at && cancels {
                            stop.cancel();
                        }
                    }),
                    Stop::CancelInside => p.then(move |t| {
                        seen += 1;
                        let now = seen == at;
                        let stop = stop.clone();
                        async move {
                            if now {
                                stop.cancel();
                                futures_lite::future::pending::<()>().await;
                            }
                            t
                        }
                    }),
                    Stop::Panic => p.map(move |t| {
                        seen += 1;
                        assert_ne!(seen, at, "stop here");
                        t
                    }),
                }
                .name("stop")
            }
        }
        .capacity(case.capacity)
        .chunk_limit(case.chunk_limit);
    }
    (p, Outputs { dead })
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let live = Live::new();
    let sent = Arc::new(AtomicU64::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let told: Told = Arc::new(Mutex::new(vec![Vec::new(); case.items as usize]));
    let (pipeline, outputs) = build(&case, &live, &sent, &told);
    let control = pipeline.control();
    let sink = Arc::clone(&out);
    let (runner, stop) = (case.runner, case.stop);
    let deadline = match stop {
        Stop::Deadline(micros) => Some(Duration::from_micros(micros)),
        _ => None,
    };
    let result: Result<(), Error> = watchdog(move || {
        runner.for_each(pipeline, deadline, move |t| {
            sink.lock().unwrap().push(t.value)
        })
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
            // A `take` drops what the source took and it did not need.
            if !case.ops.iter().any(|op| matches!(op, Op::Take(_))) {
                prop_assert_eq!(report.dropped(), 0);
            }
        }
        Err(Error::Cancelled { report: carried }) => {
            prop_assert!(matches!(case.stop, Stop::Cancel | Stop::CancelInside));
            prop_assert_eq!(carried.state, State::Cancelled);
            assert_accounted(&carried);
            prop_assert_eq!(carried.delivered(), got.len() as u64);
        }
        Err(Error::DeadlineElapsed {
            report: carried, ..
        }) => {
            prop_assert!(matches!(case.stop, Stop::Deadline(_)));
            assert_accounted(&carried);
            prop_assert_eq!(carried.delivered(), got.len() as u64);
        }
        Err(Error::StagePanicked { stage, .. }) => {
            prop_assert!(matches!(case.stop, Stop::Panic));
            prop_assert_eq!(stage, "stop");
            prop_assert_eq!(report.state, State::Failed);
        }
        Err(other) => return Err(TestCaseError::fail(format!("unexpected error {other}"))),
    }
    // Every dead letter reached the output, and every item is counted once.
    let mut dead_letters = 0;
    while let Ok(letter) = outputs.dead.try_recv() {
        prop_assert!(matches!(letter.error, ItemError::Failed(Odd)));
        dead_letters += 1;
    }
    let total =
        |count: fn(&flowgate::StageReport) -> u64| -> u64 { report.stages.iter().map(count).sum() };
    prop_assert_eq!(dead_letters, total(|s| s.dead_lettered));
    if !case.ops.iter().any(|op| matches!(op, Op::Repeat(_))) {
        // Every stage gives at most one output per input: each item that
        // left the source ended in exactly one of these.
        let ended = report.delivered()
            + total(|s| s.filtered)
            + total(|s| s.failed)
            + total(|s| s.skipped)
            + total(|s| s.dead_lettered)
            + total(|s| s.dropped);
        prop_assert_eq!(ended, sent.load(Ordering::SeqCst), "{}", report);
    }
    if case.acked {
        check_acks(
            &case,
            &told.lock().unwrap(),
            &report,
            sent.load(Ordering::SeqCst),
        )?;
    }
    prop_assert_eq!(live.count(), 0, "items left alive");
    Ok(())
}

/// Each item that left the source was told its outcome exactly once, an
/// item the source never took was told nothing, and where every stage makes
/// at most one output per input the outcomes add up to the report's counts.
fn check_acks(
    case: &Case,
    told: &[Vec<Outcome>],
    report: &flowgate::Report,
    sent: u64,
) -> Result<(), TestCaseError> {
    for (item, outcomes) in told.iter().enumerate() {
        let want = usize::from((item as u64) < sent);
        prop_assert_eq!(outcomes.len(), want, "item {} told {:?}", item, outcomes);
    }
    if case.ops.iter().any(|op| matches!(op, Op::Repeat(_))) {
        return Ok(());
    }
    let count = |want: fn(&Outcome) -> bool| -> u64 {
        told.iter().flatten().filter(|o| want(o)).count() as u64
    };
    let total =
        |count: fn(&flowgate::StageReport) -> u64| -> u64 { report.stages.iter().map(count).sum() };
    prop_assert_eq!(
        count(|o| *o == Outcome::Delivered),
        report.delivered(),
        "{}",
        report
    );
    prop_assert_eq!(count(|o| *o == Outcome::Filtered), total(|s| s.filtered));
    prop_assert_eq!(count(|o| *o == Outcome::Skipped), total(|s| s.skipped));
    prop_assert_eq!(
        count(|o| matches!(o, Outcome::DeadLettered { .. })),
        total(|s| s.dead_lettered)
    );
    prop_assert_eq!(
        count(|o| matches!(o, Outcome::Failed(_))),
        total(|s| s.failed)
    );
    prop_assert_eq!(
        count(|o| *o == Outcome::Dropped),
        total(|s| s.dropped),
        "{}",
        report
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled(1_000, 5_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_item_is_accounted_for_when_a_random_pipeline_is_stopped(case in case()) {
        run(case)?;
    }
}

/// How a service run is stopped at its `stop` stage's k-th item.
#[derive(Debug, Clone, Copy)]
enum ServiceStop {
    Cancel,
    Panic,
    Never,
}

#[derive(Debug, Clone)]
struct ServiceCase {
    producers: Vec<usize>,
    items: u64,
    at: u64,
    stop: ServiceStop,
    keep_multiples: u64,
    capacity: usize,
}

fn service_case() -> impl Strategy<Value = ServiceCase> {
    (
        prop::collection::vec(1..200usize, 1..4),
        0..600u64,
        1..700u64,
        prop_oneof![
            Just(ServiceStop::Cancel),
            Just(ServiceStop::Panic),
            Just(ServiceStop::Never)
        ],
        2..6u64,
        1..100usize,
    )
        .prop_map(
            |(producers, items, at, stop, keep_multiples, capacity)| ServiceCase {
                producers,
                items,
                at,
                stop,
                keep_multiples,
                capacity,
            },
        )
}

/// What became of one producer's sends.
#[derive(Debug, Default, PartialEq)]
struct Outcomes {
    sent: u64,
    answered: u64,
    returned: u64,
    lost: u64,
}

/// Pipelined producers through a service that is cancelled or panics at a
/// random item: every send is answered, given back, or counted as lost by
/// a stage of the report, once.
fn run_service(case: ServiceCase) -> Result<(), TestCaseError> {
    use futures_lite::StreamExt;

    let live = Live::new();
    let (p, job) = flowgate::service(|s| {
        let m = case.keep_multiples;
        let (stop, at, mut seen) = (case.stop, case.at, 0);
        s.map(|t: Tracked| t.with(t.value + 1))
            .capacity(case.capacity)
            .filter(move |t| t.value % m != 0)
            .then(|t| async move {
                if t.value % 5 == 0 {
                    futures_lite::future::yield_now().await;
                }
                t
            })
            .inspect(move |_| {
                seen += 1;
                if seen == at {
                    match stop {
                        ServiceStop::Panic => panic!("stop here"),
                        // Cancelled from outside below, through the control.
                        ServiceStop::Cancel | ServiceStop::Never => {}
                    }
                }
            })
            .name("stop")
    });
    let control = job.control();
    let canceller = control.clone();
    let producers = case.producers.clone();
    let (items, at, stop) = (case.items, case.at, case.stop);
    let per_producer = {
        let live = live.clone();
        watchdog(move || {
            let ex = smol::LocalExecutor::new();
            let running = ex.spawn(async move { job.await });
            let tasks: Vec<_> = producers
                .iter()
                .map(|&window| {
                    let (mut tx, replies) = p.pipelined(window).unwrap();
                    let (live, canceller) = (live.clone(), canceller.clone());
                    ex.spawn(async move {
                        let mut outcome = Outcomes::default();
                        let send = async {
                            let mut returned = 0;
                            for v in 0..items {
                                if matches!(stop, ServiceStop::Cancel) && v == at {
                                    canceller.cancel();
                                }
                                if tx.send(live.item(v)).await.is_err() {
                                    returned += 1; // the item came back
                                }
                            }
                            tx.close().await;
                            returned
                        };
                        let read = replies.for_each(|(_, reply)| match reply {
                            Ok(_) => outcome.answered += 1,
                            Err(flowgate::SendError::Closed(_)) => outcome.returned += 1,
                            Err(_) => outcome.lost += 1,
                        });
                        let (returned, ()) = futures_lite::future::zip(send, read).await;
                        outcome.returned += returned;
                        outcome.sent = items;
                        outcome
                    })
                })
                .collect();
            drop(p);
            futures_lite::future::block_on(ex.run(async {
                let mut all = Vec::new();
                for task in tasks {
                    all.push(task.await);
                }
                (all, running.await)
            }))
        })
    };
    let (outcomes, result) = per_producer;
    let report = control.report();
    assert_accounted(&report);
    let lost: u64 = outcomes.iter().map(|o| o.lost).sum();
    for o in &outcomes {
        prop_assert_eq!(o.answered + o.returned + o.lost, o.sent, "{:?}", o);
    }
    match (case.stop, &result) {
        (ServiceStop::Never, Ok(())) => prop_assert_eq!(lost, 0),
        (ServiceStop::Cancel, Ok(()) | Err(Error::Cancelled { .. })) => {}
        (ServiceStop::Panic, Ok(()) | Err(Error::StagePanicked { .. })) => {}
        (stop, result) => {
            return Err(TestCaseError::fail(format!("{stop:?} gave {result:?}")));
        }
    }
    prop_assert_eq!(lost, report.dropped(), "{}", report);
    prop_assert_eq!(live.count(), 0, "items left alive");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled(256, 2_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_send_into_a_stopped_service_is_answered_returned_or_counted(
        case in service_case()
    ) {
        run_service(case)?;
    }
}
