//! Error policies and item timeouts, each with exact counts in the report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::support::{assert_accounted, watchdog};
use flowgate::{Backoff, Error, OnError, State, TimedOut};

#[derive(Debug, PartialEq)]
struct Bad(u32);
impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad item {}", self.0)
    }
}
impl std::error::Error for Bad {}

/// Fails every item that is a multiple of 5.
fn check(x: u32) -> Result<u32, Bad> {
    if x % 5 == 0 { Err(Bad(x)) } else { Ok(x) }
}

#[test]
fn fail_fast_is_the_default_and_keeps_the_source_error() {
    let job = flowgate::from_iter(1..=100u32)
        .try_map(check)
        .name("check")
        .count();
    let control = job.control();
    let err = watchdog(|| job.run()).unwrap_err();
    let Error::Stage { stage, source } = &err else {
        panic!("{err}")
    };
    assert_eq!(stage, "check");
    assert_eq!(source.downcast_ref::<Bad>(), Some(&Bad(5)));
    assert_eq!(err.to_string(), "stage `check` failed");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "bad item 5"
    );
    let report = control.report();
    assert_eq!(report.state, State::Failed);
    assert_eq!(report.stage("check").unwrap().state, State::Failed);
    assert_eq!(report.stage("check").unwrap().failed, 1);
    assert_accounted(&report);
}

#[test]
fn skip_counts_every_failed_item() {
    let job = flowgate::from_iter(1..=100u32)
        .try_map(check)
        .name("check")
        .on_error(OnError::skip())
        .collect::<Vec<_>>();
    let control = job.control();
    let out = watchdog(|| job.run()).unwrap();
    assert_eq!(out, (1..=100).filter(|x| x % 5 != 0).collect::<Vec<_>>());
    let report = control.report();
    let check = report.stage("check").unwrap();
    assert_eq!(
        (check.received, check.emitted, check.skipped),
        (100, 80, 20)
    );
    assert_eq!(
        (check.failed, check.retried, check.dead_lettered),
        (0, 0, 0)
    );
    assert_accounted(&report);
}

#[test]
fn retry_succeeds_when_a_later_attempt_works() {
    // Every item fails on its first two attempts, then works.
    let tries = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&tries);
    let job = flowgate::from_iter(0..10u32)
        .try_then(move |x| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { if n % 3 < 2 { Err(Bad(x)) } else { Ok(x) } }
        })
        .name("flaky")
        .on_error(OnError::retry(
            3,
            Backoff::exponential(Duration::from_micros(50), 2.0),
        ))
        .collect::<Vec<_>>();
    let control = job.control();
    assert_eq!(watchdog(|| job.run()).unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(tries.load(Ordering::SeqCst), 30);
    let flaky = control.report().stage("flaky").cloned().unwrap();
    assert_eq!((flaky.emitted, flaky.retried, flaky.failed), (10, 20, 0));
    assert_accounted(&control.report());
}

#[test]
fn retry_fails_the_item_when_the_last_attempt_fails() {
    let job = flowgate::from_iter(1..=10u32)
        .try_map(check)
        .name("check")
        .on_error(OnError::retry(4, Backoff::fixed(Duration::ZERO)))
        .count();
    let control = job.control();
    let err = watchdog(|| job.run()).unwrap_err();
    assert!(matches!(err, Error::Stage { .. }), "{err}");
    let check = control.report().stage("check").cloned().unwrap();
    assert_eq!((check.emitted, check.retried, check.failed), (4, 3, 1));
    assert_accounted(&control.report());
}

#[test]
fn retry_then_skip_and_dead_letter_alone() {
    let job = flowgate::from_iter(1..=20u32)
        .try_map(check)
        .name("check")
        .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_skip())
        .count();
    let control = job.control();
    assert_eq!(watchdog(|| job.run()).unwrap(), 16);
    let check = control.report().stage("check").cloned().unwrap();
    assert_eq!((check.skipped, check.retried, check.failed), (4, 4, 0));

    let (tx, rx) = async_channel::bounded(64);
    let job = flowgate::from_iter(1..=20u32)
        .try_map(self::check) // `check` above is a report; this is the function
        .name("check")
        .on_error(OnError::dead_letter(tx))
        .count();
    let control = job.control();
    assert_eq!(watchdog(|| job.run()).unwrap(), 16);
    let letters: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let items: Vec<u32> = letters.iter().map(|l| l.item).collect();
    assert_eq!(items, [5, 10, 15, 20]);
    assert!(
        letters
            .iter()
            .all(|l| l.stage == "check" && l.attempts == 1)
    );
    assert!(matches!(
        letters[0].error,
        flowgate::ItemError::Failed(Bad(5))
    ));
    let check = control.report().stage("check").cloned().unwrap();
    assert_eq!(
        (check.dead_lettered, check.failed, check.emitted),
        (4, 0, 16)
    );
    assert_accounted(&control.report());
}

#[test]
fn a_dead_letter_output_without_a_reader_fails_the_run() {
    let (tx, rx) = async_channel::bounded(4);
    drop(rx);
    let err = watchdog(|| {
        flowgate::from_iter(1..=20u32)
            .try_map(check)
            .on_error(OnError::dead_letter(tx))
            .count()
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Stage { .. }), "{err}");
}

#[test]
fn an_item_timeout_goes_to_the_policy() {
    let job = flowgate::from_iter([1u64, 200, 2, 300, 3])
        .try_then(|ms| async move {
            smol::Timer::after(Duration::from_millis(ms)).await;
            Ok::<u64, Bad>(ms)
        })
        .name("slow")
        .timeout(Duration::from_millis(50))
        .on_error(OnError::skip())
        .collect::<Vec<_>>();
    let control = job.control();
    assert_eq!(watchdog(|| job.run()).unwrap(), [1, 2, 3]);
    let slow = control.report().stage("slow").cloned().unwrap();
    assert_eq!((slow.skipped, slow.emitted), (2, 3));
    assert!(
        slow.wall_time < Duration::from_millis(250),
        "timed-out items were waited out"
    );
}

#[test]
fn a_zero_timeout_lets_ready_work_through_and_times_out_the_rest() {
    let (tx, rx) = async_channel::bounded(8);
    let out: Vec<u64> = watchdog(|| {
        flowgate::from_iter(0..6u64)
            .try_then(|x| async move {
                if x % 2 == 1 {
                    futures_lite::future::yield_now().await;
                }
                Ok::<u64, Bad>(x)
            })
            .timeout(Duration::ZERO)
            .on_error(OnError::dead_letter(tx))
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, [0, 2, 4]);
    let timed_out: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(
        timed_out.iter().map(|l| l.item).collect::<Vec<_>>(),
        [1, 3, 5]
    );
    assert!(timed_out.iter().all(|l| l.error
        == flowgate::ItemError::TimedOut(TimedOut {
            after: Duration::ZERO
        })));
}

#[test]
fn a_huge_timeout_never_fires() {
    let out: Vec<u8> = watchdog(|| {
        flowgate::from_iter(0..3u8)
            .try_then(|x| async move {
                smol::Timer::after(Duration::from_millis(1)).await;
                Ok::<u8, Bad>(x)
            })
            .timeout(Duration::MAX)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, [0, 1, 2]);
}

#[test]
fn bad_policies_are_typed_errors() {
    let err = flowgate::from_iter(0..3u32)
        .try_map(check)
        .name("c")
        .on_error(OnError::retry(0, Backoff::fixed(Duration::ZERO)))
        .count()
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, Error::ZeroAttempts { stage } if stage == "c"),
        "{err}"
    );
    for factor in [0.5, -1.0, f64::NAN, f64::INFINITY] {
        let err = flowgate::from_iter(0..3u32)
            .try_map(check)
            .on_error(OnError::retry(
                3,
                Backoff::exponential(Duration::from_millis(1), factor),
            ))
            .count()
            .run()
            .unwrap_err();
        assert!(matches!(err, Error::BadBackoff { .. }), "{err}");
    }
    // A backoff that would overflow is capped, never a panic.
    let huge = Backoff::exponential(Duration::MAX, 1e300);
    assert_eq!(huge.delay(u32::MAX), Duration::MAX);
}
