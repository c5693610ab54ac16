//! Replies: M producers × K items through a random multi-stage service, some
//! pipelined and some one send at a time, on one or two threads. Each
//! producer gets exactly its own replies, in its own order: none missing,
//! none duplicated, none misrouted.

use crate::support::{scaled, watchdog};
use flowgate::Service;
use futures_lite::StreamExt;
use futures_lite::future::{self, block_on, yield_now};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    Keep(u64),
    Repeat(u64),
    Delay,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..9u64).prop_map(Op::Add),
        (2..5u64).prop_map(Op::Keep),
        (0..4u64).prop_map(Op::Repeat),
        Just(Op::Delay),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// Per producer: `Some(window)` to pipeline, `None` to send one at a time.
    producers: Vec<Option<usize>>,
    items: u64,
    ops: Vec<Op>,
    capacity: usize,
    chunk_limit: usize,
    threads: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(prop::option::weighted(0.75, 1..300usize), 1..7),
        0..1_500u64,
        prop::collection::vec(op(), 1..6),
        prop_oneof![1..8usize, 8..2_000usize],
        1..64usize,
        1..=2usize,
    )
        .prop_map(
            |(producers, items, ops, capacity, chunk_limit, threads)| Case {
                producers,
                items,
                ops,
                capacity,
                chunk_limit,
                threads,
            },
        )
}

/// The outputs of one input through `ops`.
fn expected(ops: &[Op], input: u64) -> Vec<u64> {
    let mut values = vec![input];
    for op in ops {
        values = match *op {
            Op::Add(c) => values.into_iter().map(|v| v + c).collect(),
            Op::Keep(m) => values.into_iter().filter(|v| v % m != 0).collect(),
            Op::Repeat(n) => values
                .into_iter()
                .flat_map(|v| (0..n).map(move |i| v * 4 + i))
                .collect(),
            Op::Delay => values,
        };
    }
    values
}

fn chain(mut s: Service<u64>, case: &Case) -> Service<u64> {
    for op in case.ops.clone() {
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
        }
        .capacity(case.capacity)
        .chunk_limit(case.chunk_limit);
    }
    s
}

/// Producer `id`'s n-th input: the id is in the value, so a reply that
/// reaches the wrong producer cannot match.
fn input(case: &Case, id: usize, n: u64) -> u64 {
    n * case.producers.len() as u64 + id as u64
}

/// Runs one producer and checks every reply it gets; gives how many it got.
async fn produce(case: Case, id: usize, mut p: flowgate::Producer<u64, Vec<u64>>) -> u64 {
    let mut answered = 0;
    match case.producers[id] {
        None => {
            for n in 0..case.items {
                let x = input(&case, id, n);
                let reply = p.send(x).await.expect("the service is open");
                assert_eq!(reply, expected(&case.ops, x), "producer {id}, input {x}");
                answered += 1;
            }
        }
        Some(window) => {
            let (mut tx, mut replies) = p.pipelined(window).unwrap();
            drop(p);
            let inputs: Vec<u64> = (0..case.items).map(|n| input(&case, id, n)).collect();
            let send = async move {
                for x in inputs {
                    tx.send(x).await.expect("the service is open");
                }
                tx.close().await;
            };
            // Ticket n is the n-th send.
            let check = async {
                while let Some((ticket, reply)) = replies.next().await {
                    let x = input(&case, id, ticket);
                    let reply = reply.expect("every send is answered");
                    assert_eq!(
                        reply,
                        expected(&case.ops, x),
                        "producer {id}, ticket {ticket}"
                    );
                    answered += 1;
                }
            };
            future::zip(send, check).await;
        }
    }
    answered
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let producers = case.producers.len();
    let counted = watchdog(move || {
        let (p, job) = flowgate::service(|s| chain(s, &case));
        let ex = smol::Executor::new();
        let running = job.spawn(&ex);
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            for _ in 1..case.threads {
                scope.spawn(|| block_on(ex.run(stopped.recv())));
            }
            let tasks: Vec<_> = (0..producers)
                .map(|id| ex.spawn(produce(case.clone(), id, p.clone())))
                .collect();
            drop(p);
            let counted = block_on(ex.run(async {
                let mut counted = Vec::new();
                for task in tasks {
                    counted.push(task.await);
                }
                running.await.unwrap();
                counted
            }));
            drop(stop);
            (counted, case.items)
        })
    });
    let (counted, items) = counted;
    prop_assert_eq!(counted, vec![items; producers]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled(128, 1_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn each_producer_gets_exactly_its_own_replies(case in case()) {
        run(case)?;
    }
}
