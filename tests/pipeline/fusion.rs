//! Stage fusion: cheap sync stages run in the task of the stage after them,
//! and the report, the errors and the lifecycle are what they are without
//! fusion.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flowgate::{Error, Outcome, Report, StageReport, State};

use crate::support::{assert_accounted, watchdog};

fn stage<'a>(report: &'a Report, name: &str) -> &'a StageReport {
    report
        .stage(name)
        .unwrap_or_else(|| panic!("no stage {name}\n{report}"))
}

/// Whether the stage has no hop before it: it is fused into the stage
/// after its feeder, or it is the source.
fn has_no_hop(s: &StageReport) -> bool {
    s.queue_capacity == 0
}

/// The standard shape, fused and not: the same output, and the same counts
/// and states per stage; only the hops differ.
#[test]
fn fused_stages_keep_their_own_exact_counts() {
    let run = |fusion: bool| {
        let job = flowgate::from_iter(0..10_000u64)
            .fusion(fusion)
            .map(|x| x * 3)
            .name("triple")
            .filter(|x| x % 2 == 0)
            .name("even")
            .enumerate()
            .name("places")
            .filter_map(|(i, x)| (i % 5 != 0).then_some(x))
            .name("most")
            .skip(3)
            .name("skip")
            .fold(0u64, |a, x| a.wrapping_add(x))
            .name("sum");
        let control = job.control();
        let sum = watchdog(move || job.run()).unwrap();
        (sum, control.report())
    };
    let (fused_sum, fused) = run(true);
    let (plain_sum, plain) = run(false);
    assert_eq!(fused_sum, plain_sum);
    assert_accounted(&fused);
    assert!(fused.is_balanced(), "{fused}");
    for (f, p) in fused.stages.iter().zip(&plain.stages) {
        assert_eq!(f.name, p.name);
        assert_eq!(f.state, State::Done, "{fused}");
        assert_eq!(
            (f.received, f.emitted, f.filtered, f.dropped),
            (p.received, p.emitted, p.filtered, p.dropped),
            "{}\n{fused}\n{plain}",
            f.name
        );
    }
    // Fused, no stage has a hop before it; unfused, every one but the
    // source has one.
    assert!(fused.stages.iter().all(has_no_hop), "{fused}");
    assert!(
        plain.stages.iter().skip(1).all(|s| !has_no_hop(s)),
        "{plain}"
    );
    assert_eq!(stage(&fused, "even").filtered, 5_000);
}

/// A panic in a fused stage names that stage, which fails; the stage whose
/// task ran it is cancelled, and every item is accounted for.
#[test]
fn a_panic_in_a_fused_stage_names_it() {
    let job = flowgate::from_iter(0..1_000u32)
        .map(|x| x + 1)
        .name("before")
        .map(|x| if x == 500 { panic!("five hundred") } else { x })
        .name("picky")
        .map(|x| x * 2)
        .name("after")
        .count()
        .name("sink");
    let control = job.control();
    let err = watchdog(move || job.run()).unwrap_err();
    match &err {
        Error::StagePanicked { stage, message } => {
            assert_eq!(
                (stage.as_str(), message.as_str()),
                ("picky", "five hundred")
            );
        }
        other => panic!("expected a panic, got {other}"),
    }
    let report = control.report();
    assert!(
        has_no_hop(stage(&report, "picky")),
        "picky is fused\n{report}"
    );
    assert_eq!(stage(&report, "picky").state, State::Failed, "{report}");
    assert_eq!(stage(&report, "sink").state, State::Cancelled, "{report}");
    assert_eq!(stage(&report, "before").state, State::Cancelled, "{report}");
    assert_accounted(&report);
}

/// A fused source's iterator that panics fails the source, by name.
#[test]
fn a_panic_in_a_fused_source_names_the_source() {
    let job = flowgate::from_iter((0..100u32).inspect(|&x| assert!(x != 40, "forty")))
        .map(|x| x + 1)
        .count();
    let control = job.control();
    let err = watchdog(move || job.run()).unwrap_err();
    assert!(
        matches!(&err, Error::StagePanicked { stage, .. } if stage == "source"),
        "{err}"
    );
    let report = control.report();
    assert_eq!(report.stages[0].state, State::Failed, "{report}");
    assert_accounted(&report);
}

/// Items `0..n`, each with an acknowledgement that counts how many were
/// delivered (`[0]`) and how many ended otherwise (`[1]`).
fn acked_items(
    n: u64,
) -> (
    Arc<[AtomicU64; 2]>,
    impl Iterator<Item = (u64, impl flowgate::Acknowledge)>,
) {
    let told: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let counts = Arc::clone(&told);
    let items = (0..n).map(move |x| {
        let told = Arc::clone(&counts);
        let ack = move |outcome: Outcome| {
            let i = usize::from(outcome != Outcome::Delivered);
            told[i].fetch_add(1, Ordering::Relaxed);
        };
        (x, ack)
    });
    (told, items)
}

/// Acknowledgements cross fused stages: a filtered item is told so, and
/// the rest are delivered.
#[test]
fn acknowledgements_cross_fused_stages() {
    let (told, items) = acked_items(1_000);
    let job = flowgate::from_iter_acked(items)
        .map(|x| x + 1)
        .filter(|x| x % 4 != 0)
        .inspect(|_| {})
        .count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 750);
    assert_eq!(told[0].load(Ordering::Relaxed), 750);
    assert_eq!(told[1].load(Ordering::Relaxed), 250);
    let report = control.report();
    // The acknowledging source keeps its task and hop; the rest is fused.
    assert!(!has_no_hop(&report.stages[1]), "{report}");
    assert!(report.stages[2..].iter().all(has_no_hop), "{report}");
}

/// A `take` after fused stages ends the run early and cleanly: the stages
/// before it, fused or not, end done.
#[test]
fn take_after_fused_stages_ends_them_done() {
    let job = flowgate::from_iter(0u64..)
        .map(|x| x * 2)
        .filter(|x| x % 3 != 0)
        .take(100)
        .collect::<Vec<_>>();
    let control = job.control();
    let out = watchdog(move || job.run()).unwrap();
    assert_eq!(out.len(), 100);
    let report = control.report();
    assert!(
        report.stages.iter().all(|s| s.state == State::Done),
        "{report}"
    );
    assert!(report.is_balanced(), "{report}");
}

/// A shutdown stops a fused source: what it already handed on is
/// delivered, and nothing is dropped.
#[test]
fn shutdown_stops_a_fused_source() {
    let source = flowgate::from_iter(0u64..);
    let control = source.control();
    let stop = control.clone();
    let seen = watchdog(move || {
        source
            .map(|x| x + 1)
            .fold(0u64, move |n, _| {
                if n == 10_000 {
                    stop.shutdown();
                }
                n + 1
            })
            .run()
    })
    .unwrap();
    assert!(seen > 10_000);
    let report = control.report();
    assert_eq!(report.dropped(), 0, "{report}");
    assert_eq!(report.delivered(), seen, "{report}");
    assert!(
        report.stages.iter().all(|s| s.state == State::Done),
        "{report}"
    );
}

/// A cancel from inside a fused stage stops the run; every stage is
/// cancelled, none failed.
#[test]
fn a_cancel_stops_fused_stages() {
    let source = flowgate::from_iter(0u64..);
    let control = source.control();
    let cancel = control.clone();
    let err = watchdog(move || {
        source
            .inspect(move |&x| {
                if x == 5_000 {
                    cancel.cancel();
                }
            })
            .map(|x| x + 1)
            .count()
            .run()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    let report = control.report();
    assert!(
        report.stages.iter().all(|s| s.state == State::Cancelled),
        "{report}"
    );
    assert_accounted(&report);
}

/// What keeps a hop: a configured hop, a boundary, a restart on panic, and
/// a stage that needs a hop before it.
#[test]
fn what_keeps_a_hop() {
    let job = flowgate::from_iter(0..100u64)
        .map(|x| x)
        .name("configured")
        .capacity(8)
        .map(|x| x)
        .name("bounded")
        .boundary()
        .map(|x| x)
        .name("restarts")
        .restart_on_panic(1, flowgate::Backoff::fixed(std::time::Duration::ZERO))
        .map(|x| x)
        .name("before_workers")
        .par_map(2, |x| x)
        .name("workers")
        .map(|x| x)
        .name("fused")
        .count()
        .name("sink");
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 100);
    let report = control.report();
    let hop_before = |name: &str| !has_no_hop(stage(&report, name));
    // The source is fused into `configured`, whose hop is configured.
    assert!(!hop_before("configured"), "{report}");
    assert!(hop_before("bounded"), "{report}");
    assert!(hop_before("restarts"), "{report}");
    assert!(hop_before("before_workers"), "{report}");
    assert!(hop_before("workers"), "{report}");
    assert!(hop_before("fused"), "{report}");
    assert!(!hop_before("sink"), "{report}");
    assert!(report.is_balanced(), "{report}");
}

/// A fused group runs on whatever the runner is, and with the executor's
/// threads the same report comes out.
#[test]
fn fused_stages_run_on_threads() {
    let job = flowgate::from_iter(0..50_000u64)
        .map(|x| x % 7)
        .filter(|x| *x != 0)
        .fold(0u64, |a, x| a + x);
    let control = job.control();
    let want: u64 = (0..50_000u64).map(|x| x % 7).sum();
    assert_eq!(watchdog(move || job.run_on_threads(2)).unwrap(), want);
    let report = control.report();
    assert!(report.is_balanced(), "{report}");
    assert_accounted(&report);
}

/// A fused `flat_map` hands its outputs on a chunk at a time: one input
/// that expands without end still lets the stages after it work, and a
/// `take` after them ends the run.
#[test]
fn a_fused_flat_map_of_an_endless_expansion_moves_in_chunks() {
    let job = flowgate::from_iter(0..1u64)
        .flat_map(|_| 0u64..)
        .name("endless")
        .inspect(|_| {})
        .name("host")
        .take(10_000)
        .count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 10_000);
    let report = control.report();
    assert!(
        has_no_hop(stage(&report, "host")),
        "endless is fused\n{report}"
    );
    assert!(
        report.stages.iter().all(|s| s.state == State::Done),
        "{report}"
    );
}

/// Acknowledgements cross a fused `flat_map`: an input is delivered once
/// every output made from it is, and one that made nothing is filtered.
#[test]
fn acknowledgements_cross_a_fused_flat_map() {
    let (told, items) = acked_items(1_000);
    // Every third input makes nothing; the rest make 300 outputs each, so
    // outputs of one input span chunks.
    let job = flowgate::from_iter_acked(items)
        .flat_map(|x| std::iter::repeat_n(x, if x % 3 == 0 { 0 } else { 300 }))
        .count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 666 * 300);
    assert_eq!(told[0].load(Ordering::Relaxed), 666);
    assert_eq!(told[1].load(Ordering::Relaxed), 334);
    let report = control.report();
    assert!(has_no_hop(&report.stages[2]), "{report}");
    assert!(report.is_balanced(), "{report}");
    assert_accounted(&report);
}
