//! A panic anywhere becomes an error naming the stage. It never hangs the
//! pipeline and never passes for a complete run.

use crate::support;

use std::future::IntoFuture;

use crate::support::watchdog;
use flowgate::Error;
use futures_lite::{StreamExt, stream};

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
        let result = support::watchdog_for(Duration::from_secs(2), move || job.run());
        let names = ["src", "one", "two", "three", "sink"];
        assert_panicked(result, names[at as usize], &format!("boom at {at}"));
        let report = control.report();
        assert_eq!(report.state, State::Failed);
        assert!(
            report.stages.iter().all(|s| s.state.is_finished()),
            "{report}"
        );
        assert_eq!(report.stages[at as usize].state, State::Failed, "{report}");
        support::assert_accounted(&report);
    }
}

#[test]
fn a_panicking_consumer_is_reported_to_the_sender() {
    let (first, second) = support::watchdog_for(std::time::Duration::from_secs(2), move || {
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

/// An item whose `Drop` panics when its value is the armed one.
#[derive(Debug, Clone)]
struct Bomb {
    value: u64,
    armed: u64,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.value == self.armed && !std::thread::panicking() {
            panic!("dropped {}", self.value)
        }
    }
}

fn bombs(n: u64, armed: u64) -> impl Iterator<Item = Bomb> + Send {
    (0..n).map(move |value| Bomb { value, armed })
}

/// A panic in an item's `Drop`, wherever a stage drops the item, fails the
/// run naming that stage, within 2 s.
#[test]
fn a_panic_in_an_items_drop_names_the_stage_that_dropped_it() {
    use std::time::Duration;

    let limit = Duration::from_secs(2);
    let filtered = support::watchdog_for(limit, || {
        flowgate::from_iter(bombs(10_000, 777))
            .filter(|b| b.value % 7 != 0)
            .name("sieve")
            .count()
            .run()
    });
    assert_panicked(filtered, "sieve", "dropped 777");
    let replaced = support::watchdog_for(limit, || {
        flowgate::from_iter(bombs(10_000, 500))
            .map(|b| b.value)
            .name("unwrap")
            .count()
            .run_on_threads(2)
    });
    assert_panicked(replaced, "unwrap", "dropped 500");
    let emptied = support::watchdog_for(limit, || {
        flowgate::from_iter(bombs(10_000, 42))
            .flat_map(|b| if b.value == 42 { vec![] } else { vec![b] })
            .name("spill")
            .count()
            .run()
    });
    assert_panicked(emptied, "spill", "dropped 42");
    let sunk = support::watchdog_for(limit, || {
        flowgate::from_iter(bombs(10_000, 9_000))
            .for_each(drop)
            .name("sink")
            .run()
    });
    assert_panicked(sunk, "sink", "dropped 9000");
    let worked = support::watchdog_for(limit, || {
        flowgate::from_iter(bombs(10_000, 1_234))
            .par_map(3, |b| b.value)
            .name("workers")
            .count()
            .run_on_threads(2)
    });
    assert_panicked(worked, "workers", "dropped 1234");
}

/// Items still in the pipeline when it is cancelled are dropped by the
/// stages as they stop. A panic there is reported too, naming a stage, and
/// does not escape the runner as a panic.
#[test]
fn a_panic_in_drop_while_the_pipeline_is_cancelled_is_an_error() {
    use std::time::Duration;

    type Runner = fn(flowgate::Job<()>) -> Result<(), Error>;
    let runners: [(&str, Runner); 4] = [
        ("run", |job| job.run()),
        ("threads", |job| job.run_on_threads(2)),
        ("future", |job| {
            futures_lite::future::block_on(job.into_future())
        }),
        ("spawn", |job| {
            let ex = smol::Executor::new();
            futures_lite::future::block_on(ex.run(job.spawn(&ex)))
        }),
    ];
    // Item 0 is in the gated sink's hands when the cancel comes; item 5 is
    // in a hop or in the sink's input buffer.
    for ((name, runner), armed) in runners.into_iter().flat_map(|r| [(r, 0), (r, 5)]) {
        let (gate_tx, gate) = async_channel::bounded::<()>(1);
        let job = flowgate::from_iter(bombs(1_000, armed))
            .map(|b| b)
            .name("carry")
            .for_each_async(move |b| {
                let gate = gate.clone();
                async move {
                    let _ = gate.recv().await;
                    drop(b);
                }
            })
            .name("sink");
        let control = job.control();
        let result = support::watchdog_for(Duration::from_secs(2), move || {
            let stopper = std::thread::spawn(move || {
                // Cancel once the sink holds the first item.
                while control.report().stage("sink").map_or(0, |s| s.in_hand) == 0 {
                    std::thread::yield_now();
                }
                control.cancel();
                control
            });
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(job)));
            drop(gate_tx);
            (result, stopper.join().unwrap())
        });
        let (result, control) = result;
        let result = result.unwrap_or_else(|_| panic!("{name}: the panic escaped the runner"));
        match &result {
            Err(Error::StagePanicked { stage, message }) => {
                assert_eq!(message, &format!("dropped {armed}"), "{name}");
                if armed == 0 {
                    assert_eq!(stage, "sink", "{name}");
                } else {
                    // Whichever of the hop's two ends lets go of it last.
                    assert!(stage == "sink" || stage == "carry", "{name}: {stage}");
                }
            }
            other => panic!("{name}: expected the drop's panic, got {other:?}"),
        }
        let report = control.report();
        assert!(
            report.stages.iter().all(|s| s.state.is_finished()),
            "{name}: {report}"
        );
        support::assert_accounted(&report);
    }
}

/// After a panic anywhere (source, stage, parallel worker, branch, sink),
/// the run's tasks have all ended and every stage's closure is gone: no
/// task is left behind on the app's executor.
#[test]
fn no_task_is_left_behind_after_a_panic() {
    use std::sync::Arc;
    use std::time::Duration;

    let boom = |at: u32, here: u32, x: u64| {
        if at == here && x == 2_000 {
            panic!("boom at {here}")
        }
    };
    let names = ["src", "one", "workers", "branch", "sink"];
    for at in 0..5u32 {
        let token = Arc::new(());
        let held = [0; 5].map(|_| Arc::clone(&token));
        let [t0, t1, t2, t3, t4] = held;
        let job = flowgate::from_iter((0..100_000u64).inspect(move |x| {
            let _ = &t0;
            boom(at, 0, *x)
        }))
        .name("src")
        .map(move |x| {
            let _ = &t1;
            boom(at, 1, x);
            x
        })
        .name("one")
        .par_map(3, move |x| {
            let _ = &t2;
            boom(at, 2, x);
            x
        })
        .name("workers")
        .broadcast(2, move |i, branch| {
            let t3 = Arc::clone(&t3);
            branch
                .map(move |x| {
                    let _ = &t3;
                    if i == 1 {
                        boom(at, 3, x);
                    }
                    x
                })
                .name(if i == 1 { "branch" } else { "other" })
        })
        .for_each(move |x| {
            let _ = &t4;
            boom(at, 4, x)
        })
        .name("sink");
        let left = support::watchdog_for(Duration::from_secs(2), move || {
            let ex = smol::LocalExecutor::new();
            let handle = job.spawn_local(&ex);
            let result = futures_lite::future::block_on(ex.run(handle));
            support::settle(&ex);
            (result, ex.is_empty())
        });
        let (result, empty) = left;
        assert_panicked(result, names[at as usize], &format!("boom at {at}"));
        assert!(
            empty,
            "panic at {}: a task is left on the executor",
            names[at as usize]
        );
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "panic at {}: a stage's closure is still alive",
            names[at as usize]
        );
    }
}

/// A consumer whose handler panics, or drops an item whose `Drop` panics,
/// fails that send, gives every later item back, and ends its task.
#[test]
fn a_consumer_that_panics_in_an_items_drop_gives_later_items_back() {
    let (first, second, third, ended) =
        support::watchdog_for(std::time::Duration::from_secs(2), move || {
            let ex = smol::LocalExecutor::new();
            let (mut p, consumer) = flowgate::Consumer::new((), |_: &mut (), b: Bomb| b.value)
                .name("eater")
                .spawn_local(&ex);
            futures_lite::future::block_on(ex.run(async {
                let first = p.send(Bomb { value: 1, armed: 2 }).await;
                let second = p.send(Bomb { value: 2, armed: 2 }).await;
                let third = p.send(Bomb { value: 3, armed: 2 }).await;
                drop(p);
                let ended = consumer.await;
                (first, second, third, ended)
            }))
        });
    assert_eq!(first.unwrap(), 1);
    assert!(
        matches!(&second, Err(flowgate::SendError::Panicked { stage, message })
            if stage == "eater" && message == "dropped 2"),
        "{second:?}"
    );
    match third {
        Err(flowgate::SendError::Closed(back)) => assert_eq!(back.value, 3),
        other => panic!("the third item should come back, got {other:?}"),
    }
    assert!(
        matches!(&ended, Err(Error::StagePanicked { stage, .. }) if stage == "eater"),
        "{ended:?}"
    );
}

/// A pipeline whose sink holds item 0 (armed: its `Drop` panics) behind a
/// gate that never opens; ready to be dropped with that item in hand.
fn stuck_on_a_bomb() -> (
    flowgate::Job<()>,
    flowgate::Control,
    async_channel::Sender<()>,
) {
    let (gate_tx, gate) = async_channel::bounded::<()>(1);
    let job = flowgate::from_iter(bombs(100, 0))
        .map(|b| b)
        .for_each_async(move |b| {
            let gate = gate.clone();
            async move {
                let _ = gate.recv().await;
                drop(b);
            }
        })
        .name("sink");
    let control = job.control();
    (job, control, gate_tx)
}

/// Whether the sink holds an item.
fn sink_holds_one(control: &flowgate::Control) -> bool {
    control.report().stage("sink").map_or(0, |s| s.in_hand) > 0
}

/// Dropping a run's future while an item whose `Drop` panics is in flight
/// ends the run as a cancel does: nothing is raised in the caller's `drop`,
/// and the report accounts for every item.
#[test]
fn dropping_a_job_future_with_a_panicking_item_in_flight_is_accounted() {
    let (job, control, _gate) = stuck_on_a_bomb();
    let control_after = control.clone();
    let dropped = watchdog(move || {
        let mut fut = Box::pin(job.into_future());
        while !sink_holds_one(&control) {
            let _ = futures_lite::future::block_on(futures_lite::future::poll_once(&mut fut));
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(fut)))
    });
    assert_dropped_quietly(dropped, &control_after);
}

/// The same for an output stream dropped early.
#[test]
fn dropping_a_stream_with_a_panicking_item_in_flight_is_accounted() {
    let (gate_tx, gate) = async_channel::bounded::<()>(1);
    let pipeline = flowgate::from_iter(bombs(100, 0))
        .then(move |b| {
            let gate = gate.clone();
            async move {
                // The whole item is held across the wait (a plain `b.value`
                // would capture only the field).
                let held = b;
                let _ = gate.recv().await;
                held.value
            }
        })
        .name("held");
    let control = pipeline.control();
    let control_after = control.clone();
    let dropped = watchdog(move || {
        let mut stream = pipeline.into_stream();
        while control.report().stage("held").map_or(0, |s| s.in_hand) == 0 {
            let _ = futures_lite::future::block_on(futures_lite::future::poll_once(stream.next()));
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(stream)))
    });
    drop(gate_tx);
    assert_dropped_quietly(dropped, &control_after);
}

/// Dropping a spawned run's handle while an item whose `Drop` panics is in
/// flight used to abort the whole process. It runs in a child process of
/// its own (this test binary, running only the test below), so that an
/// abort fails this test instead of ending the test run.
#[test]
fn dropping_a_job_handle_with_a_panicking_item_in_flight_does_not_abort() {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let output = watchdog(move || {
        std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "panics::drop_a_job_handle_with_a_panicking_item_in_flight",
            ])
            .output()
            .expect("the test binary runs")
    });
    assert!(
        output.status.success(),
        "expected the child to end normally, but it ended with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed"),
        "expected the child test to run:\n{stdout}"
    );
}

/// The child of the test above.
#[test]
#[ignore = "run by dropping_a_job_handle_with_a_panicking_item_in_flight_does_not_abort"]
fn drop_a_job_handle_with_a_panicking_item_in_flight() {
    let (job, control, _gate) = stuck_on_a_bomb();
    let ex = smol::LocalExecutor::new();
    let handle = job.spawn_local(&ex);
    while !sink_holds_one(&control) {
        ex.try_tick();
    }
    drop(handle);
    support::settle(&ex);
    assert_ended_and_accounted(&control);
}

/// Checks that a drop raised nothing in the caller, and that the run then
/// ended with every item accounted for.
fn assert_dropped_quietly(dropped: std::thread::Result<()>, control: &flowgate::Control) {
    assert!(
        dropped.is_ok(),
        "expected the drop to end quietly, but it panicked"
    );
    assert_ended_and_accounted(control);
}

/// Checks that the run has ended with every item accounted for.
fn assert_ended_and_accounted(control: &flowgate::Control) {
    let report = control.report();
    assert!(report.state.is_finished(), "{report}");
    support::assert_accounted(&report);
}
