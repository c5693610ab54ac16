//! A pipeline opened as a service answers each input with its final
//! outputs, whatever the stages do to it.

use crate::support::watchdog;
use flowgate::{SendError, Service};
use futures_lite::StreamExt;
use futures_lite::future::{self, block_on};

/// The chain under test, both as service stages and as a plain function.
fn chain(s: Service<u32>) -> Service<u32> {
    s.map(|x| x * 3)
        .capacity(4)
        .filter(|x| x % 2 == 0)
        .flat_map(|x| 0..x % 4)
        .chunk_limit(3)
        .then(|x| async move {
            if x % 2 == 1 {
                future::yield_now().await;
            }
            x + 100
        })
}

fn expected(x: u32) -> Vec<u32> {
    let x = x * 3;
    if x % 2 != 0 {
        return vec![];
    }
    (0..x % 4).map(|y| y + 100).collect()
}

#[test]
fn each_send_resolves_to_its_outputs_through_filters_and_flat_map() {
    watchdog(|| {
        let (mut p, job) = flowgate::service(chain);
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        block_on(ex.run(async {
            for x in 0..500 {
                assert_eq!(p.send(x).await.unwrap(), expected(x), "input {x}");
            }
            drop(p);
            running.await.unwrap();
        }));
    });
}

#[test]
fn pipelined_producers_each_get_their_own_end_to_end_replies() {
    const PRODUCERS: u32 = 3;
    const ITEMS: u32 = 3_000;
    watchdog(|| {
        let (p, job) = flowgate::service(chain);
        let ex = smol::Executor::new();
        let running = job.spawn(&ex);
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            scope.spawn(|| block_on(ex.run(stopped.recv())));
            let tasks: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let (mut tx, replies) = p.pipelined(256).unwrap();
                    ex.spawn(async move {
                        let send = async move {
                            for n in 0..ITEMS {
                                tx.send(n * PRODUCERS + id).await.unwrap();
                            }
                            tx.close().await;
                        };
                        let (_, got) = future::zip(send, replies.collect::<Vec<_>>()).await;
                        assert_eq!(got.len(), ITEMS as usize);
                        for (i, (ticket, reply)) in got.into_iter().enumerate() {
                            let input = i as u32 * PRODUCERS + id;
                            assert_eq!(ticket, i as u64);
                            assert_eq!(
                                reply.unwrap(),
                                expected(input),
                                "producer {id}, input {input}"
                            );
                        }
                    })
                })
                .collect();
            drop(p);
            block_on(ex.run(async {
                for task in tasks {
                    task.await;
                }
                running.await.unwrap();
            }));
            drop(stop);
        });
    });
}

#[test]
fn a_panicking_stage_fails_the_sends_it_held_and_the_job() {
    watchdog(|| {
        let (mut p, job) = flowgate::service(|s| {
            s.map(|x: u32| {
                assert_ne!(x, 7, "seven");
                x
            })
            .name("picky")
        });
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        block_on(ex.run(async {
            for x in 0..7 {
                assert_eq!(p.send(x).await.unwrap(), [x]);
            }
            // The item that panicked is lost with the stage.
            assert!(matches!(p.send(7).await, Err(SendError::Cancelled)));
            // Later sends find the service closed and get their items back.
            assert!(matches!(p.send(8).await, Err(SendError::Closed(8))));
            let err = running.await.unwrap_err();
            assert!(
                matches!(&err, flowgate::Error::StagePanicked { stage, .. } if stage == "picky"),
                "{err:?}"
            );
        }));
    });
}

#[test]
fn closing_the_producer_ends_the_service() {
    watchdog(|| {
        let (mut p, job) = flowgate::service(|s| s.map(|x: u8| x));
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        block_on(ex.run(async {
            assert_eq!(p.send(1).await.unwrap(), [1]);
            p.close();
            running.await.unwrap();
            assert!(matches!(p.send(2).await, Err(SendError::Closed(2))));
        }));
    });
}

#[test]
fn pipelined_sends_through_a_failing_service_are_all_accounted_for() {
    // A stage panics in the middle of a stream of pipelined sends. Every
    // ticket still gets exactly one answer: a reply, the item back, or a
    // typed error; and the job reports the panic.
    watchdog(|| {
        let (p, job) = flowgate::service(|s| {
            s.map(|x: u32| {
                assert_ne!(x, 2_500, "bad input");
                x
            })
            .filter(|x| x % 3 != 0)
        });
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(128).unwrap();
        drop(p);
        let (tickets, answers) = block_on(ex.run(async move {
            let send = async move {
                let mut tickets = Vec::new();
                for x in 0..5_000u32 {
                    if let Ok(ticket) = tx.send(x).await {
                        tickets.push((ticket, x));
                    }
                }
                tx.close().await;
                tickets
            };
            future::zip(send, replies.collect::<Vec<_>>()).await
        }));
        assert_eq!(tickets.len(), answers.len(), "one answer per ticket");
        let mut failed = 0;
        for ((ticket, x), (answered, result)) in tickets.iter().zip(answers) {
            assert_eq!(*ticket, answered);
            match result {
                Ok(outputs) => {
                    let want: Vec<u32> = Some(*x).filter(|x| x % 3 != 0).into_iter().collect();
                    assert_eq!(outputs, want, "input {x}");
                }
                Err(SendError::Closed(back)) => assert_eq!(back, *x),
                Err(SendError::Cancelled) => failed += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(failed >= 1, "the item that panicked is reported");
        assert!(matches!(
            block_on(ex.run(running)),
            Err(flowgate::Error::StagePanicked { .. })
        ));
    });
}

#[test]
fn a_front_chunk_limit_above_a_thousand_does_not_stall_many_producers() {
    watchdog(|| {
        let (p, job) =
            flowgate::service(|s| s.capacity(2048).chunk_limit(2048).map(|x: u64| x + 1));
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        let tasks: Vec<_> = (0..3_000u64)
            .map(|id| {
                let mut p = p.clone();
                ex.spawn(async move {
                    let mut got = 0;
                    for k in 0..3 {
                        let x = id * 3 + k;
                        assert_eq!(p.send(x).await.unwrap(), [x + 1]);
                        got += 1;
                    }
                    got
                })
            })
            .collect();
        drop(p);
        let replies: u64 = block_on(ex.run(async {
            let mut replies = 0;
            for task in tasks {
                replies += task.await;
            }
            running.await.unwrap();
            replies
        }));
        assert_eq!(replies, 9_000);
    });
}

#[test]
fn a_shutdown_ends_a_service_whose_producers_are_still_alive() {
    watchdog(|| {
        let (mut p, job) = flowgate::service(|s| s.map(|x: u64| x + 1));
        let ex = smol::LocalExecutor::new();
        let running = job.spawn_local(&ex);
        block_on(ex.run(async {
            assert_eq!(p.send(1).await.unwrap(), [2]);
            // The front is now idle, waiting for the next request.
            assert!(running.shutdown());
            running.await.unwrap();
            assert!(matches!(p.send(2).await, Err(SendError::Closed(2))));
        }));
    });
}
