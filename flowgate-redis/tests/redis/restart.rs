//! The server restarted under a running pipeline.

use std::collections::HashSet;
use std::time::Duration;

use flowgate_redis::{Redis, StreamSource, Utf8};

use crate::helpers::{fill, pending, run_id, with_server};

#[test]
fn a_pipeline_reconnects_after_the_server_restarts_and_loses_nothing() {
    with_server(|server| {
        const N: usize = 20_000;
        fill(server, "jobs", N);
        let redis = Redis::open(&server.url()).unwrap();
        let (pipeline, acks) = StreamSource::new(&redis, "jobs", "g", "c1")
            .codec(Utf8)
            .create_group(true)
            .block(Duration::from_millis(20))
            .max_in_flight(256)
            .open()
            .unwrap();
        let control = pipeline.control();
        let (progress, progress_rx) = async_channel::unbounded::<()>();
        let mut seen = HashSet::new();
        let mut processed = 0usize;
        let job = pipeline
            .then(|d| async move {
                // Slow enough that the restart lands mid-run.
                smol::Timer::after(Duration::from_micros(50)).await;
                d
            })
            .fold((0usize, 0usize), move |_, d| {
                processed += 1;
                seen.insert(d.value);
                let _ = progress.try_send(());
                if seen.len() == N {
                    control.shutdown();
                }
                (seen.len(), processed)
            });
        let running = std::thread::spawn(move || job.run());
        while progress_rx.len() < N / 4 {
            assert!(!running.is_finished(), "ended before the restart");
            std::thread::sleep(Duration::from_millis(2));
        }
        let before = run_id(server);
        server.restart();
        assert_ne!(run_id(server), before, "the server did not restart");
        let restarted_at = progress_rx.len();
        let (distinct, processed) = running.join().unwrap().unwrap();
        assert!(restarted_at < N, "the restart came after the end");
        let tally = smol::block_on(acks.finished());
        assert_eq!(distinct, N, "lost entries");
        assert!(processed >= N);
        assert_eq!(tally.acked as usize, processed, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
    });
}
