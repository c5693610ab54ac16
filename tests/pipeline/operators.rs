//! The operators: rate limits, the `Iterator` stages that end the input
//! early, fallible parallel stages and sinks, overflow policies, restart
//! after a panic, a shutdown with a deadline, and windows of time.
//!
//! Timing checks here are one-sided: a loaded machine only makes a run
//! slower, so each asserts what a slow run still keeps (no more items per
//! window than the rate allows, no longer than the deadline plus a wide
//! margin), never that something was fast.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{assert_accounted, assert_graph_accounted, watchdog};
use flowgate::{Backoff, Error, ItemError, OnError, Overflow, Rate, State};

/// The instants at which the items of a run reach the stage after the
/// throttle, kept by that stage.
fn arrivals(p: flowgate::Pipeline<u32>) -> Vec<Instant> {
    let seen = p.map(|_| Instant::now()).collect::<Vec<_>>();
    seen.run().unwrap()
}

/// The most arrivals in any window of `length` that starts at an arrival.
fn busiest(times: &[Instant], length: Duration) -> usize {
    let mut most = 0;
    let mut end = 0;
    for (start, &at) in times.iter().enumerate() {
        while end < times.len() && times[end] < at + length {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

#[test]
fn throttle_keeps_to_its_rate() {
    // 50 items per 20 ms, after a hop of 8: in any 20 ms at most the full
    // bucket, what it gains back in that time, and the hop's slack.
    let (n, per, items) = (50u64, Duration::from_millis(20), 600u32);
    let times = watchdog(move || {
        let start = Instant::now();
        let times = arrivals(flowgate::from_iter(0..items).throttle(n, per).capacity(8));
        (start, times)
    });
    let (start, times) = times;
    assert_eq!(times.len(), items as usize);
    let bound = 2 * n as usize + 16;
    let most = busiest(&times, per);
    assert!(
        most <= bound,
        "{most} items in one window of {per:?}, at most {bound}"
    );
    // The last item cannot pass before the bucket has refilled for all
    // but its first `n` items.
    let least = per.mul_f64((u64::from(items) - n) as f64 / n as f64);
    let took = times.last().unwrap().duration_since(start);
    assert!(
        took >= least.mul_f64(0.95),
        "{took:?} for {items} items at {n} per {per:?}"
    );
}

#[test]
fn a_slower_rate_takes_effect_within_one_window() {
    let per = Duration::from_millis(10);
    let rate = Rate::new(100_000, per);
    let setter = rate.clone();
    let changed = Arc::new(std::sync::OnceLock::new());
    let mark = Arc::clone(&changed);
    let times = watchdog(move || {
        arrivals(
            flowgate::from_iter(0..1_000u32)
                .inspect(move |&x| {
                    if x == 300 {
                        setter.set(20, per).unwrap();
                        let _ = mark.set(Instant::now());
                    }
                })
                .capacity(8)
                .throttle_with(&rate)
                .capacity(8),
        )
    });
    let changed = *changed.get().expect("the rate was changed");
    // One window of the old rate after the change, the new rate holds: a
    // full bucket of 20, 20 more gained in the window, and what was
    // already past the throttle (its chunk and the hop after it).
    let after: Vec<Instant> = times.into_iter().filter(|&t| t >= changed + per).collect();
    assert!(after.len() > 500, "{} items after the change", after.len());
    let most = busiest(&after, per);
    assert!(
        most <= 2 * 20 + 16,
        "{most} items in one window at 20 per {per:?}"
    );
}

#[test]
fn a_rate_of_nothing_is_an_error() {
    let err = flowgate::from_iter(0..3u32)
        .throttle(0, Duration::from_secs(1))
        .count()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::ZeroRate { items: 0, .. }), "{err}");
    let err = flowgate::from_iter(0..3u32)
        .throttle(5, Duration::ZERO)
        .count()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::ZeroRate { .. }), "{err}");
    let rate = Rate::new(5, Duration::from_secs(1));
    assert!(rate.set(5, Duration::ZERO).is_err());
    assert_eq!(rate.get(), (5, Duration::from_secs(1)));
}

#[test]
fn waiting_for_tokens_is_not_busy() {
    let job = flowgate::from_iter(0..40u32)
        .throttle(10, Duration::from_millis(10))
        .name("limit")
        .count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 40);
    let report = control.report();
    let limit = report.stage("limit").unwrap();
    // 30 items past the first bucket take 30 ms of tokens at least.
    assert!(limit.throttled >= Duration::from_millis(20), "{report}");
    assert!(limit.busy < limit.throttled, "{report}");
    assert!(report.to_string().contains("limit: throttled"), "{report}");
    assert_accounted(&report);
}

#[test]
fn take_ends_an_endless_source_with_exactly_n() {
    for n in [0usize, 1, 5, 1_000, 5_000] {
        let job = flowgate::from_iter(0u64..)
            .map(|x| x + 1)
            .capacity(64)
            .then(|x| async move { x })
            .take(n)
            .name("take")
            .collect::<Vec<_>>();
        let control = job.control();
        let out = watchdog(move || job.run()).unwrap();
        assert_eq!(out, (1..=n as u64).collect::<Vec<_>>());
        let report = control.report();
        assert_accounted(&report);
        // Every stage ends done; what the source took and no stage needed
        // is counted as dropped where it was.
        assert!(
            report.stages.iter().all(|s| s.state == State::Done),
            "{report}"
        );
        let taken = report.stages[0].received;
        assert_eq!(report.delivered() + report.dropped(), taken, "{report}");
        assert_eq!(report.delivered(), n as u64, "{report}");
    }
}

#[test]
fn take_stops_a_slow_stage_before_it_at_once() {
    // Draining the full hop before the slow stage would cost a call per
    // item in it, 1,024 and more. Closing it costs only the calls the stage
    // made before `take` had its items and ran.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let out: Vec<u64> = watchdog(move || {
        flowgate::from_iter(0u64..)
            .capacity(1_024)
            .then(move |x| {
                counted.fetch_add(1, Ordering::Relaxed);
                async move {
                    futures_lite::future::yield_now().await;
                    x
                }
            })
            .take(3)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, [0, 1, 2]);
    let calls = calls.load(Ordering::Relaxed);
    assert!(calls < 300, "{calls} calls for 3 items");
}

#[test]
fn items_take_did_not_need_are_told_dropped() {
    use flowgate::Outcome;
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&told);
    let source = flowgate::from_iter_acked((0..10_000u32).map(move |x| {
        let record = Arc::clone(&record);
        (x, move |outcome: Outcome| {
            record.lock().unwrap().push((x, outcome))
        })
    }));
    let control = source.control();
    let out: Vec<u32> = watchdog(move || source.map(|x| x).take(10).collect().run()).unwrap();
    assert_eq!(out, (0..10).collect::<Vec<_>>());
    let told = told.lock().unwrap();
    let report = control.report();
    assert_eq!(told.len() as u64, report.stages[0].received, "{report}");
    for (x, outcome) in told.iter() {
        let want = if *x < 10 {
            Outcome::Delivered
        } else {
            Outcome::Dropped
        };
        assert_eq!(outcome, &want, "item {x}");
    }
}

#[test]
fn take_while_and_scan_end_the_input_too() {
    let out: Vec<u64> = watchdog(|| {
        flowgate::from_iter(0u64..)
            .take_while(|x| *x < 10)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, (0..10).collect::<Vec<_>>());
    let out: Vec<u64> = watchdog(|| {
        flowgate::from_iter(1u64..)
            .scan(0u64, |sum, x| {
                *sum += x;
                (*sum < 100).then_some(*sum)
            })
            .collect()
            .run()
    })
    .unwrap();
    let want: Vec<u64> = (1u64..)
        .scan(0, |sum, x| {
            *sum += x;
            (*sum < 100).then_some(*sum)
        })
        .collect();
    assert_eq!(out, want);
}

#[test]
fn iterator_stages_match_their_iterators() {
    let input: Vec<u32> = (0..3_000).map(|x| (x * 7919) % 13).collect();
    let items = input.clone();
    let got: Vec<(usize, u32)> = watchdog(move || {
        flowgate::from_iter(items)
            .chunk_limit(7)
            .skip(5)
            .skip_while(|x| *x != 3)
            .dedup_by_key(|x| *x / 2)
            .enumerate()
            .collect()
            .run()
    })
    .unwrap();
    let mut last = None;
    let want: Vec<(usize, u32)> = input
        .into_iter()
        .skip(5)
        .skip_while(|x| *x != 3)
        .filter(|x| {
            let key = *x / 2;
            let keep = last != Some(key);
            last = Some(key);
            keep
        })
        .enumerate()
        .collect();
    assert_eq!(got, want);
}

/// A parse that fails on items divisible by 5, after a yield.
async fn parse_slowly(x: u32) -> Result<u32, std::io::Error> {
    futures_lite::future::yield_now().await;
    if x % 5 == 0 {
        Err(std::io::Error::other(format!("{x} is bad")))
    } else {
        Ok(x * 2)
    }
}

#[test]
fn fallible_parallel_stages_keep_every_policy() {
    let want: Vec<u32> = (0..500).filter(|x| x % 5 != 0).map(|x| x * 2).collect();
    // Skip, in order and by key.
    let job = flowgate::from_iter(0..500u32)
        .try_par_then(4, parse_slowly)
        .name("parse")
        .on_error(OnError::skip())
        .collect::<Vec<_>>();
    let control = job.control();
    assert_eq!(watchdog(move || job.run_on_threads(2)).unwrap(), want);
    let report = control.report();
    assert_eq!(report.stage("parse").unwrap().skipped, 100);
    assert_accounted(&report);

    let mut got: Vec<u32> = watchdog(|| {
        flowgate::from_iter(0..500u32)
            .try_par_map_by_key(
                3,
                |x| x % 7,
                |x| if x % 5 == 0 { Err("bad") } else { Ok(x * 2) },
            )
            .on_error(OnError::skip())
            .collect()
            .run()
    })
    .unwrap();
    got.sort_unstable();
    assert_eq!(got, want);

    // Retry: each failing item is tried twice, then dead-lettered.
    let (letters, letters_rx) = flowgate::async_channel::bounded(200);
    let job = flowgate::from_iter(0..500u32)
        .try_par_map_unordered(4, |x| if x % 5 == 0 { Err("bad") } else { Ok(x * 2) })
        .name("parse")
        .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_dead_letter(letters))
        .collect::<Vec<_>>();
    let control = job.control();
    let mut got = watchdog(move || job.run()).unwrap();
    got.sort_unstable();
    assert_eq!(got, want);
    let report = control.report();
    let parse = report.stage("parse").unwrap();
    assert_eq!((parse.retried, parse.dead_lettered), (100, 100), "{report}");
    assert_eq!(letters_rx.len(), 100);
    let letter = letters_rx.try_recv().unwrap();
    assert_eq!((letter.attempts, letter.item % 5), (2, 0));
    assert_accounted(&report);

    // Fail fast, the default: the run fails with the stage's error.
    let err = watchdog(|| {
        flowgate::from_iter(0..500u32)
            .try_par_then_unordered(4, parse_slowly)
            .name("parse")
            .count()
            .run()
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::Stage { stage, .. } if stage == "parse"),
        "{err}"
    );
}

#[test]
fn fallible_parallel_stages_time_out_per_attempt() {
    let job = flowgate::from_iter([1u64, 300, 2, 300, 3])
        .try_par_then_by_key(
            2,
            |ms| *ms,
            |ms| async move {
                smol::Timer::after(Duration::from_millis(ms)).await;
                Ok::<u64, std::io::Error>(ms)
            },
        )
        .timeout(Duration::from_millis(100))
        .name("slow")
        .on_error(OnError::skip())
        .collect::<Vec<_>>();
    let control = job.control();
    let mut out = watchdog(move || job.run()).unwrap();
    out.sort_unstable();
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(control.report().stage("slow").unwrap().skipped, 2);
    let err = watchdog(|| {
        flowgate::from_iter([300u64])
            .try_par_then(1, |ms| async move {
                smol::Timer::after(Duration::from_millis(ms)).await;
                Ok::<u64, std::io::Error>(ms)
            })
            .timeout(Duration::from_millis(10))
            .count()
            .run()
    })
    .unwrap_err();
    let Error::Stage { source, .. } = err else {
        panic!("{err}")
    };
    assert!(source.downcast_ref::<flowgate::TimedOut>().is_some());
    let zero = flowgate::from_iter([1u8]).try_par_map(0, Ok::<u8, std::io::Error>);
    assert!(matches!(zero.count().run(), Err(Error::ZeroWorkers { .. })));
}

#[test]
fn a_failing_sink_fails_the_run_and_counts_the_item() {
    let job = flowgate::from_iter(0..100u32)
        .try_for_each(|x| if x == 42 { Err("no 42") } else { Ok(()) })
        .name("write");
    let control = job.control();
    let err = watchdog(move || job.run()).unwrap_err();
    assert!(
        matches!(&err, Error::Stage { stage, .. } if stage == "write"),
        "{err}"
    );
    let report = control.report();
    let write = report.stage("write").unwrap();
    assert_eq!((write.emitted, write.failed), (42, 1), "{report}");
    assert!(report.is_balanced(), "{report}");
}

/// A run whose sink waits until the source's last item has passed the
/// stage before the hop under test, so that the hop overflows.
fn overflowing(policy: Overflow) -> (Vec<u32>, flowgate::Report) {
    watchdog(move || {
        let (done_tx, done_rx) = async_channel::bounded::<()>(1);
        let job = flowgate::from_iter(0..1_000u32)
            .inspect(move |&x| {
                if x == 999 {
                    let _ = done_tx.try_send(());
                }
            })
            .name("readings")
            .capacity(8)
            .chunk_limit(4)
            .overflow(policy)
            .then(move |x| {
                let done = done_rx.clone();
                async move {
                    if x == 0 || !done.is_empty() {
                        let _ = done.recv().await;
                    }
                    x
                }
            })
            .collect::<Vec<_>>();
        let control = job.control();
        let out = job.run().unwrap();
        (out, control.report())
    })
}

#[test]
fn drop_oldest_keeps_the_newest_and_counts_what_it_shed() {
    let (out, report) = overflowing(Overflow::DropOldest);
    assert_graph_accounted(&report);
    let readings = report.stage("readings").unwrap();
    assert_eq!(readings.emitted, 1_000, "{report}");
    assert!(readings.shed > 900, "{report}");
    assert_eq!(out.len() as u64 + readings.shed, 1_000, "{report}");
    assert_eq!(out.last(), Some(&999), "the newest is never shed");
    assert!(out.windows(2).all(|w| w[0] < w[1]), "order kept: {out:?}");
    assert!(report.to_string().contains("readings: shed"), "{report}");
}

#[test]
fn drop_newest_keeps_the_oldest_and_counts_what_it_shed() {
    let (out, report) = overflowing(Overflow::DropNewest);
    assert_graph_accounted(&report);
    let readings = report.stage("readings").unwrap();
    assert!(readings.shed > 900, "{report}");
    assert_eq!(out.len() as u64 + readings.shed, 1_000, "{report}");
    assert_eq!(out.first(), Some(&0), "the oldest is never shed");
    assert_eq!(report.shed(), readings.shed);
}

#[test]
fn waiting_is_the_default_and_sheds_nothing() {
    let job = flowgate::from_iter(0..1_000u32).capacity(2).count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 1_000);
    assert_eq!(control.report().shed(), 0);
}

/// A map that panics on every item divisible by 10, restarting up to
/// `limit` times.
fn fragile(limit: u32) -> (Result<Vec<u32>, Error>, flowgate::Report) {
    watchdog(move || {
        let job = flowgate::from_iter(0..100u32)
            .map(|x| {
                assert!(x % 10 != 9, "bad item {x}");
                x
            })
            .name("fragile")
            .restart_on_panic(limit, Backoff::fixed(Duration::from_micros(10)))
            .collect::<Vec<_>>();
        let control = job.control();
        let out = job.run();
        (out, control.report())
    })
}

#[test]
fn a_restarting_stage_survives_k_panics_and_fails_on_the_next() {
    let (out, report) = fragile(10);
    let out = out.unwrap();
    assert_eq!(out, (0..100).filter(|x| x % 10 != 9).collect::<Vec<_>>());
    let stage = report.stage("fragile").unwrap();
    assert_eq!((stage.restarts, stage.failed), (10, 10), "{report}");
    assert_accounted(&report);
    assert!(
        report.to_string().contains("fragile: restarted 10x"),
        "{report}"
    );

    let (out, report) = fragile(9);
    let err = out.unwrap_err();
    assert!(
        matches!(&err, Error::StagePanicked { stage, message } if stage == "fragile" && message == "bad item 99"),
        "{err}"
    );
    let stage = report.stage("fragile").unwrap();
    assert_eq!((stage.restarts, stage.failed), (10, 10), "{report}");
    assert!(report.is_balanced(), "{report}");
}

#[test]
fn a_panic_in_a_restarting_fallible_stage_goes_to_its_policy() {
    let tried_three = Arc::new(AtomicBool::new(false));
    let tried = Arc::clone(&tried_three);
    let (letters, letters_rx) = flowgate::async_channel::bounded(8);
    let job = flowgate::from_iter(0..20u32)
        .try_then(move |x| {
            let first_three = x == 3 && !tried.swap(true, Ordering::Relaxed);
            async move {
                assert!(x != 7, "seven");
                assert!(!first_three, "three, the first time");
                Ok::<u32, std::io::Error>(x)
            }
        })
        .name("shaky")
        .restart_on_panic(5, Backoff::fixed(Duration::ZERO))
        .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_dead_letter(letters))
        .collect::<Vec<_>>();
    let control = job.control();
    let out = watchdog(move || job.run()).unwrap();
    assert_eq!(out, (0..20).filter(|&x| x != 7).collect::<Vec<_>>());
    let letter = letters_rx.try_recv().unwrap();
    assert_eq!(letter.item, 7);
    assert!(matches!(&letter.error, ItemError::Panicked(p) if p.message == "seven"));
    let report = control.report();
    let shaky = report.stage("shaky").unwrap();
    // 3 panicked once and passed on its retry; 7 panicked twice.
    assert_eq!(
        (shaky.restarts, shaky.retried, shaky.dead_lettered),
        (3, 2, 1),
        "{report}"
    );
    assert_accounted(&report);
}

#[test]
fn only_stages_that_can_restart_may_be_set_to() {
    let err = flowgate::from_iter(0..3u32)
        .par_map(2, |x| x)
        .name("workers")
        .restart_on_panic(1, Backoff::fixed(Duration::ZERO))
        .count()
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, Error::CannotRestart { stage, kind: "par_map" } if stage == "workers"),
        "{err}"
    );
    let err = flowgate::from_iter(0..3u32)
        .map(|x| x)
        .restart_on_panic(1, Backoff::exponential(Duration::ZERO, 0.5))
        .count()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::BadBackoff { .. }), "{err}");
}

#[test]
fn shutdown_within_bounds_a_slow_drain() {
    // A full default hop of slow items would take seconds to drain.
    let limit = Duration::from_millis(200);
    let source = flowgate::from_iter(0u32..);
    let control = source.control();
    let job = source
        .then(|x| async move {
            smol::Timer::after(Duration::from_millis(5)).await;
            x
        })
        .count();
    let stop = control.clone();
    let asked = std::thread::spawn(move || {
        while stop
            .report()
            .stages
            .last()
            .is_none_or(|sink| sink.emitted < 10)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let asked = Instant::now();
        assert_eq!(stop.shutdown_within(limit).ok(), Some(true));
        asked
    });
    let err = watchdog(move || job.run()).unwrap_err();
    let ended = Instant::now();
    let asked = asked.join().unwrap();
    // Draining 1,024 items of 5 ms would take over 5 s.
    let took = ended.duration_since(asked);
    assert!(took < limit + Duration::from_secs(2), "took {took:?}");
    let Error::Cancelled { report } = err else {
        panic!("{err}")
    };
    let taken = report.stages[0].received;
    assert!(report.dropped() > 0, "{report}");
    assert_eq!(report.delivered() + report.dropped(), taken, "{report}");
    assert!(report.is_balanced(), "{report}");
    assert!(matches!(
        control.shutdown_within(Duration::ZERO),
        Err(Error::ZeroInterval)
    ));
}

#[test]
fn shutdown_within_lets_a_quick_drain_end_normally() {
    let source = flowgate::from_iter(0u32..);
    let control = source.control();
    let stop = control.clone();
    let n = watchdog(move || {
        source
            .inspect(move |&x| {
                if x == 500 {
                    stop.shutdown_within(Duration::from_secs(30)).unwrap();
                }
            })
            .count()
            .run()
    })
    .unwrap();
    assert!(n > 500);
    let report = control.report();
    assert_eq!(report.dropped(), 0, "{report}");
    assert_accounted(&report);
}

#[test]
fn windows_group_by_time_and_skip_empty_ones() {
    let bursts = futures_lite::stream::iter(0..9u32).then(|x| async move {
        if x % 3 == 0 && x > 0 {
            smol::Timer::after(Duration::from_millis(120)).await;
        }
        x
    });
    use futures_lite::StreamExt;
    let job = flowgate::from_stream(bursts)
        .windows(Duration::from_millis(40))
        .collect::<Vec<Vec<u32>>>();
    let control = job.control();
    let windows = watchdog(move || job.run()).unwrap();
    assert_eq!(windows.concat(), (0..9).collect::<Vec<_>>());
    // Bursts 120 ms apart never share a window of 40 ms; and no window is
    // empty, though several passed with nothing in them.
    assert!(windows.len() >= 3, "{windows:?}");
    for w in &windows {
        assert!(!w.is_empty());
        assert!(w.iter().all(|x| x / 3 == w[0] / 3), "{windows:?}");
    }
    assert!(control.report().is_balanced());
    let err = flowgate::from_iter([1u8])
        .windows(Duration::ZERO)
        .name("w")
        .count()
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, Error::ZeroWindowLength { stage } if stage == "w"),
        "{err}"
    );
}
