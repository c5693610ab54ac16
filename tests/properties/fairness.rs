//! Fairness: a hot pipeline does not starve other tasks on its thread, and
//! producers sharing one consumer, or pipelines sharing one merge, each get
//! their share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::watchdog;

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

/// A timer's task on the same single-threaded executor as an always-busy
/// pipeline runs soon after its timer fires, counted in items, not in
/// wall time.
///
/// A waker around the task's own records how many items the sink had taken
/// when the timer woke the task; the task records the count again when it
/// runs. In between, the executor runs at most the few tasks queued before
/// it, each once, and a stage gives its thread back after a yield budget of
/// 4,096 items (plus the chunk it is draining). So the gap is bounded in
/// items however loaded the machine is: load slows both sides alike. A stage
/// that never yielded would starve the timer (a hang, caught by the
/// watchdog); one that yielded rarely would show a gap of many budgets.
#[test]
fn timers_beside_a_hot_pipeline_run_within_a_yield_budget() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Wake, Waker};

    /// Wakes `inner`, noting the sink's count at that moment.
    struct Noting {
        inner: Waker,
        sunk: Arc<AtomicU64>,
        at_wake: AtomicU64,
    }

    impl Wake for Noting {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let now = self.sunk.load(Ordering::SeqCst);
            self.at_wake.store(now, Ordering::SeqCst);
            self.inner.wake_by_ref();
        }
    }

    /// Three yield budgets. The sink may be mid-run when the timer fires and
    /// may be queued once more ahead of the woken task; each run takes at
    /// most one budget plus one chunk (1,024). Seen: at most one budget.
    const BOUND: u64 = 3 * 4096;
    const NOT_WOKEN: u64 = u64::MAX;

    let gaps = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let sunk = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sunk);
        // Hops far larger than the budget, so that no stage ever has to
        // wait on one: only the yield budget gives the thread back.
        let hot = flowgate::from_iter(0u64..)
            .capacity(1 << 20)
            .chunk_limit(1024)
            .map(|x| x.wrapping_mul(3))
            .capacity(1 << 20)
            .chunk_limit(1024)
            .for_each(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .spawn_local(&ex);
        // The timers run in a task of their own, queued like the stages.
        let timers = ex.spawn(async move {
            let mut gaps = Vec::new();
            for _ in 0..20 {
                let mut timer = pin!(smol::Timer::after(Duration::from_millis(2)));
                let mut waiting: Option<Arc<Noting>> = None;
                std::future::poll_fn(|cx| {
                    let woke = waiting
                        .as_ref()
                        .map_or(NOT_WOKEN, |w| w.at_wake.load(Ordering::SeqCst));
                    let now = sunk.load(Ordering::SeqCst);
                    let noting = Arc::new(Noting {
                        inner: cx.waker().clone(),
                        sunk: Arc::clone(&sunk),
                        at_wake: AtomicU64::new(NOT_WOKEN),
                    });
                    let waker = Waker::from(Arc::clone(&noting));
                    if timer
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_ready()
                    {
                        if woke != NOT_WOKEN {
                            gaps.push(now - woke);
                        }
                        return Poll::Ready(());
                    }
                    waiting = Some(noting);
                    Poll::Pending
                })
                .await;
            }
            gaps
        });
        let gaps = futures_lite::future::block_on(ex.run(timers));
        assert!(hot.report().stages[0].emitted > 0, "the pipeline never ran");
        drop(hot);
        gaps
    });
    assert!(
        !gaps.is_empty(),
        "expected some timer to be woken, none was"
    );
    let worst = gaps.iter().max().copied().unwrap_or(0);
    assert!(
        worst <= BOUND,
        "expected each timer's task to run within {BOUND} sink items of its \
         wake-up, but one ran {worst} items after it (all gaps: {gaps:?})"
    );
    if std::env::var_os("FLOWGATE_FAIRNESS_STATS").is_some() {
        eprintln!("items between a timer's wake-up and its task running: {gaps:?}");
    }
}

/// N producers sending as fast as they can into one consumer each get their
/// share of the first COUNT items it takes (see [`least_share`]).
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
        let least = least_share(threads, COUNT, N);
        for (id, &got) in shares.iter().enumerate() {
            assert!(
                got >= least,
                "{threads} thread(s): expected each producer to get at least {least} of \
                 {COUNT}, but producer {id} got {got}: {shares:?}"
            );
        }
    }
}

/// N endless pipelines merged into one sink each get their share of the
/// first COUNT items it takes (see [`least_share`]).
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
        let least = least_share(threads, COUNT, N);
        for (id, &got) in shares.iter().enumerate() {
            assert!(
                got >= least,
                "{threads} thread(s): expected each input to get at least {least} of \
                 {COUNT}, but input {id} got {got}: {shares:?}"
            );
        }
    }
}

/// The least share of `count` items each of `n` competitors must get.
///
/// On one thread the executor alone decides who runs, so every competitor
/// must get at least half its fair share. On more threads the operating
/// system decides too: a competitor whose thread is taken away for a while
/// (a loaded machine does that) has nothing ready for a while, and others
/// rightly take its turns. What flowgate still owes it there is not to be
/// shut out: at least one item.
fn least_share(threads: usize, count: u64, n: usize) -> u64 {
    if threads == 1 {
        count / n as u64 / 2
    } else {
        1
    }
}
