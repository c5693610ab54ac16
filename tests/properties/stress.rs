//! Stress: many pipelines at once, one long pipeline, and many producers on
//! two threads, with every item counted.
//!
//! The default sizes are the issue's; `FLOWGATE_STRESS=1` runs each ten
//! times larger.

use std::time::Duration;

use crate::support::{scaled, watchdog_for};
use futures_lite::future::block_on;

/// Runs `f` on an executor with `threads` threads in all, this one included.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce(&smol::Executor<'static>) -> T + Send) -> T {
    let ex = smol::Executor::new();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|| block_on(ex.run(stopped.recv())));
        }
        let out = f(&ex);
        drop(stop);
        out
    })
}

#[test]
fn ten_thousand_concurrent_pipelines_each_deliver_exactly_once() {
    const ITEMS: u64 = 100;
    let pipelines: u64 = scaled(10_000, 100_000);
    let limit = Duration::from_secs(scaled(60, 600));
    let outputs = watchdog_for(limit, move || {
        on_threads(2, |ex| {
            let handles: Vec<_> = (0..pipelines)
                .map(|i| {
                    let base = i * ITEMS;
                    flowgate::from_iter(base..base + ITEMS)
                        .capacity(16)
                        .map(|x| x * 3)
                        .capacity(16)
                        .then(|x| async move { x + 1 })
                        .capacity(16)
                        .collect::<Vec<_>>()
                        .spawn(ex)
                })
                .collect();
            block_on(ex.run(async {
                let mut outputs = Vec::with_capacity(handles.len());
                for handle in handles {
                    outputs.push(handle.await.unwrap());
                }
                outputs
            }))
        })
    });
    assert_eq!(outputs.len() as u64, pipelines);
    for (i, out) in outputs.iter().enumerate() {
        let base = i as u64 * ITEMS;
        let want: Vec<u64> = (base..base + ITEMS).map(|x| x * 3 + 1).collect();
        assert_eq!(out, &want, "pipeline {i}");
    }
}

#[test]
fn a_million_items_through_one_pipeline_arrive_in_order() {
    let items: u64 = scaled(1_000_000, 10_000_000);
    let limit = Duration::from_secs(scaled(60, 600));
    let (count, sum) = watchdog_for(limit, move || {
        flowgate::from_iter(0..items)
            .map(|x| x ^ 0x5555)
            .then(|x| async move { x ^ 0x5555 })
            .filter(|_| true)
            .fold((0u64, 0u64), |(next, sum), x| {
                assert_eq!(x, next, "out of order");
                (next + 1, sum.wrapping_add(x))
            })
            .run_on_threads(2)
            .unwrap()
    });
    assert_eq!(count, items);
    assert_eq!(sum, (0..items).fold(0u64, |a, x| a.wrapping_add(x)));
}

#[test]
fn four_producers_on_two_threads_through_one_consumer_are_each_counted_once() {
    const PRODUCERS: usize = 4;
    let per: usize = scaled(25_000, 250_000);
    let seen = watchdog_for(Duration::from_secs(scaled(60, 600)), move || {
        on_threads(2, |ex| {
            let (p, consumer) =
                flowgate::Consumer::new(vec![0u8; PRODUCERS * per], |seen: &mut Vec<u8>, x| {
                    seen[x] += 1;
                    x
                })
                .spawn(ex);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let (mut tx, replies) = p.pipelined(256).unwrap();
                    ex.spawn(async move {
                        let send = async move {
                            for n in 0..per {
                                tx.send(n * PRODUCERS + id).await.unwrap();
                            }
                            tx.close().await;
                        };
                        let check = futures_lite::StreamExt::for_each(replies, |(ticket, r)| {
                            assert_eq!(r.unwrap(), ticket as usize * PRODUCERS + id);
                        });
                        futures_lite::future::zip(send, check).await;
                    })
                })
                .collect();
            drop(p);
            block_on(ex.run(async {
                for task in producers {
                    task.await;
                }
                consumer.await.unwrap()
            }))
        })
    });
    assert_eq!(seen.len(), PRODUCERS * per);
    let wrong: Vec<usize> = (0..seen.len()).filter(|&x| seen[x] != 1).collect();
    assert!(
        wrong.is_empty(),
        "values not seen exactly once: {:?}",
        &wrong[..wrong.len().min(10)]
    );
}

#[test]
fn four_producers_on_two_threads_through_one_service_pipeline_are_each_counted_once() {
    const PRODUCERS: u64 = 4;
    let per: u64 = scaled(25_000, 250_000);
    let seen = watchdog_for(Duration::from_secs(scaled(60, 600)), move || {
        on_threads(2, |ex| {
            let (p, job) =
                flowgate::service(|s| s.map(|x: u64| x * 2).then(|x| async move { x / 2 }));
            let running = job.spawn(ex);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let (mut tx, replies) = p.pipelined(512).unwrap();
                    ex.spawn(async move {
                        let send = async move {
                            for n in 0..per {
                                tx.send(n * PRODUCERS + id).await.unwrap();
                            }
                            tx.close().await;
                        };
                        let collect = futures_lite::StreamExt::fold(
                            replies,
                            Vec::new(),
                            |mut got, (ticket, reply)| {
                                assert_eq!(reply.unwrap(), [ticket * PRODUCERS + id]);
                                got.push(ticket * PRODUCERS + id);
                                got
                            },
                        );
                        futures_lite::future::zip(send, collect).await.1
                    })
                })
                .collect();
            drop(p);
            block_on(ex.run(async {
                let mut seen = vec![0u8; (PRODUCERS * per) as usize];
                for task in producers {
                    for x in task.await {
                        seen[x as usize] += 1;
                    }
                }
                running.await.unwrap();
                seen
            }))
        })
    });
    assert!(
        seen.iter().all(|&n| n == 1),
        "a value was not answered exactly once"
    );
}
