//! Items written to a stream, a chunk per round trip.

use flowgate_redis::{Redis, StreamSink, Utf8, WriteStream};

use crate::helpers::{entries, len, with_server};

#[test]
fn a_pipeline_writes_every_item_in_order() {
    with_server(|server| {
        let redis = Redis::open(&server.url()).unwrap();
        flowgate::from_iter(0..5000u32)
            .map(|n| n.to_string())
            .write_stream(StreamSink::new(&redis, "out").codec(Utf8))
            .run()
            .unwrap();
        let written: Vec<String> = entries(server, "out")
            .into_iter()
            .map(|fields| fields[0].1.clone())
            .collect();
        assert_eq!(
            written,
            (0..5000).map(|n| n.to_string()).collect::<Vec<_>>()
        );
    });
}

#[test]
fn max_len_trims_the_stream_to_about_its_length() {
    with_server(|server| {
        let redis = Redis::open(&server.url()).unwrap();
        let sink = StreamSink::new(&redis, "out").codec(Utf8).max_len(1000);
        flowgate::from_iter(0..20_000u32)
            .map(|n| n.to_string())
            .write_stream(sink.clone())
            .run()
            .unwrap();
        // Redis trims whole nodes of (by default) 100 entries.
        let n = len(server, "out");
        assert!((1000..=1100).contains(&n), "{n} entries left");
        let ids = smol::block_on(sink.write(&["last".to_owned()])).unwrap();
        assert_eq!(ids.len(), 1);
        assert!(ids[0].contains('-'));
    });
}

#[test]
fn a_write_that_cannot_succeed_fails_the_run() {
    with_server(|server| {
        let redis = Redis::open(&server.url()).unwrap();
        // A key that holds a string, not a stream.
        let () = redis::cmd("SET")
            .arg("out")
            .arg("x")
            .query(&mut crate::helpers::conn(server))
            .unwrap();
        let err = flowgate::from_iter(["a".to_owned()])
            .write_stream(StreamSink::new(&redis, "out").codec(Utf8))
            .run()
            .unwrap_err();
        let flowgate::Error::Stage { source, .. } = err else {
            panic!("{err}")
        };
        assert!(source.to_string().contains("WRONGTYPE"), "{source}");
    });
}
