//! The metrics: exact counters, queue depths, wait times, the bottleneck,
//! and a live snapshot read while the run goes on.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::support::{assert_accounted, watchdog};
use flowgate::{Report, StageReport};
use proptest::prelude::*;

/// Spins for about `d`: CPU work that no scheduler can hide.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        black_box(());
    }
}

fn stage<'a>(report: &'a Report, name: &str) -> &'a StageReport {
    report
        .stage(name)
        .unwrap_or_else(|| panic!("no stage {name}\n{report}"))
}

/// Wait times never add up to more than the wall time in a linear pipeline,
/// whose stages each wait one way at a time, and a finished hop is empty.
fn assert_times_and_queues(report: &Report) {
    for s in &report.stages {
        assert!(
            s.blocked_send + s.blocked_recv <= s.wall_time,
            "{}: waits exceed the wall time\n{report}",
            s.name
        );
        assert_eq!(s.busy + s.blocked_send + s.blocked_recv, s.wall_time);
        assert_eq!(
            s.queued, 0,
            "{}: a finished hop holds items\n{report}",
            s.name
        );
        assert!(s.peak_queued <= s.queue_capacity, "{report}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Map,
    /// Keeps items divisible by this.
    Filter(u64),
    /// Makes this many copies of each item.
    Expand(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Map),
        (1u64..5).prop_map(Op::Filter),
        (0u8..4).prop_map(Op::Expand),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Each stage's in and out are the items that went in and out of it,
    /// computed here by running the same steps over a plain `Vec`.
    #[test]
    fn counters_are_exact_on_random_pipelines(
        n in 0u64..3000,
        ops in prop::collection::vec(op(), 0..5),
        capacity in 1usize..300,
        threads in 1usize..=2,
        fused in any::<bool>(),
    ) {
        // Fused, no hop is configured: the maps and filters run in the
        // task of the stage after them, with their own counts all the same.
        let hop = |p: flowgate::Pipeline<u64>| if fused { p } else { p.capacity(capacity) };
        let mut pipeline = hop(flowgate::from_iter(0..n).name("s"));
        let mut items: Vec<u64> = (0..n).collect();
        let mut expected = vec![("s".to_owned(), n, n)];
        for (i, op) in ops.iter().enumerate() {
            let name = format!("op{i}");
            let before = items.len() as u64;
            pipeline = match *op {
                Op::Map => {
                    items.iter_mut().for_each(|x| *x = x.wrapping_mul(7));
                    pipeline.map(|x: u64| x.wrapping_mul(7))
                }
                Op::Filter(k) => {
                    items.retain(|x| x % k == 0);
                    pipeline.filter(move |x| x % k == 0)
                }
                Op::Expand(k) => {
                    items = items.iter().flat_map(|&x| std::iter::repeat_n(x, k.into())).collect();
                    pipeline.flat_map(move |x| std::iter::repeat_n(x, k.into()))
                }
            }
            .name(name.clone());
            pipeline = hop(pipeline);
            expected.push((name, before, items.len() as u64));
        }
        expected.push(("sink".to_owned(), items.len() as u64, items.len() as u64));
        let job = pipeline.collect::<Vec<u64>>().name("sink");
        let control = job.control();
        let got = watchdog(move || job.run_on_threads(threads)).unwrap();
        prop_assert_eq!(&got, &items);
        let report = control.report();
        assert_accounted(&report);
        assert_times_and_queues(&report);
        for (name, received, emitted) in expected {
            let s = stage(&report, &name);
            prop_assert_eq!((s.received, s.emitted), (received, emitted), "{}\n{}", name, report);
        }
        #[cfg(feature = "metrics")]
        exported::check(&report);
    }
}

/// With the `metrics` feature: what `Report::record_metrics` hands the
/// facade, kept by a recorder of the test's own.
#[cfg(feature = "metrics")]
mod exported {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    type Kept = Arc<Mutex<HashMap<(String, String), u64>>>;

    #[derive(Default)]
    struct Keep(Kept);

    struct Slot {
        key: (String, String),
        kept: Kept,
    }

    impl CounterFn for Slot {
        fn increment(&self, value: u64) {
            *self
                .kept
                .lock()
                .unwrap()
                .entry(self.key.clone())
                .or_default() += value;
        }
        fn absolute(&self, value: u64) {
            self.kept.lock().unwrap().insert(self.key.clone(), value);
        }
    }

    impl Recorder for Keep {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let stage = key
                .labels()
                .find(|label| label.key() == "stage")
                .map(|label| label.value().to_owned())
                .unwrap_or_default();
            Counter::from_arc(Arc::new(Slot {
                key: (key.name().to_owned(), stage),
                kept: Arc::clone(&self.0),
            }))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Every stage's counters, as exported, equal its counts in `report`.
    pub(super) fn check(report: &flowgate::Report) {
        let keep = Keep::default();
        metrics::with_local_recorder(&keep, || report.record_metrics("random"));
        let kept = keep.0.lock().unwrap();
        for s in &report.stages {
            for (name, count) in [
                ("flowgate_stage_received_total", s.received),
                ("flowgate_stage_emitted_total", s.emitted),
                ("flowgate_stage_filtered_total", s.filtered),
                ("flowgate_stage_failed_total", s.failed),
                ("flowgate_stage_skipped_total", s.skipped),
                ("flowgate_stage_retried_total", s.retried),
                ("flowgate_stage_dead_lettered_total", s.dead_lettered),
                ("flowgate_stage_dropped_total", s.dropped),
            ] {
                let key = (name.to_owned(), s.name.clone());
                assert_eq!(
                    kept.get(&key),
                    Some(&count),
                    "{name} of {}\n{report}",
                    s.name
                );
            }
        }
    }
}

/// A source, a slow middle stage and a sink; returns the final report.
fn run_with_slow_middle(
    threads: usize,
    slow: impl Fn(u32) -> u32 + Send + Sync + 'static,
) -> Report {
    let job = flowgate::from_iter(0..400u32)
        .name("source")
        .capacity(16)
        .map(slow)
        .name("slow")
        .capacity(16)
        .map(|x| x + 1)
        .name("after")
        .capacity(16)
        .count()
        .name("sink");
    let control = job.control();
    assert_eq!(watchdog(move || job.run_on_threads(threads)).unwrap(), 400);
    control.report()
}

#[test]
fn a_cpu_bound_slow_stage_is_named_the_bottleneck_on_one_and_two_threads() {
    for threads in [1, 2] {
        let report = run_with_slow_middle(threads, |x| {
            spin(Duration::from_micros(100));
            x
        });
        assert_eq!(
            report.bottleneck().map(|s| s.name.as_str()),
            Some("slow"),
            "on {threads} threads\n{report}"
        );
        assert!(report.to_string().contains("bottleneck: slow"), "{report}");
    }
}

#[test]
fn an_async_slow_stage_is_named_the_bottleneck() {
    let job = flowgate::from_iter(0..60u32)
        .name("source")
        .capacity(4)
        .then(|x| async move {
            smol::Timer::after(Duration::from_millis(1)).await;
            x
        })
        .name("slow")
        .capacity(4)
        .map(|x| x * 2)
        .name("after")
        .count()
        .name("sink");
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 60);
    let report = control.report();
    assert_eq!(
        report.bottleneck().map(|s| s.name.as_str()),
        Some("slow"),
        "{report}"
    );
}

#[test]
fn blocked_send_grows_upstream_of_a_slow_stage_and_blocked_recv_downstream() {
    let report = run_with_slow_middle(1, |x| {
        spin(Duration::from_micros(100));
        x
    });
    assert_times_and_queues(&report);
    let (source, slow) = (stage(&report, "source"), stage(&report, "slow"));
    let (after, sink) = (stage(&report, "after"), stage(&report, "sink"));
    // The source spends most of its time waiting for room before the slow
    // stage, the stages after it most of theirs waiting for its output.
    assert!(source.blocked_send_share() > 0.5, "{report}");
    assert!(after.blocked_recv_share() > 0.5, "{report}");
    assert!(sink.blocked_recv_share() > 0.5, "{report}");
    // The slow stage itself hardly waits either way.
    assert!(slow.busy_share() > 0.8, "{report}");
    assert!(slow.blocked_send < source.blocked_send, "{report}");
    assert!(slow.blocked_recv < sink.blocked_recv, "{report}");
    // Its input hop was full at some point: the source ran ahead to it.
    assert_eq!(slow.peak_queued, 16, "{report}");
    assert_eq!(slow.queue_capacity, 16, "{report}");
}

#[test]
fn turning_metrics_off_keeps_the_counts_and_drops_the_times() {
    let job = flowgate::from_iter(0..200u32)
        .metrics(false)
        .capacity(4)
        .map(|x| {
            spin(Duration::from_micros(20));
            x
        })
        .name("slow")
        .count();
    let control = job.control();
    assert_eq!(watchdog(move || job.run()).unwrap(), 200);
    let report = control.report();
    assert_accounted(&report);
    assert!(
        report
            .stages
            .iter()
            .all(|s| s.blocked_send.is_zero() && s.blocked_recv.is_zero())
    );
    assert_eq!(stage(&report, "slow").peak_queued, 4, "{report}");
    assert!(report.bottleneck().is_none(), "{report}");
}

#[test]
fn a_live_snapshot_is_read_from_another_task_while_the_run_is_stuck() {
    let (gate_tx, gate_rx) = async_channel::bounded::<()>(1);
    let job = flowgate::from_iter(0..1000u32)
        .name("source")
        .capacity(32)
        .chunk_limit(8)
        .then(move |x| {
            let gate = gate_rx.clone();
            async move {
                if x == 0 {
                    let _ = gate.recv().await;
                }
                x
            }
        })
        .name("gated")
        .count()
        .name("sink");
    let control = job.control();
    let ex = smol::Executor::new();
    let handle = job.spawn(&ex);
    let watcher = ex.spawn(async move {
        // Waits, without sleeping the thread, for the source to fill the
        // gated stage's input hop while the sink starves.
        loop {
            let report = control.report();
            let gated = report.stage("gated").unwrap();
            let sink = report.stage("sink").unwrap();
            if gated.queued == 32 && sink.blocked_recv > Duration::ZERO {
                break report;
            }
            smol::future::yield_now().await;
        }
    });
    let (live, done) = watchdog(move || {
        smol::block_on(ex.run(async {
            let live = watcher.await;
            gate_tx.close();
            (live, handle.await)
        }))
    });
    assert_eq!(done.unwrap(), 1000);
    let gated = live.stage("gated").unwrap();
    assert_eq!(gated.peak_queued, 32, "{live}");
    assert!(gated.in_hand >= 1, "the gated item is in hand\n{live}");
    let source = live.stage("source").unwrap();
    // The source waits for room now, and the live report counts the wait
    // in progress.
    assert!(source.blocked_send > Duration::ZERO, "{live}");
    assert!(live.to_string().contains("32/32"), "{live}");
}

/// A stream that gives `n` items, one every `every`.
fn trickle(n: u32, every: Duration) -> impl futures_lite::Stream<Item = u32> + Send {
    futures_lite::stream::unfold(0u32, move |i| async move {
        if i == n {
            return None;
        }
        smol::Timer::after(every).await;
        Some((i, i + 1))
    })
}

#[test]
fn a_source_waiting_on_its_stream_waits_for_input_and_is_never_the_bottleneck() {
    let report = watchdog(|| {
        let job = flowgate::from_stream(trickle(20, Duration::from_millis(3)))
            .name("trickle")
            .map(|x| x + 1)
            .name("plus")
            .count();
        let control = job.control();
        assert_eq!(job.run().unwrap(), 20);
        control.report()
    });
    let source = stage(&report, "trickle");
    // Its time went to the stream: waiting for input, as the stages after
    // it wait for it.
    assert!(source.blocked_recv > source.busy, "{report}");
    assert!(source.busy_share() < 0.5, "{report}");
    // Nothing in this run works more than it waits.
    assert_eq!(
        report.bottleneck().map(|s| s.name.as_str()),
        None,
        "{report}"
    );
}

#[test]
fn a_service_front_waiting_for_requests_is_not_busy() {
    let report = watchdog(|| {
        let (mut producer, job) = flowgate::service(|s| s.map(|x: u32| x * 2));
        let control = job.control();
        let ex = smol::Executor::new();
        let running = job.spawn(&ex);
        futures_lite::future::block_on(ex.run(async move {
            for x in 0..20 {
                smol::Timer::after(Duration::from_millis(3)).await;
                assert_eq!(producer.send(x).await.unwrap(), [x * 2]);
            }
            drop(producer);
            running.await.unwrap();
        }));
        control.report()
    });
    let front = &report.stages[0];
    assert!(front.blocked_recv > front.busy, "{report}");
    assert_eq!(
        report.bottleneck().map(|s| s.name.as_str()),
        None,
        "{report}"
    );
}

#[test]
fn a_stage_blocked_on_its_dead_letter_output_counts_as_blocked_sending() {
    let report = watchdog(|| {
        let (letters, letters_rx) = flowgate::async_channel::bounded(1);
        let job = flowgate::from_iter(0..20u32)
            .try_map(|_| Err::<u32, _>(std::io::Error::other("bad")))
            .on_error(flowgate::OnError::dead_letter(letters))
            .name("parse")
            .count();
        let control = job.control();
        // The dead letters are read slowly, by another thread.
        let reader = std::thread::spawn(move || {
            let mut n = 0;
            while let Ok(_letter) = letters_rx.recv_blocking() {
                std::thread::sleep(Duration::from_millis(3));
                n += 1;
            }
            n
        });
        assert_eq!(job.run().unwrap(), 0);
        assert_eq!(reader.join().unwrap(), 20);
        control.report()
    });
    let parse = stage(&report, "parse");
    assert_eq!(parse.dead_lettered, 20);
    assert!(parse.blocked_send > parse.busy, "{report}");
    assert_ne!(
        report.bottleneck().map(|s| s.name.as_str()),
        Some("parse"),
        "{report}"
    );
}
