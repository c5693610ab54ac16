//! Pipelined replies carry their ticket: whatever order the answers come
//! back in, and whatever stops the consumer or the sender half way, the
//! replies give every ticket exactly once, in send order, each with the
//! reply to its own item or that item back. One test per path that used to
//! answer one ticket with another ticket's reply.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::{scaled, watchdog};
use flowgate::{Consumer, SendError};
use futures_lite::StreamExt;
use futures_lite::future::{block_on, poll_once, yield_now, zip};

/// The replies read from a pipelined sender, in the order read.
type Read<T, R> = Vec<(u64, Result<R, SendError<T>>)>;

/// Checks `read` against the items that were given each ticket: tickets
/// 0, 1, 2, ... each exactly once, each with `reply(item)` or its own item
/// back. Other errors (a panic, a cancel) are allowed, but only in their
/// own ticket's place.
fn assert_each_ticket_is_its_own<R: PartialEq + std::fmt::Debug>(
    read: &Read<u64, R>,
    sent: &HashMap<u64, u64>,
    reply: impl Fn(u64) -> R,
) {
    let tickets: Vec<u64> = read.iter().map(|(t, _)| *t).collect();
    let expected: Vec<u64> = (0..sent.len() as u64).collect();
    assert_eq!(tickets, expected, "every ticket once, in send order");
    for (ticket, result) in read {
        let item = sent[ticket];
        match result {
            Ok(r) => assert_eq!(*r, reply(item), "ticket {ticket} got another item's reply"),
            Err(SendError::Closed(back)) => {
                assert_eq!(*back, item, "ticket {ticket} gave back another item")
            }
            Err(_) => {}
        }
    }
}

/// A consumer that multiplies by 10 once a token comes through `gate`, so
/// a test decides when each item is done.
fn gated(
    ex: &smol::LocalExecutor<'static>,
    capacity: usize,
) -> (flowgate::Producer<u64, u64>, async_channel::Sender<()>) {
    let (open, gate) = async_channel::bounded::<()>(1_000);
    let (producer, _handle) =
        Consumer::new_async(gate, |gate: &mut async_channel::Receiver<()>, x: u64| {
            let gate = gate.clone();
            async move {
                let _ = gate.recv().await;
                x * 10
            }
        })
        .capacity(capacity)
        .spawn_local(ex);
    (producer, open)
}

/// Sends 0, 1 and 2 to a [`gated`] consumer of capacity 1 through `tx`
/// (window 8, chunks of 2): the consumer takes 0 and waits at its gate, 1
/// fills its queue, and 2 is held in the sender's chunk. Gives the items by
/// ticket.
async fn fill_to_the_brim(tx: &mut flowgate::PipelinedSender<u64, u64>) -> HashMap<u64, u64> {
    let mut sent = HashMap::new();
    sent.insert(tx.send(0).await.unwrap(), 0);
    for _ in 0..10 {
        yield_now().await; // the consumer takes 0 and waits at the gate
    }
    sent.insert(tx.send(1).await.unwrap(), 1); // fills the queue
    sent.insert(tx.send(2).await.unwrap(), 2); // held in the chunk
    sent
}

#[test]
fn a_sender_dropped_with_a_full_queue_leaves_each_ticket_its_own_answer() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, _h) = Consumer::new_async((), |_: &mut (), x: u64| async move {
            smol::Timer::after(Duration::from_millis(2)).await;
            x * 10
        })
        .capacity(1)
        .spawn_local(&ex);
        let (mut tx, replies) = producer.pipelined(64).unwrap();
        let (sent, read) = block_on(ex.run(async move {
            let mut sent = HashMap::new();
            for x in 0..40u64 {
                let ticket = tx.send(x).await.unwrap();
                sent.insert(ticket, x);
            }
            drop(tx); // without close, while the queue is full
            (sent, replies.collect::<Vec<_>>().await)
        }));
        assert_eq!(sent.len(), 40);
        assert_each_ticket_is_its_own(&read, &sent, |x| x * 10);
    });
}

#[test]
fn another_clone_closing_mid_stream_leaves_each_ticket_its_own_answer() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, _h) = Consumer::new_async((), |_: &mut (), x: u64| async move {
            yield_now().await;
            x * 10
        })
        .capacity(2)
        .spawn_local(&ex);
        let closer = producer.clone();
        let (mut tx, replies) = producer.pipelined(8).unwrap();
        let (sent, read) = block_on(ex.run(async move {
            let send = async move {
                let mut sent = HashMap::new();
                for x in 0..40u64 {
                    if x == 12 {
                        closer.close();
                    }
                    match tx.send(x).await {
                        Ok(ticket) => {
                            sent.insert(ticket, x);
                        }
                        Err(SendError::Closed(back)) => assert_eq!(back, x),
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                    yield_now().await;
                }
                tx.close().await;
                sent
            };
            zip(send, replies.collect::<Vec<_>>()).await
        }));
        assert!(sent.len() >= 12, "the sends before the close were taken");
        assert_each_ticket_is_its_own(&read, &sent, |x| x * 10);
    });
}

#[test]
fn a_send_dropped_while_it_waits_for_room_takes_no_ticket_and_moves_no_other() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, open) = gated(&ex, 1);
        // A window of 8 sends chunks of 2.
        let (mut tx, replies) = producer.pipelined(8).unwrap();
        let (sent, read) = block_on(ex.run(async move {
            let mut sent = fill_to_the_brim(&mut tx).await;
            // Sending 3 fills the chunk, whose flush waits for room: the send
            // is given up half way.
            assert!(poll_once(tx.send(3)).await.is_none(), "the send must wait");
            for _ in 0..100 {
                open.send(()).await.unwrap();
            }
            sent.insert(tx.send(4).await.unwrap(), 4);
            tx.close().await;
            (sent, replies.collect::<Vec<_>>().await)
        }));
        assert_eq!(sent.len(), 4, "tickets 0 to 3 went to items 0, 1, 2 and 4");
        assert_each_ticket_is_its_own(&read, &sent, |x| x * 10);
        assert!(
            read.iter().all(|(_, r)| r.is_ok()),
            "the consumer was alive for every ticketed item: {read:?}"
        );
    });
}

#[test]
fn a_flush_dropped_while_it_waits_for_room_keeps_its_items_for_the_next() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, open) = gated(&ex, 1);
        let (mut tx, replies) = producer.pipelined(8).unwrap();
        let (sent, read) = block_on(ex.run(async move {
            let mut sent = fill_to_the_brim(&mut tx).await;
            assert!(poll_once(tx.flush()).await.is_none(), "the flush must wait");
            for _ in 0..100 {
                open.send(()).await.unwrap();
            }
            sent.insert(tx.send(3).await.unwrap(), 3);
            tx.close().await;
            (sent, replies.collect::<Vec<_>>().await)
        }));
        assert_each_ticket_is_its_own(&read, &sent, |x| x * 10);
        assert!(
            read.iter().all(|(_, r)| r.is_ok()),
            "a dropped flush loses nothing: {read:?}"
        );
    });
}

#[test]
fn a_consumer_panicking_on_another_thread_leaves_each_ticket_its_own_answer() {
    watchdog(|| {
        for run in 0..scaled(1_000u64, 10_000) {
            let ex = smol::Executor::new();
            let panic_at = run % 97;
            let (producer, _h) = Consumer::new((), move |_: &mut (), x: u64| {
                assert_ne!(x, panic_at, "a planned panic");
                x * 10
            })
            .capacity(1 + (run % 3) as usize)
            .spawn(&ex);
            let (stop, stopped) = async_channel::bounded::<()>(1);
            std::thread::scope(|scope| {
                scope.spawn(|| block_on(ex.run(stopped.recv())));
                let (mut tx, replies) = producer.pipelined(1 + (run % 16) as usize).unwrap();
                let (sent, read) = block_on(zip(
                    async move {
                        let mut sent = HashMap::new();
                        for x in 0..200u64 {
                            if let Ok(ticket) = tx.send(x).await {
                                sent.insert(ticket, x);
                            }
                        }
                        tx.close().await;
                        sent
                    },
                    replies.collect::<Vec<_>>(),
                ));
                assert_each_ticket_is_its_own(&read, &sent, |x| x * 10);
                drop(stop);
            });
        }
    });
}

#[test]
fn a_service_shut_down_mid_stream_leaves_each_ticket_its_own_answer() {
    watchdog(|| {
        for run in 0..scaled(100u64, 1_000) {
            let (producer, job) = flowgate::service(|s| s.map(|x: u64| x * 10).capacity(4));
            let ex = smol::Executor::new();
            let handle = job.spawn(&ex);
            let control = handle.control();
            let (stop, stopped) = async_channel::bounded::<()>(1);
            std::thread::scope(|scope| {
                scope.spawn(|| block_on(ex.run(stopped.recv())));
                let (mut tx, replies) = producer.pipelined(1 + (run % 32) as usize).unwrap();
                // The producer stays alive: the shutdown alone ends the run.
                let (sent, read) = block_on(zip(
                    async move {
                        let mut sent = HashMap::new();
                        for x in 0..300u64 {
                            if x == 100 + run % 200 {
                                control.shutdown();
                            }
                            if let Ok(ticket) = tx.send(x).await {
                                sent.insert(ticket, x);
                            }
                        }
                        tx.close().await;
                        sent
                    },
                    replies.collect::<Vec<_>>(),
                ));
                assert_each_ticket_is_its_own(&read, &sent, |x| vec![x * 10]);
                let _ = block_on(handle);
                drop(stop);
            });
        }
    });
}

#[test]
fn sends_after_the_replies_are_dropped_come_back_closed() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, _h) = Consumer::new((), |_: &mut (), x: u64| x).spawn_local(&ex);
        let (mut tx, replies) = producer.pipelined(64).unwrap();
        block_on(ex.run(async move {
            for x in 0..10u64 {
                tx.send(x).await.unwrap();
            }
            drop(replies);
            for x in 10..5_000u64 {
                match tx.send(x).await {
                    Err(SendError::Closed(back)) => assert_eq!(back, x),
                    other => panic!("send {x} after the replies were dropped: {other:?}"),
                }
            }
        }));
    });
}

#[test]
fn items_held_while_the_consumer_is_busy_leave_with_the_next_flush() {
    // Sent while the consumer works on item 0, items 1 and 2 wait in the
    // sender's chunk (the documented rule: a chunk is handed over by a send
    // that finds the consumer idle, when full, or by `flush`). A task that
    // then waits for replies flushes first, and every reply comes.
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (producer, open) = gated(&ex, 4);
        let (mut tx, mut replies) = producer.pipelined(64).unwrap();
        block_on(ex.run(async move {
            for x in 0..3u64 {
                assert_eq!(tx.send(x).await.unwrap(), x);
            }
            for _ in 0..3 {
                open.send(()).await.unwrap();
            }
            tx.flush().await;
            for x in 0..3u64 {
                let (ticket, reply) = replies.next().await.unwrap();
                assert_eq!((ticket, reply.unwrap()), (x, x * 10));
            }
        }));
    });
}
