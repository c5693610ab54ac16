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

/// Runs `send` against a service of `build` on a local executor, then
/// closes the service and gives `send`'s result with the job's.
fn with_service<In, Out, S, T>(
    build: impl FnOnce(flowgate::Pipeline<In>) -> flowgate::Pipeline<Out, S>,
    send: impl AsyncFnOnce(flowgate::Producer<In, Vec<Out>>) -> T,
) -> (T, Result<(), flowgate::Error>)
where
    In: Send + 'static,
    Out: Send + 'static,
{
    let (p, job) = flowgate::service(build);
    let ex = smol::LocalExecutor::new();
    let running = job.spawn_local(&ex);
    block_on(ex.run(async {
        let got = send(p).await;
        (got, running.await)
    }))
}

#[test]
fn parallel_stages_work_inside_a_service_each_input_with_its_own_reply() {
    watchdog(|| {
        let ((), result) = with_service(
            |s| {
                s.par_map(3, |x: u64| x + 1)
                    .par_map_unordered(4, |x| x * 10)
                    .par_then(2, |x| async move { x + 5 })
                    .par_then_unordered(3, |x| async move {
                        future::yield_now().await;
                        x
                    })
                    .par_map_by_key(2, |x| x % 3, |x| x)
                    .par_then_by_key(2, |x| x % 2, |x| async move { vec![x, x] })
            },
            async |p| {
                let (mut tx, replies) = p.pipelined(64).unwrap();
                let send = async move {
                    for x in 0..2_000u64 {
                        tx.send(x).await.unwrap();
                    }
                    tx.close().await;
                };
                let read = replies.for_each(|(ticket, reply)| {
                    let y = (ticket + 1) * 10 + 5;
                    assert_eq!(reply.unwrap(), [vec![y, y]], "ticket {ticket}");
                });
                future::zip(send, read).await;
            },
        );
        result.unwrap();
    });
}

#[test]
fn a_parallel_stage_answers_many_producers_at_once() {
    // Each call waits until all eight are in the stage together: a service
    // that handled one request at a time would never answer.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    watchdog(|| {
        let inside = Arc::new(AtomicUsize::new(0));
        let ((), result) = with_service(
            {
                let inside = Arc::clone(&inside);
                move |s| {
                    s.par_then_unordered(8, move |x: u64| {
                        let inside = Arc::clone(&inside);
                        async move {
                            inside.fetch_add(1, Ordering::SeqCst);
                            while inside.load(Ordering::SeqCst) < 8 {
                                smol::Timer::after(std::time::Duration::from_millis(1)).await;
                            }
                            x * 2
                        }
                    })
                }
            },
            async |p| {
                let calls = (0..8u64).map(|x| {
                    let mut p = p.clone();
                    async move { (x, p.send(x).await.unwrap()) }
                });
                let replies = join_all(calls.collect()).await;
                for (x, reply) in replies {
                    assert_eq!(reply, [x * 2]);
                }
            },
        );
        result.unwrap();
        assert_eq!(inside.load(std::sync::atomic::Ordering::SeqCst), 8);
    });
}

#[test]
fn fallible_stages_in_a_service_answer_each_input_with_its_fate() {
    use flowgate::OnError;
    #[derive(Debug)]
    struct Odd;
    impl std::fmt::Display for Odd {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("odd")
        }
    }
    impl std::error::Error for Odd {}
    fn even(x: u32) -> Result<u32, Odd> {
        if x % 2 == 0 { Ok(x) } else { Err(Odd) }
    }
    watchdog(|| {
        // Skipped.
        let ((), result) = with_service(
            |s| s.try_map(even).on_error(OnError::skip()),
            async |mut p| {
                assert_eq!(p.send(2).await.unwrap(), [2]);
                assert!(matches!(p.send(3).await, Err(SendError::Skipped)));
                assert_eq!(p.send(4).await.unwrap(), [4]);
            },
        );
        result.unwrap();
        // Dead-lettered: the item goes to the dead-letter output.
        let (letters_tx, letters) = async_channel::bounded(8);
        let ((), result) = with_service(
            |s| s.try_map(even).on_error(OnError::dead_letter(letters_tx)),
            async |mut p| {
                assert!(matches!(p.send(5).await, Err(SendError::DeadLettered)));
                assert_eq!(p.send(6).await.unwrap(), [6]);
            },
        );
        result.unwrap();
        assert_eq!(letters.try_recv().unwrap().item, 5);
        // Failed: the input fails, and so does the run.
        let ((), result) = with_service(
            |s| s.try_map(even).name("evens"),
            async |mut p| {
                assert_eq!(p.send(8).await.unwrap(), [8]);
                match p.send(9).await {
                    Err(SendError::Failed { message }) => {
                        assert!(
                            message.contains("evens") && message.contains("odd"),
                            "{message}"
                        )
                    }
                    other => panic!("{other:?}"),
                }
            },
        );
        assert!(result.is_err());
        // Timed out and skipped.
        let ((), result) = with_service(
            |s| {
                s.try_then(|x: u32| async move {
                    if x == 1 {
                        future::pending::<()>().await;
                    }
                    Ok::<u32, Odd>(x)
                })
                .timeout(std::time::Duration::from_millis(5))
                .on_error(OnError::skip())
            },
            async |mut p| {
                assert_eq!(p.send(0).await.unwrap(), [0]);
                assert!(matches!(p.send(1).await, Err(SendError::Skipped)));
            },
        );
        result.unwrap();
    });
}

#[test]
fn fan_out_and_merge_inside_a_service_gather_every_branch_output() {
    watchdog(|| {
        let ((), result) = with_service(
            |s| {
                s.broadcast(3, |i, branch| branch.map(move |x: u64| x * 10 + i as u64))
                    .partition(2, |x| (*x % 2) as usize, |_, branch| branch.map(|x| x))
                    .balance(2, |_, branch| branch.filter(|x| x % 10 != 1))
            },
            async |mut p| {
                for x in 0..200u64 {
                    let mut reply = p.send(x).await.unwrap();
                    reply.sort();
                    assert_eq!(reply, [x * 10, x * 10 + 2], "input {x}");
                }
            },
        );
        result.unwrap();
    });
}

#[test]
fn a_batch_in_a_service_is_the_reply_of_its_last_input() {
    watchdog(|| {
        let (read, result) = with_service(
            |s| s.chunks(2),
            async |p| {
                let (mut tx, replies) = p.pipelined(64).unwrap();
                for x in 0..4u32 {
                    tx.send(x).await.unwrap();
                }
                tx.close().await;
                replies
                    .map(|(t, r)| (t, r.unwrap()))
                    .collect::<Vec<_>>()
                    .await
            },
        );
        result.unwrap();
        assert_eq!(
            read,
            [
                (0, vec![]),
                (1, vec![vec![0, 1]]),
                (2, vec![]),
                (3, vec![vec![2, 3]])
            ]
        );
    });
}

/// Runs every future of `futures` at once, in one task; gives their
/// outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(&mut outputs) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
