//! Parallel stages: ordered, unordered and keyed output; N items in flight
//! while downstream is blocked; bad worker counts; panics in workers; sync
//! work spread over threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::support::{assert_accounted, watchdog};
use flowgate::{Error, State};
use futures_lite::future::yield_now;
use proptest::prelude::*;

/// Waits for `turns` polls: a delay measured in scheduler turns, so the
/// order in which items finish depends on it, but no clock is involved.
async fn delay(turns: u8) {
    for _ in 0..turns {
        yield_now().await;
    }
}

/// How a case runs its job.
fn run<O: Send + 'static>(job: flowgate::Job<O>, threads: usize) -> Result<O, Error> {
    if threads == 1 {
        job.run()
    } else {
        job.run_on_threads(threads)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn ordered_output_equals_the_sequential_result(
        delays in prop::collection::vec(0u8..20, 0..300),
        workers in 1usize..24,
        capacity in 1usize..64,
        threads in 1usize..=2,
    ) {
        let expected: Vec<(usize, u8)> = delays.iter().copied().enumerate().collect();
        let input = expected.clone();
        let job = flowgate::from_iter(input)
            .capacity(capacity)
            .par_then(workers, |(i, d)| async move {
                delay(d).await;
                (i, d)
            })
            .capacity(capacity)
            .collect::<Vec<_>>();
        let control = job.control();
        let out = watchdog(move || run(job, threads)).unwrap();
        prop_assert_eq!(out, expected);
        assert_accounted(&control.report());
    }

    #[test]
    fn unordered_output_is_a_permutation_of_the_sequential_result(
        delays in prop::collection::vec(0u8..20, 0..300),
        workers in 1usize..24,
        threads in 1usize..=2,
    ) {
        let expected: Vec<(usize, u8)> = delays.iter().copied().enumerate().collect();
        let input = expected.clone();
        let job = flowgate::from_iter(input)
            .par_then_unordered(workers, |(i, d)| async move {
                delay(d).await;
                (i, d)
            })
            .collect::<Vec<_>>();
        let mut out = watchdog(move || run(job, threads)).unwrap();
        out.sort_unstable();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn keyed_output_keeps_each_keys_order_and_runs_a_key_alone(
        items in prop::collection::vec((0u8..6, 0u8..20), 0..300),
        workers in 1usize..12,
        threads in 1usize..=2,
    ) {
        // One "busy" flag per key: two items of one key at once would find
        // it set.
        let busy: Arc<Vec<AtomicBool>> = Arc::new((0..6).map(|_| AtomicBool::new(false)).collect());
        let overlap = Arc::new(AtomicBool::new(false));
        let (b, o) = (Arc::clone(&busy), Arc::clone(&overlap));
        let input: Vec<(usize, u8, u8)> =
            items.iter().enumerate().map(|(i, &(k, d))| (i, k, d)).collect();
        let job = flowgate::from_iter(input.clone())
            .par_then_by_key(workers, |item| item.1, move |item| {
                let (b, o) = (Arc::clone(&b), Arc::clone(&o));
                async move {
                    let flag = &b[usize::from(item.1)];
                    if flag.swap(true, SeqCst) {
                        o.store(true, SeqCst);
                    }
                    delay(item.2).await;
                    flag.store(false, SeqCst);
                    item
                }
            })
            .collect::<Vec<_>>();
        let out = watchdog(move || run(job, threads)).unwrap();
        prop_assert!(!overlap.load(SeqCst), "two items of one key ran at once");
        let by_key = |items: &[(usize, u8, u8)]| {
            let mut map: HashMap<u8, Vec<usize>> = HashMap::new();
            for item in items {
                map.entry(item.1).or_default().push(item.0);
            }
            map
        };
        prop_assert_eq!(out.len(), input.len());
        prop_assert_eq!(by_key(&out), by_key(&input));
    }
}

/// The sink is stuck and the hop after the parallel stage is full, yet the
/// stage still gets N items in flight.
fn reaches_n_in_flight_while_downstream_is_blocked(unordered: bool) {
    const N: usize = 8;
    // Items below FREE finish at once and fill everything downstream.
    const FREE: u32 = 12;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (entered_tx, entered_rx) = async_channel::unbounded::<u32>();
    let (work_gate, work_wait) = async_channel::bounded::<()>(1);
    let (sink_gate, sink_wait) = async_channel::bounded::<()>(1);
    let taken = Arc::new(AtomicUsize::new(0));
    let flight = Arc::clone(&in_flight);
    let work = move |x: u32| {
        let (flight, entered, wait) = (Arc::clone(&flight), entered_tx.clone(), work_wait.clone());
        async move {
            if x >= FREE {
                flight.fetch_add(1, SeqCst);
                entered.send(x).await.unwrap();
                // Held until the gate closes.
                let _ = wait.recv().await;
                flight.fetch_sub(1, SeqCst);
            }
            x
        }
    };
    let pipeline = flowgate::from_iter(0..200u32);
    let pipeline = if unordered {
        pipeline.par_then_unordered(N, work)
    } else {
        pipeline.par_then(N, work)
    };
    let seen = Arc::clone(&taken);
    let job = pipeline
        .capacity(4)
        .chunk_limit(1)
        .for_each_async(move |_| {
            let (seen, wait) = (Arc::clone(&seen), sink_wait.clone());
            async move {
                seen.fetch_add(1, SeqCst);
                let _ = wait.recv().await;
            }
        });
    let control = job.control();
    let ex = smol::Executor::new();
    let handle = job.spawn(&ex);
    let flight = Arc::clone(&in_flight);
    watchdog(move || {
        smol::block_on(ex.run(async move {
            for _ in 0..N {
                entered_rx.recv().await.unwrap();
            }
            // N items are inside the work, and no more may enter.
            assert_eq!(flight.load(SeqCst), N);
            assert!(entered_rx.try_recv().is_err());
            // Meanwhile the sink has taken one item and is stuck on it.
            assert_eq!(taken.load(SeqCst), 1);
            let stage = &control.report().stages[1];
            assert_eq!(stage.state, State::Running);
            sink_gate.close();
            work_gate.close();
            handle.await.unwrap();
            assert_eq!(taken.load(SeqCst), 200);
            assert_accounted(&control.report());
        }))
    });
}

#[test]
fn ordered_reaches_n_in_flight_while_downstream_is_blocked() {
    reaches_n_in_flight_while_downstream_is_blocked(false);
}

#[test]
fn unordered_reaches_n_in_flight_while_downstream_is_blocked() {
    reaches_n_in_flight_while_downstream_is_blocked(true);
}

#[test]
fn zero_workers_is_a_typed_error_not_a_hang() {
    let err = watchdog(|| {
        flowgate::from_iter(0..10u8)
            .par_map(0, |x| x)
            .name("square")
            .count()
            .run()
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::ZeroWorkers { ref stage } if stage == "square"),
        "{err}"
    );
    let err = watchdog(|| {
        flowgate::from_iter(0..10u8)
            .par_then_by_key(0, |x| *x, |x| async move { x })
            .count()
            .run()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "stage `par_then_by_key#1` has 0 workers; a parallel stage needs at least 1"
    );
    let err = watchdog(|| {
        flowgate::from_iter(0..10u8)
            .par_map_unordered(usize::MAX, |x| x)
            .count()
            .run()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyWorkers {
                workers: usize::MAX,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_panicking_worker_fails_the_run_naming_the_stage() {
    for keyed in [false, true] {
        let job = flowgate::from_iter(0..1000u32);
        let job = if keyed {
            job.par_map_by_key(
                4,
                |x| x % 7,
                |x| if x == 500 { panic!("bad {x}") } else { x },
            )
        } else {
            job.par_map(4, |x| if x == 500 { panic!("bad {x}") } else { x })
        };
        let job = job.name("work").count();
        let control = job.control();
        let err = watchdog(move || job.run_on_threads(2)).unwrap_err();
        assert!(
            matches!(err, Error::StagePanicked { ref stage, ref message } if stage == "work" && message == "bad 500"),
            "{err}"
        );
        let report = control.report();
        assert_eq!(report.state, State::Failed);
        assert!(report.is_balanced(), "{report}");
    }
}

#[test]
fn sync_work_runs_on_two_threads_at_once() {
    // Each of the first two items waits until both have started: that only
    // happens if two workers run them on two threads at the same time.
    let arrived = Arc::new(AtomicUsize::new(0));
    let met = Arc::new(AtomicUsize::new(0));
    let (a, m) = (Arc::clone(&arrived), Arc::clone(&met));
    let out: Vec<u32> = watchdog(move || {
        flowgate::from_iter(0..2u32)
            .par_map(2, move |x| {
                a.fetch_add(1, SeqCst);
                let start = Instant::now();
                while a.load(SeqCst) < 2 && start.elapsed() < Duration::from_secs(10) {
                    std::hint::spin_loop();
                }
                if a.load(SeqCst) >= 2 {
                    m.fetch_add(1, SeqCst);
                }
                x
            })
            .collect()
            .run_on_threads(2)
    })
    .unwrap();
    assert_eq!(out, [0, 1]);
    assert_eq!(
        met.load(SeqCst),
        2,
        "the two items never ran at the same time"
    );
}

#[test]
fn parallel_stages_work_when_awaited_with_nothing_spawned() {
    let out: Vec<u64> = watchdog(|| {
        futures_lite::future::block_on(async {
            flowgate::from_iter(0..500u64)
                .par_then(16, |x| async move {
                    delay((x % 5) as u8).await;
                    x * 3
                })
                .par_map_by_key(3, |x| x % 3, |x| x + 1)
                .collect::<Vec<_>>()
                .await
        })
    })
    .unwrap();
    let mut sorted = out.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..500).map(|x| x * 3 + 1).collect::<Vec<_>>());
}
