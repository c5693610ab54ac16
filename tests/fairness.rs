//! Fairness: a hot pipeline does not starve other tasks on its thread, and
//! producers sharing one consumer, or pipelines sharing one merge, each get
//! their share.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::watchdog;

#[test]
fn a_hot_pipeline_does_not_starve_a_timer_on_the_same_thread() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let processed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&processed);
        // An endless pipeline whose stages always have work.
        let hot = flowgate::from_iter(0u64..)
            .map(|x| x.wrapping_mul(3))
            .for_each(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .spawn_local(&ex);
        let fired = futures_lite::future::block_on(ex.run(async {
            smol::Timer::after(Duration::from_millis(10)).await;
            processed.load(Ordering::Relaxed)
        }));
        drop(hot);
        // The timer fired while the pipeline was running, not before it began.
        assert!(fired > 0, "the pipeline never ran");
    });
}

#[test]
fn an_always_ready_async_stage_yields_under_one_future() {
    // In one-future mode, every stage is polled from one task. A stage whose
    // futures are always ready must still hand control back regularly, or a
    // sibling future in the same `or` would never be polled.
    watchdog(|| {
        let processed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&processed);
        let hot = flowgate::from_stream(futures_lite::stream::repeat(1u64))
            .then(move |x| {
                counter.fetch_add(1, Ordering::Relaxed);
                async move { x }
            })
            .count();
        let winner = futures_lite::future::block_on(futures_lite::future::or(
            async {
                let _ = std::future::IntoFuture::into_future(hot).await;
                "pipeline"
            },
            async {
                smol::Timer::after(Duration::from_millis(10)).await;
                "timer"
            },
        ));
        assert_eq!(winner, "timer");
        assert!(processed.load(Ordering::Relaxed) > 0);
    });
}

/// Timers on the same single-threaded executor as an always-busy pipeline
/// fire within 10 ms of their deadline.
///
/// Each stage yields after a few thousand items: about 4 µs of work in a
/// release build, about 1.5 ms in the debug build the tests run in.
///
/// The lateness is wall time, so the assertion allows for the machine: 18 of
/// 20 timers must be within 10 ms (a shared 2-core machine running other
/// tests can take the thread away now and then), and none may be more than
/// 250 ms late, which a pipeline that never yields would far exceed.
#[test]
fn timers_beside_a_hot_pipeline_fire_within_10_ms() {
    use std::time::Instant;

    let lateness = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let hot = flowgate::from_iter(0u64..)
            .map(|x| x.wrapping_mul(3))
            .for_each(drop)
            .spawn_local(&ex);
        let lateness = futures_lite::future::block_on(ex.run(async {
            let mut lateness = Vec::new();
            for _ in 0..20 {
                let asked = Duration::from_millis(2);
                let start = Instant::now();
                smol::Timer::after(asked).await;
                lateness.push(start.elapsed().saturating_sub(asked));
            }
            lateness
        }));
        assert!(hot.report().stages[0].emitted > 0, "the pipeline never ran");
        drop(hot);
        lateness
    });
    let mut sorted = lateness.clone();
    sorted.sort();
    if std::env::var_os("FLOWGATE_FAIRNESS_STATS").is_some() {
        eprintln!(
            "timer lateness: median {:?}, max {:?}",
            sorted[10], sorted[19]
        );
    }
    assert!(sorted[17] <= Duration::from_millis(10), "{lateness:?}");
    assert!(sorted[19] <= Duration::from_millis(250), "{lateness:?}");
}

/// N producers sending as fast as they can into one consumer each get at
/// least half their fair share of the first COUNT items it takes.
#[test]
fn producers_into_one_consumer_each_get_their_share() {
    use std::sync::atomic::AtomicBool;

    const N: usize = 4;
    const COUNT: u64 = 40_000;
    for threads in [1, 2] {
        let shares = watchdog(move || {
            let ex = smol::Executor::new();
            let done = Arc::new(AtomicBool::new(false));
            let stop = Arc::clone(&done);
            let (p, consumer) = flowgate::Consumer::new(
                (0u64, [0u64; N]),
                move |(total, shares): &mut (u64, [u64; N]), id: usize| {
                    if *total < COUNT {
                        *total += 1;
                        shares[id] += 1;
                    } else {
                        stop.store(true, Ordering::Relaxed);
                    }
                },
            )
            .capacity(64)
            .spawn(&ex);
            let producers: Vec<_> = (0..N)
                .map(|id| {
                    let (mut p, done) = (p.clone(), Arc::clone(&done));
                    ex.spawn(async move {
                        while !done.load(Ordering::Relaxed) {
                            if p.send(id).await.is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            drop(p);
            let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
            std::thread::scope(|scope| {
                for _ in 1..threads {
                    scope.spawn(|| futures_lite::future::block_on(ex.run(stop_rx.recv())));
                }
                let shares = futures_lite::future::block_on(ex.run(async {
                    for task in producers {
                        task.await;
                    }
                    consumer.await.unwrap().1
                }));
                drop(stop_tx);
                shares
            })
        });
        assert_eq!(shares.iter().sum::<u64>(), COUNT);
        for (id, &got) in shares.iter().enumerate() {
            assert!(
                got >= COUNT / N as u64 / 2,
                "{threads} thread(s): producer {id} got {got} of {COUNT}: {shares:?}"
            );
        }
    }
}

/// N endless pipelines merged into one sink each get at least half their
/// fair share of the first COUNT items it takes.
#[test]
fn merged_pipelines_each_get_their_share() {
    const N: usize = 4;
    const COUNT: u64 = 100_000;
    for threads in [1, 2] {
        let shares = watchdog(move || {
            let inputs = (0..N).map(|id| flowgate::from_iter(std::iter::repeat(id)).map(|id| id));
            let merged = flowgate::merge(inputs);
            let control = merged.control();
            let shares: Arc<[AtomicU64; N]> = Arc::new(Default::default());
            let counted = Arc::clone(&shares);
            let mut seen = 0;
            let result = merged
                .for_each(move |id| {
                    if seen < COUNT {
                        counted[id].fetch_add(1, Ordering::Relaxed);
                        seen += 1;
                    } else {
                        control.cancel();
                    }
                })
                .run_on_threads(threads);
            assert!(matches!(result, Err(flowgate::Error::Cancelled { .. })));
            shares.each_ref().map(|s| s.load(Ordering::Relaxed))
        });
        assert_eq!(shares.iter().sum::<u64>(), COUNT);
        for (id, &got) in shares.iter().enumerate() {
            assert!(
                got >= COUNT / N as u64 / 2,
                "{threads} thread(s): input {id} got {got} of {COUNT}: {shares:?}"
            );
        }
    }
}
