//! Replies under disruption: M producers × K items into a task consumer or
//! a random service drawn from the kinds of pipeline stage (parallel in
//! each order; fallible with skip, dead-letter, retry and a timeout; fan-out
//! and merge), each producer pipelined with a random window or sending one
//! item at a time, while something goes wrong on the way: a cancel, a
//! shutdown, a close from another clone, a panicking consumer, a sender
//! dropped without `close`, `send` and `flush` futures given up half way,
//! `Replies` dropped half way. (A batch's reply depends on where batches
//! happen to be cut, so `chunks` is tested on its own, in `service.rs`.)
//!
//! Whatever happens, every producer gets every ticket exactly once, in send
//! order, each with the reply to its own item, its own item back, or an
//! error; a send after the replies are dropped gives its item back; a
//! service's report balances; and no item is left alive at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::tracked::{Live, Tracked};
use crate::support::{assert_accounted, assert_graph_accounted, scaled, watchdog};
use flowgate::{Backoff, Consumer, OnError, Producer, SendError, Service};
use futures_lite::StreamExt;
use futures_lite::future::{block_on, poll_once, yield_now, zip};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    Keep(u64),
    Repeat(u64),
    Delay,
    /// `v + 1` on 3 workers, in input order.
    ParOrdered,
    /// `v + 2` on 4 workers, in completion order.
    ParUnordered,
    /// `v + 3` on 3 workers, in order per key `v % 5`.
    ParByKey,
    /// Multiples fail, and the item is skipped.
    TrySkip(u64),
    /// Multiples fail, and the item goes to the dead-letter output.
    TryDeadLetter(u64),
    /// Multiples fail every attempt, are retried twice, then skipped.
    TryRetry(u64),
    /// Multiples never finish, time out, and are skipped.
    TimeOut(u64),
    /// Two branches, `2v` and `2v + 1`, merged.
    Broadcast,
    /// Two branches by parity, merged.
    Partition,
    /// Two competing branches, merged.
    Balance,
}

/// What a service answers an input that does not come through whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expected {
    Skipped,
    DeadLettered,
}

/// A reply as compared: a service's outputs may come in another order when
/// a stage reorders them.
trait Normal: PartialEq + std::fmt::Debug {
    fn normal(self) -> Self;
}

impl Normal for u64 {
    fn normal(self) -> Self {
        self
    }
}

impl Normal for Vec<u64> {
    fn normal(mut self) -> Self {
        self.sort_unstable();
        self
    }
}

#[derive(Debug)]
struct Multiple;

impl std::fmt::Display for Multiple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a multiple")
    }
}

impl std::error::Error for Multiple {}

#[derive(Debug, Clone)]
enum Target {
    /// A task consumer that replies `value * 10`, after a yield if `yields`.
    Consumer { capacity: usize, yields: bool },
    /// A service of `ops`, whose reply is the outputs of the input.
    Service {
        ops: Vec<Op>,
        capacity: usize,
        chunk_limit: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    None,
    /// The service is cancelled, or the consumer's task dropped.
    Cancel,
    /// The service is shut down; a consumer is closed.
    Shutdown,
    /// Another clone of the producer calls `close`.
    Close,
    /// The consumer, or the service's first stage, panics on one item.
    Panic,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Close,
    /// The sender is dropped without `close`.
    Drop,
    /// The replies are dropped after this many have been read.
    DropReplies(u64),
}

#[derive(Debug, Clone)]
struct Plan {
    /// `Some(window)` to pipeline, `None` to send one item at a time.
    window: Option<usize>,
    items: u64,
    /// Every `give_up`-th send is polled once, and given up if it waits.
    give_up: u64,
    /// Whether a `flush` is polled once and given up every 7 sends.
    give_up_flush: bool,
    end: End,
}

#[derive(Debug, Clone)]
struct Case {
    target: Target,
    plans: Vec<Plan>,
    threads: usize,
    stop: Stop,
    /// The send, counted over every producer, at which the stop comes.
    stop_at: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..9u64).prop_map(Op::Add),
        (2..5u64).prop_map(Op::Keep),
        (0..4u64).prop_map(Op::Repeat),
        Just(Op::Delay),
        Just(Op::ParOrdered),
        Just(Op::ParUnordered),
        Just(Op::ParByKey),
        (3..9u64).prop_map(Op::TrySkip),
        (3..9u64).prop_map(Op::TryDeadLetter),
        (3..9u64).prop_map(Op::TryRetry),
        (40..90u64).prop_map(Op::TimeOut),
        Just(Op::Broadcast),
        Just(Op::Partition),
        Just(Op::Balance),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (1..6usize, any::<bool>())
            .prop_map(|(capacity, yields)| Target::Consumer { capacity, yields }),
        (
            prop::collection::vec(op(), 1..5),
            prop_oneof![1..8usize, 8..600usize],
            1..64usize
        )
            .prop_map(|(ops, capacity, chunk_limit)| Target::Service {
                ops,
                capacity,
                chunk_limit
            }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::option::weighted(0.75, 1..80usize),
        0..150u64,
        prop_oneof![Just(0u64), 2..9u64],
        any::<bool>(),
        prop_oneof![
            Just(End::Close),
            Just(End::Drop),
            (0..100u64).prop_map(End::DropReplies)
        ],
    )
        .prop_map(|(window, items, give_up, give_up_flush, end)| Plan {
            window,
            items,
            give_up,
            give_up_flush,
            end,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        target(),
        prop::collection::vec(plan(), 1..4),
        1..=2usize,
        prop_oneof![
            Just(Stop::None),
            Just(Stop::Cancel),
            Just(Stop::Shutdown),
            Just(Stop::Close),
            Just(Stop::Panic)
        ],
        0..300u64,
    )
        .prop_map(|(target, plans, threads, stop, stop_at)| Case {
            target,
            plans,
            threads,
            stop,
            stop_at,
        })
}

/// The reply to one input through `ops`: its outputs, sorted, or why it
/// has none. An input with several outputs ends as the most serious of
/// them: dead-lettered, then skipped, then delivered.
fn outputs(ops: &[Op], input: u64) -> Result<Vec<u64>, Expected> {
    let mut values = vec![input];
    let mut worst: Option<Expected> = None;
    let mut fail = |values: Vec<u64>, m: u64, how: Expected| -> Vec<u64> {
        if values.iter().any(|v| v % m == 0) {
            worst = worst.max(Some(how));
        }
        values.into_iter().filter(|v| v % m != 0).collect()
    };
    for op in ops {
        values = match *op {
            Op::Add(c) => values.into_iter().map(|v| v + c).collect(),
            Op::Keep(m) => values.into_iter().filter(|v| v % m != 0).collect(),
            Op::Repeat(n) => values
                .into_iter()
                .flat_map(|v| (0..n).map(move |i| v * 4 + i))
                .collect(),
            Op::Delay | Op::Partition | Op::Balance => values,
            Op::ParOrdered => values.into_iter().map(|v| v + 1).collect(),
            Op::ParUnordered => values.into_iter().map(|v| v + 2).collect(),
            Op::ParByKey => values.into_iter().map(|v| v + 3).collect(),
            Op::TrySkip(m) | Op::TryRetry(m) | Op::TimeOut(m) => fail(values, m, Expected::Skipped),
            Op::TryDeadLetter(m) => fail(values, m, Expected::DeadLettered),
            Op::Broadcast => values
                .into_iter()
                .flat_map(|v| [2 * v, 2 * v + 1])
                .collect(),
        };
    }
    match worst {
        Some(how) => Err(how),
        None => Ok(values.normal()),
    }
}

fn chain(
    mut s: Service<u64>,
    ops: &[Op],
    capacity: usize,
    chunk_limit: usize,
    dead: &async_channel::Sender<flowgate::DeadLetter<u64, Multiple>>,
) -> Service<u64> {
    let multiple = |m: u64| move |v: u64| if v % m == 0 { Err(Multiple) } else { Ok(v) };
    for op in ops.iter().cloned() {
        s = match op {
            Op::Add(c) => s.map(move |v| v + c),
            Op::Keep(m) => s.filter(move |v| v % m != 0),
            Op::Repeat(n) => s.flat_map(move |v| (0..n).map(move |i| v * 4 + i)),
            Op::Delay => s.then(|v| async move {
                for _ in 0..v % 3 {
                    yield_now().await;
                }
                v
            }),
            Op::ParOrdered => s.par_map(3, |v| v + 1),
            Op::ParUnordered => s.par_then_unordered(4, |v| async move {
                if v % 3 == 0 {
                    yield_now().await;
                }
                v + 2
            }),
            Op::ParByKey => s.par_map_by_key(3, |v| v % 5, |v| v + 3),
            Op::TrySkip(m) => s.try_map(multiple(m)).on_error(OnError::skip()).map(|v| v),
            Op::TryDeadLetter(m) => s
                .try_map(multiple(m))
                .on_error(OnError::dead_letter(dead.clone()))
                .map(|v| v),
            Op::TryRetry(m) => s
                .try_map(multiple(m))
                .on_error(OnError::retry(2, Backoff::fixed(Duration::from_micros(10))).or_skip())
                .map(|v| v),
            Op::TimeOut(m) => s
                .try_then(move |v| async move {
                    if v % m == 0 {
                        std::future::pending::<()>().await;
                    }
                    Ok::<u64, Multiple>(v)
                })
                .timeout(Duration::from_millis(1))
                .on_error(OnError::skip())
                .map(|v| v),
            Op::Broadcast => s.broadcast(2, |i, b| b.map(move |v| 2 * v + i as u64)),
            Op::Partition => s.partition(2, |v| (*v % 2) as usize, |_, b| b.map(|v| v)),
            Op::Balance => s.balance(2, |_, b| b.map(|v| v)),
        }
        .capacity(capacity)
        .chunk_limit(chunk_limit);
    }
    s
}

/// Producer `id`'s n-th input: unique over the whole case.
fn input(case: &Case, id: usize, n: u64) -> u64 {
    n * case.plans.len() as u64 + id as u64
}

/// The value whose handling panics, under [`Stop::Panic`].
fn panic_value(case: &Case) -> u64 {
    match case.stop {
        Stop::Panic => input(case, 0, case.stop_at % 150),
        _ => u64::MAX,
    }
}

/// What every producer shares: the count of sends, and the bell that
/// starts the stop when the count reaches `stop_at`.
#[derive(Clone)]
struct Shared {
    sends: Arc<AtomicU64>,
    stop_at: u64,
    ring: async_channel::Sender<()>,
    live: Live,
}

impl Shared {
    /// Counts a send, ringing for the stop at the planned one.
    fn count(&self) {
        if self.sends.fetch_add(1, Ordering::SeqCst) == self.stop_at {
            let _ = self.ring.try_send(());
        }
    }
}

/// Checks one result against the item it was for: a reply must be the
/// item's own, a skip or dead letter must be what the item would get, and
/// an item given back must be the item. A cancel, panic or failure may end
/// any item.
fn check<R: Normal + Clone>(
    what: &str,
    result: &Result<R, SendError<Tracked>>,
    value: u64,
    expect: &impl Fn(u64) -> Result<R, Expected>,
) {
    let want = expect(value);
    match result {
        Ok(reply) => assert_eq!(
            Ok(reply.clone().normal()),
            want,
            "{what}: not its own reply"
        ),
        Err(SendError::Closed(back)) => assert_eq!(back.value, value, "{what}: another item back"),
        Err(SendError::Skipped) => assert_eq!(want, Err(Expected::Skipped), "{what}"),
        Err(SendError::DeadLettered) => assert_eq!(want, Err(Expected::DeadLettered), "{what}"),
        Err(_) => {}
    }
}

/// Runs producer `id` to its plan, checking every reply it gets.
async fn produce<R, E>(
    case: Case,
    id: usize,
    mut p: Producer<Tracked, R>,
    shared: Shared,
    expect: E,
) where
    R: Normal + Clone,
    E: Fn(u64) -> Result<R, Expected>,
{
    let plan = case.plans[id].clone();
    let Some(window) = plan.window else {
        for n in 0..plan.items {
            let x = input(&case, id, n);
            shared.count();
            let item = shared.live.item(x);
            if plan.give_up > 0 && n % plan.give_up == 0 {
                if let Some(result) = poll_once(p.send(item)).await {
                    check(&format!("producer {id}, input {x}"), &result, x, &expect);
                }
                continue;
            }
            let result = p.send(item).await;
            check(&format!("producer {id}, input {x}"), &result, x, &expect);
        }
        return;
    };
    let (mut tx, mut replies) = p.pipelined(window).unwrap();
    drop(p);
    let dropped = AtomicBool::new(false);
    // The value sent under each ticket, in ticket order.
    let mut sent: Vec<u64> = Vec::new();
    let send = async {
        for n in 0..plan.items {
            let x = input(&case, id, n);
            shared.count();
            let item = shared.live.item(x);
            let after_drop = dropped.load(Ordering::SeqCst);
            let result = if plan.give_up > 0 && n % plan.give_up == 0 {
                poll_once(tx.send(item)).await
            } else {
                Some(tx.send(item).await)
            };
            match result {
                None => {} // given up: no ticket
                Some(Ok(ticket)) => {
                    assert!(
                        !after_drop,
                        "producer {id}: a send taken after the replies were dropped"
                    );
                    assert_eq!(
                        ticket,
                        sent.len() as u64,
                        "producer {id}: tickets in send order"
                    );
                    sent.push(x);
                }
                Some(Err(SendError::Closed(back))) => assert_eq!(back.value, x),
                Some(Err(other)) => assert!(!after_drop, "producer {id}: {other:?}"),
            }
            if plan.give_up_flush && n % 7 == 3 {
                let _ = poll_once(tx.flush()).await;
            }
            if n % 5 == 0 {
                yield_now().await;
            }
        }
        match plan.end {
            End::Drop => drop(tx),
            End::Close | End::DropReplies(_) => tx.close().await,
        }
        sent
    };
    let read = async {
        let mut read: Vec<(u64, Result<R, SendError<Tracked>>)> = Vec::new();
        loop {
            if let End::DropReplies(at) = plan.end {
                if read.len() as u64 >= at {
                    dropped.store(true, Ordering::SeqCst);
                    drop(replies);
                    return (read, false);
                }
            }
            match replies.next().await {
                Some(entry) => read.push(entry),
                None => return (read, true),
            }
        }
    };
    let (sent, (read, complete)) = zip(send, read).await;
    for (i, (ticket, result)) in read.iter().enumerate() {
        assert_eq!(
            *ticket, i as u64,
            "producer {id}: every ticket once, in order"
        );
        check(
            &format!("producer {id}, ticket {ticket}"),
            result,
            sent[i],
            &expect,
        );
    }
    if complete {
        assert_eq!(
            read.len(),
            sent.len(),
            "producer {id}: a reply for every ticket"
        );
    }
}

fn run(case: Case) {
    let live = Live::new();
    let fans_out = matches!(&case.target, Target::Service { ops, .. }
        if ops.iter().any(|op| matches!(op, Op::Broadcast | Op::Partition | Op::Balance)));
    let report = watchdog({
        let live = live.clone();
        move || run_case(case, live)
    });
    match report {
        Some(report) if fans_out => assert_graph_accounted(&report),
        Some(report) => assert_accounted(&report),
        None => {}
    }
    assert_eq!(live.count(), 0, "items left alive");
}

/// Runs the case; gives the service's final report, if the target is one.
fn run_case(case: Case, live: Live) -> Option<flowgate::Report> {
    let ex = smol::Executor::new();
    let (ring, rung) = async_channel::bounded::<()>(1);
    let shared = Shared {
        sends: Arc::default(),
        stop_at: case.stop_at,
        ring,
        live,
    };
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let panic_at = panic_value(&case);
    std::thread::scope(|scope| {
        for _ in 1..case.threads {
            scope.spawn(|| block_on(ex.run(stopped.recv())));
        }
        let report = match case.target.clone() {
            Target::Consumer { capacity, yields } => {
                let (p, handle) = Consumer::new_async((), move |_: &mut (), t: Tracked| {
                    let v = t.value;
                    async move {
                        if yields {
                            yield_now().await;
                        }
                        assert_ne!(v, panic_at, "a planned panic");
                        v * 10
                    }
                })
                .capacity(capacity)
                .spawn(&ex);
                let closer = p.clone();
                let stopper = ex.spawn({
                    let stop = case.stop;
                    async move {
                        if rung.recv().await.is_ok() {
                            match stop {
                                Stop::Cancel => drop(handle),
                                Stop::Shutdown | Stop::Close => {
                                    closer.close();
                                    let _ = handle.await;
                                }
                                Stop::None | Stop::Panic => {
                                    drop(closer);
                                    let _ = handle.await;
                                }
                            }
                        } else {
                            drop(closer);
                            let _ = handle.await;
                        }
                    }
                });
                spawn_producers(&ex, &case, p, shared, |v| Ok(v * 10), stopper);
                None
            }
            Target::Service {
                ops,
                capacity,
                chunk_limit,
            } => {
                // Room for every dead letter, so that the output never
                // holds the run up.
                let (dead, letters) = async_channel::bounded(1 << 12);
                let (p, job) = flowgate::service(|s| {
                    let s = s.map(move |t: Tracked| {
                        assert_ne!(t.value, panic_at, "a planned panic");
                        t.value
                    });
                    chain(s, &ops, capacity, chunk_limit, &dead)
                });
                let control = job.control();
                let running = job.spawn(&ex);
                let closer = p.clone();
                let stopper = ex.spawn({
                    let stop = case.stop;
                    let control = control.clone();
                    async move {
                        if rung.recv().await.is_ok() {
                            match stop {
                                Stop::Cancel => {
                                    control.cancel();
                                }
                                Stop::Shutdown => {
                                    control.shutdown();
                                }
                                Stop::Close => {
                                    closer.close();
                                }
                                Stop::None | Stop::Panic => {}
                            }
                        }
                        drop(closer);
                        let _ = running.await;
                    }
                });
                let ops_for_expect = ops.clone();
                spawn_producers(
                    &ex,
                    &case,
                    p,
                    shared,
                    move |v| outputs(&ops_for_expect, v),
                    stopper,
                );
                drop(letters);
                Some(control.report())
            }
        };
        drop(stop);
        report
    })
}

/// Runs every producer of `case` on `ex` to the end, then the stopper,
/// which ends the consumer or the service.
fn spawn_producers<R, E>(
    ex: &smol::Executor<'_>,
    case: &Case,
    p: Producer<Tracked, R>,
    shared: Shared,
    expect: E,
    stopper: smol::Task<()>,
) where
    R: Normal + Clone + Send + 'static,
    E: Fn(u64) -> Result<R, Expected> + Clone + Send + 'static,
{
    let tasks: Vec<_> = (0..case.plans.len())
        .map(|id| {
            ex.spawn(produce(
                case.clone(),
                id,
                p.clone(),
                shared.clone(),
                expect.clone(),
            ))
        })
        .collect();
    // Once every producer is done, no stop can come: the stopper then ends
    // the target itself.
    drop((p, shared));
    block_on(ex.run(async move {
        for task in tasks {
            task.await;
        }
        stopper.await;
    }));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled(1_000, 10_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_ticket_is_answered_once_in_order_whatever_goes_wrong(case in case()) {
        run(case);
    }
}
