//! The consumer goes away early: every producer gets its items back (or a
//! typed error for the one item that was in the consumer's hands), and no
//! task stays blocked. The counterpart of async-channel's `forget_blocked_*`
//! tests and crossbeam-channel's disconnect tests.

use crate::support;

use std::time::Duration;

use crate::support::tracked::{Live, Tracked};
use crate::support::{settle, watchdog};
use flowgate::{Consumer, SendError};
use futures_lite::StreamExt;
use futures_lite::future::{block_on, pending, zip};

const PRODUCERS: u64 = 4;
const ITEMS: u64 = 50;

/// What became of one producer's items.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Fate {
    answered: u64,
    /// Given back to the producer, item in hand.
    returned: u64,
    /// Lost with the consumer, reported as `Cancelled`.
    lost: u64,
}

impl Fate {
    fn total(self) -> u64 {
        self.answered + self.returned + self.lost
    }

    fn record<R>(&mut self, value: u64, result: Result<R, SendError<Tracked>>) {
        match result {
            Ok(_) => self.answered += 1,
            Err(SendError::Closed(item)) => {
                assert_eq!(item.value, value, "another item came back");
                self.returned += 1;
            }
            Err(SendError::Cancelled) => self.lost += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Starts one task per producer, each sending its `ITEMS` items one at a
/// time through `p` and recording what became of each.
fn send_all<R: 'static>(
    ex: &smol::LocalExecutor<'_>,
    p: &flowgate::Producer<Tracked, R>,
    item: &Live,
) -> Vec<smol::Task<Fate>> {
    (0..PRODUCERS)
        .map(|id| {
            let (mut p, item) = (p.clone(), item.clone());
            ex.spawn(async move {
                let mut fate = Fate::default();
                for n in 0..ITEMS {
                    let value = id * ITEMS + n;
                    fate.record(value, p.send(item.item(value)).await);
                }
                fate
            })
        })
        .collect()
}

/// Runs `ex` until every task has ended, and gives their outputs in order.
fn join_all<T>(ex: &smol::LocalExecutor<'_>, tasks: Vec<smol::Task<T>>) -> Vec<T> {
    block_on(ex.run(async {
        let mut outputs = Vec::with_capacity(tasks.len());
        for task in tasks {
            outputs.push(task.await);
        }
        outputs
    }))
}

/// A consumer stuck on its first item, whose task is then dropped: the
/// producers blocked on its full queue and those queued get their items
/// back, and each producer task ends.
#[test]
fn blocked_producers_get_their_items_back_when_the_consumer_task_is_dropped() {
    let live = Live::new();
    let item = live.clone();
    let fates = watchdog(move || {
        let ex = smol::LocalExecutor::new();
        let (p, consumer) = Consumer::new_async((), |_: &mut (), t: Tracked| async move {
            pending::<()>().await;
            t.value
        })
        .capacity(2)
        .into_future();
        let consumer = ex.spawn(consumer);
        let producers = send_all(&ex, &p, &item);
        drop(p);
        // Every producer is now blocked: one item in the handler, the queue
        // full, each producer waiting.
        settle(&ex);
        assert!(producers.iter().all(|t| !t.is_finished()));
        drop(consumer);
        join_all(&ex, producers)
    });
    let lost: u64 = fates.iter().map(|f| f.lost).sum();
    assert_eq!(lost, 1, "only the item in the handler is lost: {fates:?}");
    for fate in &fates {
        assert_eq!(fate.total(), ITEMS, "{fate:?}");
        assert_eq!(fate.answered, 0);
    }
    assert_eq!(live.count(), 0, "items left alive");
}

/// Pipelined senders whose consumer goes away: every ticket still gets one
/// answer, sends after that give the item back at once, and the sender and
/// reader both end.
#[test]
fn pipelined_sends_are_all_answered_when_the_consumer_goes_away() {
    let live = Live::new();
    let item = live.clone();
    let fates = watchdog(move || {
        let ex = smol::LocalExecutor::new();
        // Answers 100 items, then waits forever on the next.
        let (p, consumer) = Consumer::new_async(0u64, |seen: &mut u64, t: Tracked| {
            *seen += 1;
            let stuck = *seen > 100;
            async move {
                if stuck {
                    pending::<()>().await;
                }
                t.value
            }
        })
        .capacity(8)
        .into_future();
        let consumer = ex.spawn(consumer);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|id| {
                let (mut tx, replies) = p.pipelined(16).unwrap();
                let item = item.clone();
                ex.spawn(async move {
                    let mut fate = Fate::default();
                    let send = async {
                        let mut refused = Fate::default();
                        for n in 0..ITEMS {
                            let value = id * ITEMS + n;
                            if let Err(err) = tx.send(item.item(value)).await {
                                refused.record::<()>(value, Err(err));
                            }
                        }
                        tx.close().await;
                        refused
                    };
                    let read = replies.for_each(|(ticket, reply)| {
                        fate.record(id * ITEMS + ticket, reply);
                    });
                    let (refused, ()) = zip(send, read).await;
                    fate.returned += refused.returned;
                    fate.lost += refused.lost;
                    fate
                })
            })
            .collect();
        drop(p);
        settle(&ex);
        drop(consumer);
        join_all(&ex, producers)
    });
    let answered: u64 = fates.iter().map(|f| f.answered).sum();
    let lost: u64 = fates.iter().map(|f| f.lost).sum();
    assert_eq!(answered, 100, "{fates:?}");
    assert!(lost <= 1, "{fates:?}");
    for fate in &fates {
        assert_eq!(fate.total(), ITEMS, "{fate:?}");
    }
    assert_eq!(live.count(), 0, "items left alive");
}

/// Outside producers feed a pipeline through a bounded channel. When the
/// pipeline's handle is dropped, the producers blocked on the channel get
/// their items back from it, and every item in the pipeline is dropped.
#[test]
fn outside_producers_get_their_items_back_when_the_pipeline_is_dropped() {
    let live = Live::new();
    let item = live.clone();
    let (returned, sent) = watchdog(move || {
        let ex = smol::LocalExecutor::new();
        let (tx, rx) = async_channel::bounded::<Tracked>(4);
        let (_gate_tx, gate) = async_channel::bounded::<()>(1);
        let handle = flowgate::from_stream(rx)
            .capacity(8)
            .map(|t| t)
            .capacity(8)
            .for_each_async(move |t| {
                let gate = gate.clone();
                async move {
                    let _ = gate.recv().await;
                    drop(t);
                }
            })
            .spawn_local(&ex);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|id| {
                let (tx, item) = (tx.clone(), item.clone());
                ex.spawn(async move {
                    let mut back = 0;
                    for n in 0..ITEMS {
                        if let Err(async_channel::SendError(t)) =
                            tx.send(item.item(id * ITEMS + n)).await
                        {
                            assert_eq!(t.value, id * ITEMS + n);
                            back += 1;
                        }
                    }
                    back
                })
            })
            .collect();
        drop(tx);
        settle(&ex);
        assert!(producers.iter().all(|t| !t.is_finished()));
        drop(handle);
        let returned: u64 = join_all(&ex, producers).into_iter().sum();
        settle(&ex);
        assert!(ex.is_empty(), "a task is left on the executor");
        (returned, PRODUCERS * ITEMS)
    });
    // What the pipeline had taken in was dropped with it; the rest came back.
    assert!(returned > 0 && returned < sent, "{returned} of {sent}");
    assert_eq!(live.count(), 0, "items left alive");
}

/// Dropping the output stream early stops every stage: the source is not
/// pulled again, every item it made is dropped, and the run is reported as
/// cancelled with each item accounted for.
#[test]
fn dropping_the_output_stream_early_drops_every_item() {
    let live = Live::new();
    let item = live.clone();
    let report = watchdog(move || {
        let mut stream = flowgate::from_iter((0u64..).map(move |v| item.item(v)))
            .capacity(16)
            .map(|t| t.with(t.value * 2))
            .capacity(16)
            .into_stream();
        let control = stream.control();
        block_on(async {
            for expected in 0..10u64 {
                let got = stream.next().await.unwrap().unwrap();
                assert_eq!(got.value, expected * 2);
            }
        });
        drop(stream);
        // The stages end as they are dropped, on this thread.
        control.report()
    });
    assert!(report.state.is_finished(), "{report}");
    support::assert_accounted(&report);
    assert_eq!(live.count(), 0, "items left alive");
}

/// A service whose job is dropped while producers wait on it: each send
/// gets its item back or a typed error, and every producer ends.
#[test]
fn producers_of_a_dropped_service_are_all_answered() {
    let live = Live::new();
    let item = live.clone();
    let fates = watchdog(move || {
        let ex = smol::LocalExecutor::new();
        let (p, job) = flowgate::service(|s| {
            s.map(|t: Tracked| t).then(|t| async move {
                smol::Timer::after(Duration::from_secs(3600)).await;
                t
            })
        });
        let handle = job.spawn_local(&ex);
        let producers = send_all(&ex, &p, &item);
        drop(p);
        settle(&ex);
        drop(handle);
        join_all(&ex, producers)
    });
    for fate in &fates {
        assert_eq!(fate.total(), ITEMS, "{fate:?}");
        assert_eq!(fate.answered, 0, "{fate:?}");
        assert!(
            fate.lost <= 1,
            "a producer has one send in flight: {fate:?}"
        );
    }
    assert_eq!(live.count(), 0, "items left alive");
}
