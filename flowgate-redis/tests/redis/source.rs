//! A consumer group read into a pipeline, and each entry settled.

use std::time::Duration;

use flowgate_redis::{Redis, StreamSource, Utf8};

use crate::helpers::{fill, len, pending, with_server};

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
        assert_eq!(sum, (0..5000u64).sum());
        let tally = smol::block_on(acks.finished());
        assert_eq!(tally.acked, 5000, "{tally:?}");
        assert_eq!(tally.left_pending + tally.dead_lettered, 0, "{tally:?}");
        assert_eq!(pending(server, "jobs", "g"), 0);
        assert_eq!(len(server, "jobs:dead"), 0);
    });
}
