//! States, shutdown, cancel, dropped handles and deadlines, each checked
//! against the report's account of every item.

use std::sync::mpsc;
use std::time::Duration;

use crate::support::{assert_accounted, settle, watchdog};
use flowgate::{Error, State};

#[test]
fn states_go_from_pending_to_running_to_done_as_seen_from_another_thread() {
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = async_channel::bounded::<()>(1);
    let job = flowgate::from_iter(0..10u32)
        .then(move |x| {
            let (started, gate) = (started_tx.clone(), gate_rx.clone());
            async move {
                if x == 0 {
                    let _ = started.send(());
                    let _ = gate.recv().await;
                }
                x
            }
        })
        .name("gated")
        .count();
    let control = job.control();
    assert_eq!(control.state(), State::Pending);
    let runner = std::thread::spawn(move || job.run_on_threads(2));
    watchdog(move || started_rx.recv().unwrap());
    assert_eq!(control.state(), State::Running);
    let gated = control.report();
    assert_eq!(gated.stage("gated").unwrap().state, State::Running);
    // It holds the chunk that item 0 came in.
    assert!(gated.stage("gated").unwrap().in_hand >= 1, "{gated}");
    gate_tx.close();
    assert_eq!(watchdog(move || runner.join().unwrap()).unwrap(), 10);
    assert_eq!(control.state(), State::Done);
    let report = control.report();
    assert!(
        report.stages.iter().all(|s| s.state == State::Done),
        "{report}"
    );
    assert_accounted(&report);
    assert_eq!(report.delivered(), 10);
}

#[test]
fn a_handle_reports_live_stage_states() {
    let ex = smol::LocalExecutor::new();
    let (tx, rx) = async_channel::bounded::<u32>(4);
    let handle = flowgate::from_stream(rx)
        .map(|x| x * 2)
        .count()
        .spawn_local(&ex);
    assert_eq!(handle.state(), State::Pending);
    settle(&ex);
    assert_eq!(handle.state(), State::Running);
    let live = handle.report();
    assert_eq!(live.stages.len(), 3);
    assert!(
        live.stages.iter().all(|s| s.state == State::Running),
        "{live}"
    );
    futures_lite::future::block_on(async {
        for x in 0..3 {
            tx.send(x).await.unwrap();
        }
    });
    drop(tx);
    let control = handle.control();
    assert_eq!(futures_lite::future::block_on(ex.run(handle)).unwrap(), 3);
    assert_eq!(control.state(), State::Done);
}

#[test]
fn cancel_stops_a_stage_that_waits_forever_and_reports_what_it_dropped() {
    let (started_tx, started_rx) = mpsc::channel();
    let job = flowgate::from_iter(0u64..)
        .then(move |x| {
            let started = started_tx.clone();
            async move {
                if x == 100 {
                    let _ = started.send(());
                    std::future::pending::<()>().await;
                }
                x
            }
        })
        .name("stuck")
        .count();
    let control = job.control();
    let runner = std::thread::spawn(move || job.run());
    watchdog(move || started_rx.recv().unwrap());
    assert!(control.cancel());
    assert!(!control.cancel(), "a second cancel is a no-op");
    let err = watchdog(move || runner.join().unwrap()).unwrap_err();
    let Error::Cancelled { report } = err else {
        panic!("expected a cancel, got {err}")
    };
    assert_eq!(report.state, State::Cancelled);
    assert_accounted(&report);
    let stuck = report.stage("stuck").unwrap();
    assert_eq!(stuck.state, State::Cancelled);
    assert!(stuck.dropped >= 1, "the item it held is dropped\n{report}");
    // What the stuck stage handed on before it stuck was either consumed by
    // the sink or still in its hop when the cancel came, and so dropped
    // there: which, depends on whether the sink ran before the cancel.
    let sink = report.stages.last().unwrap();
    assert_eq!(
        report.delivered() + sink.dropped,
        stuck.emitted,
        "expected every item the stuck stage handed on to be consumed or dropped by the sink\n{report}"
    );
    assert_eq!(control.state(), State::Cancelled);
}

#[test]
fn shutdown_drains_every_item_in_flight() {
    let source = flowgate::from_iter(0u64..);
    let control = source.control();
    let stop = control.clone();
    let total = watchdog(move || {
        source
            .map(|x| x + 1)
            .capacity(64)
            .filter(|x| x % 3 != 0)
            .fold(0u64, move |n, _| {
                if n == 5_000 {
                    stop.shutdown();
                }
                n + 1
            })
            .run()
    })
    .unwrap();
    let report = control.report();
    assert_eq!(report.state, State::Done);
    assert_accounted(&report);
    assert_eq!(report.dropped(), 0);
    assert_eq!(report.delivered(), total);
    let source = &report.stages[0];
    assert_eq!(source.received - report.stages[2].filtered, total);
}

#[test]
fn dropping_a_handle_cancels_the_pipeline() {
    let ex = smol::LocalExecutor::new();
    let handle = flowgate::from_iter(0u64..)
        .map(|x| x + 1)
        .count()
        .spawn_local(&ex);
    let control = handle.control();
    for _ in 0..50 {
        ex.try_tick();
    }
    assert_eq!(control.state(), State::Running);
    drop(handle);
    settle(&ex);
    assert_eq!(control.state(), State::Cancelled);
    let report = control.report();
    assert!(
        report.stages.iter().all(|s| s.state == State::Cancelled),
        "{report}"
    );
    assert!(report.stages.iter().all(|s| s.is_balanced()), "{report}");
}

#[test]
fn a_handle_or_future_dropped_before_its_first_poll_reports_cancelled() {
    // Found by the fuzz target: a handle dropped before the executor ever
    // ticked left every stage, and the pipeline, `Pending` for good.
    let ex = smol::LocalExecutor::new();
    let handle = flowgate::from_iter(0..10u64)
        .map(|x| x + 1)
        .count()
        .spawn_local(&ex);
    let control = handle.control();
    drop(handle);
    settle(&ex);
    let job = flowgate::from_iter(0..10u64).count();
    let unpolled = job.control();
    drop(std::future::IntoFuture::into_future(job));
    for control in [control, unpolled] {
        assert_eq!(control.state(), State::Cancelled);
        let report = control.report();
        assert!(
            report.stages.iter().all(|s| s.state == State::Cancelled),
            "{report}"
        );
        assert!(report.is_balanced(), "{report}");
    }
}

#[test]
fn a_deadline_cancels_an_endless_run_and_returns_the_partial_report() {
    let err = watchdog(|| {
        flowgate::from_iter(0u64..)
            .map(|x| x * 2)
            .count()
            .deadline(Duration::from_millis(30))
            .run()
    })
    .unwrap_err();
    let Error::DeadlineElapsed { after, report } = err else {
        panic!("expected a deadline error, got {err}")
    };
    assert_eq!(after, Duration::from_millis(30));
    assert_eq!(report.state, State::Cancelled);
    assert_accounted(&report);
    assert!(report.stages[0].received > 0, "{report}");
}

#[test]
fn a_zero_deadline_cancels_at_once_and_a_huge_one_never_fires() {
    let err = watchdog(|| {
        flowgate::from_iter(0..1_000_000u64)
            .count()
            .deadline(Duration::ZERO)
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::DeadlineElapsed { .. }), "{err}");
    assert_accounted(err.report().unwrap());
    let n = watchdog(|| {
        flowgate::from_iter(0..1000u64)
            .count()
            .deadline(Duration::MAX)
            .run()
    })
    .unwrap();
    assert_eq!(n, 1000);
}

#[test]
fn a_cancelled_stream_ends_with_the_report() {
    use futures_lite::StreamExt;

    let items: Vec<Result<u64, Error>> = watchdog(|| {
        futures_lite::future::block_on(async {
            let mut out = flowgate::from_iter(0u64..).into_stream();
            let control = out.control();
            let mut got = Vec::new();
            while let Some(item) = out.next().await {
                if got.len() == 10 {
                    control.cancel();
                }
                got.push(item);
            }
            got
        })
    });
    let (last, firsts) = items.split_last().unwrap();
    assert!(firsts.iter().all(Result::is_ok));
    let Err(Error::Cancelled { report }) = last else {
        panic!("expected a cancel at the end, got {last:?}")
    };
    assert_accounted(report);
}

#[test]
fn polling_a_finished_handle_again_changes_nothing() {
    let ex = smol::LocalExecutor::new();
    let mut handle = flowgate::from_iter(0..10u32).count().spawn_local(&ex);
    let control = handle.control();
    let first = futures_lite::future::block_on(ex.run(&mut handle));
    assert_eq!(first.ok(), Some(10));
    assert_eq!(control.state(), State::Done);
    // A second poll must not make up a result, nor rewrite the state.
    let again = futures_lite::future::block_on(futures_lite::future::poll_once(&mut handle));
    assert!(
        again.is_none(),
        "expected a finished handle to stay pending, got {again:?}"
    );
    assert_eq!(control.state(), State::Done);
    assert_eq!(control.report().state, State::Done);
}

#[test]
fn a_cancelled_run_leaves_no_item_counted_in_a_hop() {
    let source = flowgate::from_iter(0u64..);
    let control = source.control();
    let stop = control.clone();
    let err = watchdog(move || {
        source
            .map(|x| x + 1)
            .capacity(64)
            .then(move |x| {
                let stop = stop.clone();
                async move {
                    if x == 1_000 {
                        stop.cancel();
                    }
                    x
                }
            })
            .capacity(128)
            .count()
            .run()
            .unwrap_err()
    });
    let report = err.report().expect("a cancel carries the report");
    assert_accounted(report);
    assert_no_item_in_a_hop(report);
}

#[test]
fn a_detached_run_still_keeps_its_deadline() {
    let job = flowgate::from_iter(0u64..) // endless
        .then(|x| async move { x })
        .count()
        .deadline(Duration::from_millis(50));
    let control = job.control();
    let watched = control.clone();
    let state = watchdog(move || {
        run_detached_until(job, || watched.is_finished());
        watched.state()
    });
    assert_eq!(state, State::Cancelled, "{}", control.report());
    assert_accounted(&control.report());
}

#[test]
fn a_failure_in_a_detached_run_still_stops_every_stage() {
    let job = flowgate::from_iter(0u64..) // endless
        .then(|x| async move {
            if x == 100 {
                std::future::pending::<()>().await; // stuck for good
            }
            x
        })
        .name("stuck")
        .map(|x| if x == 3 { panic!("three") } else { x })
        .count();
    let control = job.control();
    let watched = control.clone();
    let state = watchdog(move || {
        run_detached_until(job, || {
            watched
                .report()
                .stages
                .iter()
                .all(|s| s.state.is_finished())
        });
        watched.report().stage("stuck").map(|s| s.state)
    });
    assert_eq!(state, Some(State::Cancelled), "{}", control.report());
}

/// A sender waiting for a free chunk slot (every slot holds a small chunk,
/// while the hop's item capacity still has room) is stopped by a cancel:
/// the chunk it was sending is dropped, and the hop does not count it.
#[test]
fn a_send_stopped_while_every_chunk_slot_is_taken_leaves_no_item_counted() {
    let source = flowgate::from_iter(0u64..);
    let control = source.control();
    let watched = control.clone();
    let err = watchdog(move || {
        let stop = std::thread::spawn(move || {
            // Cancel once the source has filled every chunk slot of its hop
            // (64, one item each) and waits to send another.
            // (The report lists no stage until the run has started.)
            let waiting =
                |r: &flowgate::Report| r.stages.first().is_some_and(|s| !s.blocked_send.is_zero());
            while !waiting(&watched.report()) {
                std::thread::yield_now();
            }
            watched.cancel();
        });
        let result = source
            .capacity(1 << 20)
            .chunk_limit(1)
            .then(|x| async move {
                std::future::pending::<()>().await; // takes one item, never more
                x
            })
            .count()
            .run();
        stop.join().unwrap();
        result.unwrap_err()
    });
    let report = err.report().expect("a cancel carries the report");
    assert_accounted(report);
    assert_no_item_in_a_hop(report);
}

/// Checks that no hop of a finished run still counts an item.
fn assert_no_item_in_a_hop(report: &flowgate::Report) {
    let queued: Vec<u64> = report.stages.iter().map(|s| s.queued).collect();
    assert!(
        queued.iter().all(|&q| q == 0),
        "expected every hop of a finished run to be empty, but they hold {queued:?}\n{report}"
    );
}

/// Spawns `job` on a fresh executor, detaches its handle, and runs the
/// executor until `done` says so, looking every 5 ms.
fn run_detached_until<O: Send + 'static>(job: flowgate::Job<O>, done: impl Fn() -> bool) {
    let ex = smol::LocalExecutor::new();
    job.spawn_local(&ex).detach();
    futures_lite::future::block_on(ex.run(async {
        while !done() {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    }));
}

#[test]
fn a_watch_ends_after_the_final_report_of_a_cancelled_run() {
    use futures_lite::StreamExt;

    let reports = watchdog(|| {
        let source = flowgate::from_iter(0u64..);
        let control = source.control();
        let stop = control.clone();
        let job = source
            .inspect(move |x| {
                if *x == 100_000 {
                    stop.cancel();
                }
            })
            .count();
        let watching = std::thread::spawn(move || {
            smol::block_on(
                control
                    .watch(std::time::Duration::from_millis(1))
                    .unwrap()
                    .collect::<Vec<_>>(),
            )
        });
        assert!(job.run().is_err());
        watching.join().unwrap()
    });
    let last = reports.last().unwrap();
    assert_eq!(last.state, flowgate::State::Cancelled);
    assert!(last.is_balanced(), "{last}");
    // Only the last report is final.
    assert!(
        reports[..reports.len() - 1]
            .iter()
            .all(|r| !r.state.is_finished())
    );
}

#[test]
fn a_watch_every_zero_is_a_typed_error() {
    let control = flowgate::from_iter(0..3u8).control();
    let err = control.watch(std::time::Duration::ZERO).unwrap_err();
    assert!(matches!(err, flowgate::Error::ZeroInterval));
}

#[test]
fn a_stage_stuck_on_a_full_dead_letter_output_is_marked_stalled() {
    let (stalled, after_cancel) = watchdog(|| {
        // One slot, never read: the second bad item holds the stage.
        let (letters, _unread) = flowgate::async_channel::bounded(1);
        let job = flowgate::from_iter(0..100u32)
            .try_map(|_| Err::<u32, _>(std::io::Error::other("bad")))
            .on_error(flowgate::OnError::dead_letter(letters))
            .name("parse")
            .count()
            .stall_after(Duration::from_millis(20));
        let control = job.control();
        let ex = smol::Executor::new();
        let handle = job.spawn(&ex);
        smol::block_on(ex.run(async {
            let stalled = loop {
                let report = control.report();
                if report.stage("parse").is_some_and(|s| s.stalled) {
                    break report;
                }
                smol::Timer::after(Duration::from_millis(2)).await;
            };
            control.cancel();
            assert!(handle.await.is_err());
            (stalled, control.report())
        }))
    });
    assert!(stalled.to_string().contains("stalled"), "{stalled}");
    // The stage waiting for it holds nothing: it is not stalled.
    assert!(!stalled.stages.last().unwrap().stalled, "{stalled}");
    // Once the run is over, nothing is stalled.
    assert!(
        after_cancel.stages.iter().all(|s| !s.stalled),
        "{after_cancel}"
    );
}

#[test]
fn a_slow_stage_that_keeps_moving_is_never_marked_stalled() {
    use futures_lite::StreamExt;

    let reports = watchdog(|| {
        let job = flowgate::from_iter(0..40u32)
            .then(|x| async move {
                smol::Timer::after(Duration::from_millis(5)).await;
                x
            })
            .name("slow")
            .count()
            .stall_after(Duration::from_millis(500));
        let control = job.control();
        let watching = std::thread::spawn(move || {
            smol::block_on(
                control
                    .watch(Duration::from_millis(2))
                    .unwrap()
                    .collect::<Vec<_>>(),
            )
        });
        assert_eq!(job.run().unwrap(), 40);
        watching.join().unwrap()
    });
    assert!(reports.len() > 10);
    assert!(reports.iter().all(|r| r.stages.iter().all(|s| !s.stalled)));
}

#[test]
fn a_zero_stall_time_is_a_typed_error() {
    let err = flowgate::from_iter(0..3u8)
        .count()
        .stall_after(Duration::ZERO)
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::ZeroInterval));
}
