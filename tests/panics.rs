//! A panic anywhere becomes an error naming the stage. It never hangs the
//! pipeline and never passes for a complete run.

mod common;

use std::future::IntoFuture;

use common::watchdog;
use flowgate::Error;
use futures_lite::{stream, StreamExt};

fn assert_panicked(result: Result<impl std::fmt::Debug, Error>, stage: &str, message: &str) {
    match result {
        Err(Error::StagePanicked {
            stage: s,
            message: m,
        }) => {
            assert_eq!((s.as_str(), m.as_str()), (stage, message));
        }
        other => panic!("expected a panic in `{stage}`, got {other:?}"),
    }
}

#[test]
fn a_panicking_stage_fails_the_run() {
    let result = watchdog(|| {
        flowgate::from_iter(0..100_000u32)
            .map(|x| x + 1)
            .map(|x| {
                if x == 5_000 {
                    panic!("bad item {x}")
                } else {
                    x
                }
            })
            .collect::<Vec<_>>()
            .run()
    });
    assert_panicked(result, "map#2", "bad item 5000");
}

#[test]
fn a_panic_in_the_source_or_the_sink_fails_the_run() {
    let source = watchdog(|| {
        flowgate::from_iter((0..10u32).map(|x| if x == 3 { panic!("source broke") } else { x }))
            .count()
            .run()
    });
    assert_panicked(source, "source", "source broke");
    let sink = watchdog(|| {
        flowgate::from_iter(0..10u32)
            .for_each(|x| assert!(x < 4, "sink broke"))
            .run()
    });
    assert_panicked(sink, "for_each#1", "sink broke");
}

#[test]
fn a_panic_downstream_of_an_endless_source_does_not_hang() {
    let result = watchdog(|| {
        flowgate::from_iter(0u64..)
            .map(|x| if x == 10_000 { panic!("stop") } else { x })
            .count()
            .run()
    });
    assert_panicked(result, "map#1", "stop");
}

#[test]
fn a_panic_beside_a_source_that_never_ends_does_not_hang() {
    // The source waits forever for its next item and will never notice that
    // the hop after it closed; the other stages must be cancelled.
    let result = watchdog(|| {
        flowgate::from_stream(stream::once(1u8).chain(stream::pending()))
            .map(|_| -> u8 { panic!("first item") })
            .count()
            .run()
    });
    assert_panicked(result, "map#1", "first item");
}

#[test]
fn every_runner_reports_the_panic() {
    let job = || {
        flowgate::from_iter(0..1000u32)
            .map(|x| if x == 500 { panic!("half") } else { x })
            .name("halfway")
            .count()
    };
    assert_panicked(watchdog(move || job().run()), "halfway", "half");
    assert_panicked(watchdog(move || job().run_on_threads(2)), "halfway", "half");
    assert_panicked(
        watchdog(move || futures_lite::future::block_on(job().into_future())),
        "halfway",
        "half",
    );
    assert_panicked(
        watchdog(move || {
            let ex = smol::Executor::new();
            futures_lite::future::block_on(ex.run(job().spawn(&ex)))
        }),
        "halfway",
        "half",
    );
}

#[test]
fn the_output_stream_ends_with_the_error() {
    let all: Vec<Result<u32, Error>> = watchdog(|| {
        futures_lite::future::block_on(
            flowgate::from_iter(0..1000u32)
                .map(|x| if x == 500 { panic!("half") } else { x })
                .into_stream()
                .collect(),
        )
    });
    let (last, items) = all.split_last().expect("at least the error");
    assert!(matches!(last, Err(Error::StagePanicked { .. })), "{last:?}");
    // What came before the error is a prefix of the input, in order.
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.as_ref().unwrap(), &(i as u32));
    }
    assert!(items.len() < 500);
}

/// A panic at `at` (0 = source, 1..=3 = a stage, 4 = the sink) fails the run
/// within 2 s, names the stage, and leaves no stage running.
#[test]
fn a_panic_at_any_position_names_the_stage_and_stops_every_stage() {
    use flowgate::State;
    use std::time::Duration;

    let boom = |at: u32, here: u32, x: u64| {
        if at == here && x == 3_000 {
            panic!("boom at {here}")
        }
    };
    for at in 0..=4u32 {
        let source = flowgate::from_iter((0..1_000_000u64).inspect(move |x| boom(at, 0, *x)));
        let control = source.control();
        let job = source
            .name("src")
            .map(move |x| {
                boom(at, 1, x);
                x
            })
            .name("one")
            .then(move |x| async move {
                boom(at, 2, x);
                x
            })
            .name("two")
            .filter(move |x| {
                boom(at, 3, *x);
                true
            })
            .name("three")
            .for_each(move |x| boom(at, 4, x))
            .name("sink");
        let result = common::watchdog_for(Duration::from_secs(2), move || job.run());
        let names = ["src", "one", "two", "three", "sink"];
        assert_panicked(result, names[at as usize], &format!("boom at {at}"));
        let report = control.report();
        assert_eq!(report.state, State::Failed);
        assert!(
            report.stages.iter().all(|s| s.state.is_finished()),
            "{report}"
        );
        assert_eq!(report.stages[at as usize].state, State::Failed, "{report}");
        common::assert_accounted(&report);
    }
}

#[test]
fn a_panicking_consumer_is_reported_to_the_sender() {
    let (first, second) = common::watchdog_for(std::time::Duration::from_secs(2), move || {
        let ex = smol::LocalExecutor::new();
        let (mut p, consumer) = flowgate::Consumer::new((), |_: &mut (), x: u8| {
            if x == 2 {
                panic!("no twos")
            }
            x
        })
        .name("picky")
        .spawn_local(&ex);
        futures_lite::future::block_on(ex.run(async {
            let first = p.send(1).await;
            let second = p.send(2).await;
            drop(p);
            let _ = consumer.await;
            (first, second)
        }))
    });
    assert_eq!(first.unwrap(), 1);
    let err = second.unwrap_err();
    assert!(
        matches!(&err, flowgate::SendError::Panicked { stage, .. } if stage == "picky"),
        "{err}"
    );
}
