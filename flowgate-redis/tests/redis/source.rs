//! A consumer group read into a pipeline, and each entry settled.

use std::time::Duration;

use flowgate_redis::{Redis, StreamSource, Utf8};

use crate::helpers::{entries, fill, len, pending, with_server};

#[test]
fn every_entry_is_processed_and_acknowledged_in_chunks() {
    with_server(|server| {
        fill(server, "jobs", 5000);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = StreamSource::new(&redis, "jobs", "g", "c1")
            .codec(Utf8)
            .create_group(true)
            .block(Duration::from_millis(50))
            .open()
            .unwrap();
        let control = pipeline.control();
        let mut seen = 0;
        let sum = pipeline
            .map(|d| d.value.parse::<u64>().unwrap())
            .fold(0u64, move |sum, n| {
                seen += 1;
                if seen == 5000 {
                    control.shutdown();
                }
                sum + n
            })
            .run()
            .unwrap();
        assert_eq!(sum, (0..5000u64).sum::<u64>());
        let tally = smol::block_on(acks.finished());
        assert_eq!(tally.acked, 5000, "{tally:?}");
        assert_eq!(tally.left_pending + tally.dead_lettered, 0, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
        assert_eq!(len(server, "jobs:dead"), 0);
    });
}

/// The source of these tests: consumer `c1` of group `g` of `jobs`, with
/// short blocking reads.
fn jobs(redis: &Redis) -> StreamSource<flowgate_redis::Bytes> {
    StreamSource::new(redis, "jobs", "g", "c1")
        .create_group(true)
        .block(Duration::from_millis(20))
}

/// Runs `f` on a thread of its own and polls `ready` until it holds, then
/// gives the thread's handle.
fn spawn_until<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    ready: impl Fn() -> bool,
) -> std::thread::JoinHandle<T> {
    let handle = std::thread::spawn(f);
    while !ready() {
        assert!(!handle.is_finished(), "the run ended before it was ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle
}

#[test]
fn a_dead_lettered_entry_goes_to_the_dead_letter_stream_with_its_stage_and_error() {
    with_server(|server| {
        fill(server, "jobs", 100);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = jobs(&redis).codec(Utf8).open().unwrap();
        let control = pipeline.control();
        let (letters, letters_rx) = async_channel::unbounded();
        let mut seen = 0;
        let count = pipeline
            .try_map(
                |d: flowgate_redis::Delivery<String>| match d.value.as_str() {
                    "13" | "42" => Err(std::io::Error::other(format!("unlucky {}", d.value))),
                    _ => Ok(d.value),
                },
            )
            .on_error(flowgate::OnError::dead_letter(letters))
            .name("check")
            .inspect(move |_| {
                seen += 1;
                if seen == 98 {
                    control.shutdown();
                }
            })
            .count()
            .run()
            .unwrap();
        assert_eq!(count, 98);
        assert_eq!(letters_rx.len(), 2);
        let tally = smol::block_on(acks.finished());
        assert_eq!((tally.acked, tally.dead_lettered), (98, 2), "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
        let dead = entries(server, "jobs:dead");
        assert_eq!(dead.len(), 2);
        for (letter, n) in dead.iter().zip(["13", "42"]) {
            let field = |name: &str| {
                letter
                    .iter()
                    .find(|(f, _)| f == name)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            assert_eq!(field("stage"), "check");
            assert_eq!(field("error"), format!("unlucky {n}"));
            assert_eq!(field("deliveries"), "1");
            assert_eq!(field("payload"), n);
            assert!(field("source_id").contains('-'));
        }
    });
}

#[test]
fn a_poison_entry_is_dead_lettered_after_the_set_number_of_deliveries() {
    with_server(|server| {
        fill(server, "jobs", 1);
        let redis = Redis::open(&server.url()).unwrap();
        // Each run fails on the entry, so it stays pending, and the next
        // run of the same consumer reads it again, until it has been
        // delivered too often.
        let mut runs = 0;
        loop {
            runs += 1;
            assert!(runs <= 10, "the poison entry was never dead-lettered");
            let (pipeline, acks) = jobs(&redis).codec(Utf8).max_deliveries(3).open().unwrap();
            let control = pipeline.control();
            let job = pipeline
                .try_map(|_: flowgate_redis::Delivery<String>| {
                    Err::<(), _>(std::io::Error::other("poison"))
                })
                .count();
            let running = std::thread::spawn(move || job.run());
            while !running.is_finished() && acks.tally().dead_lettered == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            control.shutdown();
            let result = running.join().unwrap();
            let tally = smol::block_on(acks.finished());
            if tally.dead_lettered == 1 {
                assert_eq!(result.unwrap(), 0);
                break;
            }
            assert!(result.is_err());
            assert_eq!(tally.left_pending, 1, "{tally:?}");
        }
        // Three deliveries failed; the fourth went to the dead letters.
        assert_eq!(runs, 4);
        assert_eq!(pending(server, "jobs", "g"), 0);
        let dead = entries(server, "jobs:dead");
        assert_eq!(dead.len(), 1);
        let field = |name: &str| dead[0].iter().find(|(f, _)| f == name).unwrap().1.clone();
        assert_eq!(field("payload"), "0");
        assert_eq!(field("stage"), "source");
        assert_eq!(field("deliveries"), "4");
        assert_eq!(
            field("error"),
            "delivered 4 times, more than the limit of 3"
        );
    });
}

#[test]
fn the_pending_list_stops_growing_at_the_hop_bound_when_the_sink_stalls() {
    with_server(|server| {
        fill(server, "jobs", 2000);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = jobs(&redis).open().unwrap();
        let control = pipeline.control();
        let (gate, gate_rx) = async_channel::bounded::<()>(1);
        let job = pipeline.capacity(16).for_each_async(move |_| {
            let gate = gate_rx.clone();
            async move {
                let _ = gate.recv().await;
            }
        });
        // The sink holds one chunk of 16, the hop holds 16 more: the
        // reads stop there.
        let running = spawn_until(move || job.run(), || acks.in_flight() == 32);
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(pending(server, "jobs", "g"), 32);
            assert_eq!(acks.in_flight(), 32);
        }
        control.cancel();
        assert!(running.join().unwrap().is_err());
        drop(gate);
        let tally = smol::block_on(acks.finished());
        // Cancelled: what was in flight stays pending, nothing else.
        assert_eq!(tally.acked, 0, "{tally:?}");
        assert_eq!(tally.left_pending, 32, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 32);
    });
}

#[test]
fn cancel_leaves_exactly_the_entries_in_flight_pending() {
    with_server(|server| {
        fill(server, "jobs", 1000);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = jobs(&redis).max_in_flight(64).open().unwrap();
        let control = pipeline.control();
        // Reads of 64, as the credit allows. The sink takes three reads'
        // worth, then stalls on the first entry of the fourth.
        let mut taken = 0;
        let job = pipeline.for_each_async(move |_| {
            taken += 1;
            let stall = taken > 192;
            async move {
                if stall {
                    std::future::pending::<()>().await;
                }
            }
        });
        let running = spawn_until(
            move || job.run(),
            || acks.tally().acked == 192 && acks.in_flight() == 64,
        );
        control.cancel();
        assert!(running.join().unwrap().is_err());
        let tally = smol::block_on(acks.finished());
        assert_eq!((tally.acked, tally.left_pending), (192, 64), "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 64);
        // The next run of the same consumer takes them up first.
        let (pipeline, acks) = StreamSource::new(&redis, "jobs", "g", "c1")
            .block(Duration::from_millis(20))
            .open()
            .unwrap();
        let control = pipeline.control();
        let mut seen = 0;
        let again = pipeline
            .inspect(move |_| {
                seen += 1;
                if seen == 808 {
                    control.shutdown();
                }
            })
            .filter(|d| !d.is_first())
            .count()
            .run()
            .unwrap();
        assert_eq!(again, 64);
        let tally = smol::block_on(acks.finished());
        assert_eq!(tally.acked, 808, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
    });
}

#[test]
fn shutdown_drains_what_is_in_flight_and_leaves_nothing_pending() {
    with_server(|server| {
        fill(server, "jobs", 1000);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = jobs(&redis).max_in_flight(64).open().unwrap();
        let control = pipeline.control();
        let (gate, gate_rx) = async_channel::bounded::<()>(1);
        let job = pipeline.for_each_async(move |_| {
            let gate = gate_rx.clone();
            async move {
                let _ = gate.recv().await;
            }
        });
        let running = spawn_until(move || job.run(), || acks.in_flight() == 64);
        control.shutdown();
        // Released: the sink takes what is in flight, and the reads stop.
        drop(gate);
        running.join().unwrap().unwrap();
        let tally = smol::block_on(acks.finished());
        assert!(tally.acked >= 64 && tally.acked < 1000, "{tally:?}");
        assert_eq!(tally.left_pending, 0, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
    });
}

#[test]
fn a_missing_group_fails_the_run_with_redis_error() {
    with_server(|server| {
        fill(server, "jobs", 3);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = StreamSource::new(&redis, "jobs", "nobody", "c1")
            .block(Duration::from_millis(20))
            .open()
            .unwrap();
        let err = pipeline.count().run().unwrap_err();
        let flowgate::Error::Stage { stage, source } = err else {
            panic!("{err}")
        };
        assert_eq!(stage, "xreadgroup jobs");
        assert!(source.to_string().contains("NOGROUP"), "{source}");
        let tally = smol::block_on(acks.finished());
        assert_eq!(tally, flowgate_redis::Tally::default());
    });
}
