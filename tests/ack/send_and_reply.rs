//! Send and acknowledge: every send gets its own reply, or its item back,
//! or a typed error; nothing hangs and nothing is lost.

use crate::support;

use std::time::Duration;

use crate::support::watchdog;
use flowgate::{Consumer, SendError, TrySendError};
use futures_lite::StreamExt;
use futures_lite::future::{self, block_on};

#[test]
fn many_producers_each_get_their_own_replies_in_order() {
    const PRODUCERS: u32 = 4;
    const ITEMS: u32 = 5_000;
    watchdog(|| {
        let ex = smol::Executor::new();
        // The reply echoes the item, so a misrouted reply shows up as
        // another producer's id.
        let (producer, consumer) = Consumer::new(0u64, |count: &mut u64, (id, n): (u32, u32)| {
            *count += 1;
            (id, n)
        })
        .capacity(8)
        .spawn(&ex);
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            scope.spawn(|| block_on(ex.run(stopped.recv())));
            let tasks: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let mut p = producer.clone();
                    ex.spawn(async move {
                        for n in 0..ITEMS {
                            assert_eq!(p.send((id, n)).await.unwrap(), (id, n));
                        }
                    })
                })
                .collect();
            drop(producer);
            let total = block_on(ex.run(async {
                for task in tasks {
                    task.await;
                }
                consumer.await
            }));
            drop(stop);
            assert_eq!(total.unwrap(), u64::from(PRODUCERS * ITEMS));
        });
    });
}

#[test]
fn a_send_after_close_returns_the_item() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, c) = Consumer::new((), |_: &mut (), s: String| s.len()).spawn_local(&ex);
        let mut other = p.clone();
        block_on(ex.run(async {
            assert_eq!(p.send("abc".to_owned()).await.unwrap(), 3);
            assert!(p.close());
            let err = other.send("kept".to_owned()).await.unwrap_err();
            assert_eq!(err.into_inner().as_deref(), Some("kept"));
            match p.try_send("also".to_owned()).await {
                Err(TrySendError::Send(SendError::Closed(s))) => assert_eq!(s, "also"),
                other => panic!("expected the item back, got {other:?}"),
            }
            c.await.unwrap();
        }));
    });
}

#[test]
fn dropping_all_producers_ends_the_consumer_with_its_final_value() {
    let seen = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, c) =
            Consumer::new(Vec::new(), |seen: &mut Vec<u8>, x: u8| seen.push(x)).spawn_local(&ex);
        let mut q = p.clone();
        block_on(ex.run(async {
            p.send(1).await.unwrap();
            q.send(2).await.unwrap();
            drop((p, q));
            c.await
        }))
    });
    assert_eq!(seen.unwrap(), [1, 2]);
}

#[test]
fn a_panicking_consumer_fails_that_send_and_returns_later_items() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, c) = Consumer::new((), |_: &mut (), x: u32| {
            assert_ne!(x, 3, "three is bad");
            x * 10
        })
        .name("tens")
        .spawn_local(&ex);
        block_on(ex.run(async {
            assert_eq!(p.send(1).await.unwrap(), 10);
            assert_eq!(p.send(2).await.unwrap(), 20);
            match p.send(3).await {
                Err(SendError::Panicked { stage, message }) => {
                    assert_eq!(stage, "tens");
                    assert!(message.contains("three is bad"), "{message}");
                }
                other => panic!("expected a panic error, got {other:?}"),
            }
            assert!(matches!(p.send(4).await, Err(SendError::Closed(4))));
            let err = c.await.unwrap_err();
            assert!(
                matches!(err, flowgate::Error::StagePanicked { .. }),
                "{err:?}"
            );
        }));
    });
}

#[test]
fn a_panic_accounts_for_every_pipelined_item() {
    // Items in flight when the consumer panics come back through the
    // replies: every ticket is answered exactly once.
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (p, _c) = Consumer::new((), |_: &mut (), x: u32| {
            assert!(x != 500, "boom");
            x
        })
        .spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(64).unwrap();
        let (sent, answers) = block_on(ex.run(async move {
            let send = async move {
                let mut sent = Vec::new();
                for x in 0..2_000u32 {
                    match tx.send(x).await {
                        Ok(ticket) => sent.push((ticket, x)),
                        Err(err) => assert_eq!(err.into_inner(), Some(x)),
                    }
                }
                tx.close().await;
                sent
            };
            future::zip(send, replies.collect::<Vec<_>>()).await
        }));
        assert_eq!(sent.len(), answers.len(), "one answer per ticket");
        let mut panics = 0;
        for ((ticket, x), (answered, result)) in sent.iter().zip(&answers) {
            assert_eq!(ticket, answered);
            match result {
                Ok(reply) => assert_eq!(reply, x),
                Err(SendError::Panicked { .. }) => {
                    panics += 1;
                    assert_eq!(*x, 500);
                }
                Err(SendError::Closed(back)) => assert_eq!(back, x),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(panics, 1);
    });
}

#[test]
fn pipelined_replies_match_their_items() {
    let pairs = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (p, c) = Consumer::new(0u64, |n: &mut u64, x: u64| {
            *n += 1;
            x * 3
        })
        .spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(100).unwrap();
        drop(p);
        let pairs = block_on(ex.run(async move {
            let send = async move {
                for x in 0..20_000u64 {
                    assert_eq!(tx.send(x).await.unwrap(), x);
                }
                tx.close().await;
            };
            future::zip(send, replies.collect::<Vec<_>>()).await.1
        }));
        assert_eq!(block_on(ex.run(c)).unwrap(), 20_000);
        pairs
    });
    assert_eq!(pairs.len(), 20_000);
    for (i, (ticket, reply)) in pairs.into_iter().enumerate() {
        assert_eq!((ticket, reply.unwrap()), (i as u64, i as u64 * 3));
    }
}

#[test]
fn a_zero_window_is_an_error() {
    let ex = smol::LocalExecutor::new();
    let (p, _c) = Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    assert!(matches!(p.pipelined(0), Err(flowgate::Error::ZeroWindow)));
}

#[test]
fn try_send_gives_the_item_back_when_the_queue_is_full() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, _c) = Consumer::new((), |_: &mut (), x: u8| x)
            .capacity(1)
            .spawn_local(&ex);
        let mut q = p.clone();
        block_on(async {
            // The consumer task has not run: the first send fills the queue.
            let mut first = Box::pin(p.send(1));
            assert!(future::poll_once(&mut first).await.is_none());
            match q.try_send(2).await {
                Err(TrySendError::Full(2)) => {}
                other => panic!("expected Full(2), got {other:?}"),
            }
            assert_eq!(ex.run(first).await.unwrap(), 1);
        });
    });
}

#[test]
fn an_inline_consumer_that_awaits_a_timer_still_answers() {
    let (replies, final_count) = watchdog(|| {
        let mut c = Consumer::new_async(0u32, |count: &mut u32, n: u32| {
            *count += 1;
            async move {
                smol::Timer::after(Duration::from_millis(2)).await;
                format!("200 OK {n}")
            }
        })
        .inline();
        let replies = block_on(async {
            let mut out = Vec::new();
            for n in 1..=3 {
                out.push(c.send(n).await.unwrap());
            }
            out
        });
        (replies, c.close())
    });
    assert_eq!(replies, ["200 OK 1", "200 OK 2", "200 OK 3"]);
    assert_eq!(final_count, 3);
}

#[test]
fn an_inline_consumer_that_panics_is_closed_afterwards() {
    let mut c = Consumer::new((), |_: &mut (), x: i32| {
        assert!(x >= 0, "negative");
        x
    })
    .inline();
    block_on(async {
        assert_eq!(c.send(1).await.unwrap(), 1);
        assert!(matches!(c.send(-1).await, Err(SendError::Panicked { .. })));
        assert!(c.is_closed());
        assert!(matches!(c.send(2).await, Err(SendError::Closed(2))));
    });
}

#[test]
fn a_task_consumer_may_await_between_replies() {
    let out = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, _c) = Consumer::new_async((), |_: &mut (), n: u32| async move {
            smol::Timer::after(Duration::from_millis(1)).await;
            n + 100
        })
        .spawn_local(&ex);
        block_on(ex.run(async move {
            let mut out = Vec::new();
            for n in 0..3 {
                out.push(p.send(n).await.unwrap());
            }
            out
        }))
    });
    assert_eq!(out, [100, 101, 102]);
}

#[test]
fn producers_coming_and_going_never_strand_the_consumer() {
    // Every dropped or closed producer rings the consumer's doorbell. A
    // consumer that lost its waker to such a ring would sleep through the
    // next request, and this test would hang until the watchdog.
    watchdog(|| {
        let ex = smol::Executor::new();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            scope.spawn(|| block_on(ex.run(stopped.recv())));
            for round in 0..200u64 {
                let (producer, consumer) = Consumer::new(0u64, |sum: &mut u64, x: u64| {
                    *sum += x;
                    x
                })
                .capacity(2)
                .spawn(&ex);
                let tasks: Vec<_> = (0..4u64)
                    .map(|id| {
                        let mut p = producer.clone();
                        ex.spawn(async move {
                            for n in 0..25u64 {
                                // A short-lived clone rings on drop.
                                drop(p.clone());
                                assert_eq!(p.send(id * 100 + n).await.unwrap(), id * 100 + n);
                            }
                        })
                    })
                    .collect();
                drop(producer);
                let total = block_on(ex.run(async {
                    for task in tasks {
                        task.await;
                    }
                    consumer.await.unwrap()
                }));
                let expected: u64 = (0..4u64)
                    .flat_map(|id| (0..25).map(move |n| id * 100 + n))
                    .sum();
                assert_eq!(total, expected, "round {round}");
            }
            drop(stop);
        });
    });
}

#[test]
fn a_send_dropped_mid_flight_does_not_confuse_the_next_one() {
    // The first send hands its request over, then is dropped before the
    // reply. Its late reply must never be taken for the next send's.
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, _c) = Consumer::new((), |_: &mut (), x: u32| x * 2).spawn_local(&ex);
        block_on(async {
            {
                let mut first = Box::pin(p.send(1));
                assert!(future::poll_once(&mut first).await.is_none());
            } // dropped: the consumer still answers it, to nobody
            support::settle(&ex);
            assert_eq!(ex.run(p.send(21)).await.unwrap(), 42);
            assert_eq!(ex.run(p.send(5)).await.unwrap(), 10);
        });
    });
}

#[test]
fn dropping_a_pipelined_sender_still_answers_every_ticket() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (p, _c) = Consumer::new((), |_: &mut (), x: u32| x + 1).spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(64).unwrap();
        let tickets = block_on(ex.run(async {
            let mut tickets = 0;
            for x in 0..10 {
                tx.send(x).await.unwrap();
                tickets += 1;
            }
            tickets
        }));
        // Not closed: some items may still sit in the unsent chunk.
        drop(tx);
        let answers: Vec<_> = block_on(ex.run(replies.collect::<Vec<_>>()));
        assert_eq!(answers.len(), tickets);
        for (i, (ticket, result)) in answers.into_iter().enumerate() {
            assert_eq!(ticket, i as u64);
            match result {
                Ok(reply) => assert_eq!(reply, i as u32 + 1),
                Err(SendError::Closed(item)) => assert_eq!(item, i as u32),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    });
}

#[test]
fn a_pipelined_sender_whose_consumer_ends_gets_every_item_back() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (p, c) = Consumer::new((), |_: &mut (), x: u32| x).spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(32).unwrap();
        let (sent, answers) = block_on(ex.run(async move {
            let send = async move {
                let mut sent = 0u32;
                for x in 0..1_000u32 {
                    if x == 300 {
                        p.close();
                    }
                    match tx.send(x).await {
                        Ok(_) => sent += 1,
                        Err(err) => assert_eq!(err.into_inner(), Some(x)),
                    }
                }
                tx.close().await;
                sent
            };
            future::zip(send, replies.collect::<Vec<_>>()).await
        }));
        assert!(block_on(ex.run(c)).is_ok());
        assert_eq!(answers.len(), sent as usize, "one answer per ticket");
        for (i, (_, result)) in answers.into_iter().enumerate() {
            match result {
                Ok(reply) => assert_eq!(reply, i as u32),
                Err(SendError::Closed(item)) => assert_eq!(item, i as u32),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    });
}

#[test]
fn a_huge_window_is_capped_not_allocated() {
    // Found by tests/fuzz_config.rs: a window of 2^40 once sized a channel
    // of 2^32 chunk slots up front and aborted on the allocation.
    let sum = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (p, _c) = flowgate::Consumer::new((), |_: &mut (), n: u64| n).spawn_local(&ex);
        let (mut tx, replies) = p.pipelined(usize::MAX).unwrap();
        block_on(ex.run(async move {
            let send = async move {
                for n in 0..1_000u64 {
                    tx.send(n).await.unwrap();
                }
                tx.close().await;
            };
            let read = replies.fold(0, |sum, (_, reply)| sum + reply.unwrap());
            future::zip(send, read).await.1
        }))
    });
    assert_eq!(sum, (0..1_000u64).sum::<u64>());
}

#[test]
fn a_consumer_of_capacity_zero_refuses_every_send_and_reports_the_error() {
    support::watchdog(|| {
        let consumer = || {
            flowgate::Consumer::new(0u32, |n: &mut u32, x: u32| {
                *n += x;
                x
            })
            .name("zero")
            .capacity(0)
        };
        // Spawned: the handle gives the typed error, each send its item back.
        let ex = smol::Executor::new();
        let (mut p, handle) = consumer().spawn(&ex);
        futures_lite::future::block_on(ex.run(async {
            assert!(matches!(
                p.send(1).await,
                Err(flowgate::SendError::Closed(1))
            ));
            assert!(matches!(
                p.try_send(2).await,
                Err(flowgate::TrySendError::Send(flowgate::SendError::Closed(2)))
            ));
            assert!(p.is_closed());
            let err = handle.await.unwrap_err();
            assert!(matches!(err, flowgate::Error::ZeroCapacity { ref stage } if stage == "zero"));
        }));
        // Pipelined sends give their items back too, and the replies end.
        let (p, consumer_future) = consumer().into_future();
        let (mut tx, mut replies) = p.pipelined(8).unwrap();
        futures_lite::future::block_on(async {
            assert!(matches!(
                tx.send(7).await,
                Err(flowgate::SendError::Closed(7))
            ));
            tx.close().await;
            assert!(replies.next_chunk().await.is_none());
            assert!(consumer_future.await.is_err());
        });
    });
}

#[cfg(feature = "sink")]
#[test]
fn a_producer_as_a_sink_sends_every_item_and_gives_back_the_one_a_closed_consumer_refused() {
    use futures::SinkExt;

    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, consumer) =
            Consumer::new(Vec::new(), |seen: &mut Vec<u32>, x: u32| seen.push(x)).spawn_local(&ex);
        let closer = producer.clone();
        let seen = block_on(ex.run(async {
            let mut sink = producer.into_sink();
            for x in 0..100 {
                sink.send(x).await.unwrap();
            }
            closer.close();
            // The consumer is closed: the next item comes back.
            let err = sink.send(100).await.unwrap_err();
            assert!(matches!(err, SendError::Closed(100)));
            sink.close().await.unwrap();
            consumer.await.unwrap()
        }));
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn a_consumer_polled_by_another_task_is_still_woken() {
    // The consumer's doorbell keeps the waker of its first wait and, for a
    // wait by another task, takes the new waker instead. A send must wake
    // the task that polled the consumer last.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        let (mut producer, mut consumer) = Consumer::new(0u32, |n: &mut u32, x: u32| {
            *n += 1;
            x + 1
        })
        .into_future();
        let (first, second) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (w1, w2) = (
            Waker::from(Arc::clone(&first)),
            Waker::from(Arc::clone(&second)),
        );
        // The consumer waits, first polled by one task, then by another.
        assert!(
            consumer
                .as_mut()
                .poll(&mut Context::from_waker(&w1))
                .is_pending()
        );
        assert!(
            consumer
                .as_mut()
                .poll(&mut Context::from_waker(&w2))
                .is_pending()
        );
        // A send queues its request and rings: the second task is woken.
        let mut send = Box::pin(producer.send(41));
        let noop = Waker::noop();
        assert!(
            send.as_mut()
                .poll(&mut Context::from_waker(noop))
                .is_pending()
        );
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the last task to poll is woken"
        );
        // Polled again, the consumer answers.
        assert!(
            consumer
                .as_mut()
                .poll(&mut Context::from_waker(&w2))
                .is_pending()
        );
        match send.as_mut().poll(&mut Context::from_waker(noop)) {
            Poll::Ready(reply) => assert_eq!(reply.unwrap(), 42),
            Poll::Pending => {
                // The answer went to the send's first waker: poll once more.
                assert_eq!(block_on(send).unwrap(), 42);
            }
        }
    });
}
