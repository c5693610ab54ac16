//! Sends with a time limit: an item that could not be handed over comes
//! back; a late reply is reported, never mixed up with a later one.

use std::time::Duration;

use crate::support::watchdog;
use flowgate::{Consumer, SendTimeoutError};

/// A consumer that sleeps `ms` milliseconds per item and replies with it.
fn sleeper(ex: &smol::Executor<'static>) -> flowgate::Producer<u64, u64> {
    let (producer, consumer) = Consumer::new_async((), |_: &mut (), ms: u64| async move {
        smol::Timer::after(Duration::from_millis(ms)).await;
        ms
    })
    .capacity(1)
    .spawn(ex);
    drop(consumer); // detaches: the consumer runs until every producer is gone
    producer
}

#[test]
fn a_send_that_finds_no_room_in_time_gets_its_item_back() {
    watchdog(|| {
        let ex = smol::Executor::new();
        let (started_tx, started_rx) = async_channel::bounded::<()>(4);
        let (gate_tx, gate_rx) = async_channel::bounded::<()>(1);
        let (mut p, consumer) = Consumer::new_async((), move |_: &mut (), x: u64| {
            let (started, gate) = (started_tx.clone(), gate_rx.clone());
            async move {
                let _ = started.send(()).await;
                let _ = gate.recv().await;
                x
            }
        })
        .capacity(1)
        .spawn(&ex);
        drop(consumer);
        let (mut held, mut queued) = (p.clone(), p.clone());
        futures_lite::future::block_on(ex.run(async {
            // The consumer holds one item, and a second fills its queue.
            let first = ex.spawn(async move { held.send(1).await });
            started_rx.recv().await.unwrap();
            let second = ex.spawn(async move { queued.send(2).await });
            while p.is_empty() {
                futures_lite::future::yield_now().await;
            }
            let err = p
                .send_timeout(7, Duration::from_millis(30))
                .await
                .unwrap_err();
            assert!(matches!(err, SendTimeoutError::Timeout(7)), "{err:?}");
            let err = p.send_timeout(8, Duration::ZERO).await.unwrap_err();
            assert_eq!(err.into_inner(), Some(8));
            gate_tx.close();
            assert_eq!(first.await.unwrap(), 1);
            assert_eq!(second.await.unwrap(), 2);
            // The producer stays usable.
            assert_eq!(p.send_timeout(3, Duration::from_secs(5)).await.unwrap(), 3);
        }));
    });
}

#[test]
fn a_late_reply_is_unanswered_and_never_taken_for_the_next() {
    watchdog(|| {
        let ex = smol::Executor::new();
        let mut p = sleeper(&ex);
        futures_lite::future::block_on(ex.run(async {
            let err = p
                .send_timeout(100, Duration::from_millis(10))
                .await
                .unwrap_err();
            assert!(matches!(err, SendTimeoutError::Unanswered), "{err:?}");
            assert_eq!(err.into_inner(), None);
            // The late reply (100) must not be returned for this send.
            assert_eq!(p.send_timeout(3, Duration::MAX).await.unwrap(), 3);
        }));
    });
}

#[test]
fn a_send_into_a_closed_consumer_returns_the_item() {
    watchdog(|| {
        let ex = smol::Executor::new();
        let mut p = sleeper(&ex);
        p.close();
        let err = futures_lite::future::block_on(ex.run(p.send_timeout(9, Duration::from_secs(1))))
            .unwrap_err();
        assert_eq!(err.into_inner(), Some(9));
    });
}
