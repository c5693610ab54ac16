//! Closing cascades downstream and drains every item in flight.

use crate::support;

use std::time::Duration;

use crate::support::watchdog;
use futures_lite::StreamExt;

#[test]
fn close_drains_in_flight_items() {
    // The producer sends everything, then closes its channel while most items
    // are still inside the pipeline; every one of them reaches the sink.
    let got = watchdog(|| {
        let (tx, rx) = async_channel::bounded::<u32>(16);
        let feeder = std::thread::spawn(move || {
            for i in 0..10_000 {
                tx.send_blocking(i).unwrap();
            }
            // `tx` drops here: the source's stream ends.
        });
        let out: Vec<u32> = flowgate::from_stream(rx)
            .capacity(8)
            .map(|x| x * 2)
            .capacity(8)
            .then(|x| async move {
                if x % 1000 == 0 {
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
                x
            })
            .collect()
            .run()
            .unwrap();
        feeder.join().unwrap();
        out
    });
    assert_eq!(got, (0..10_000).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn an_empty_source_finishes_with_the_sink_initial_value() {
    let (sum, items): (u64, Vec<u8>) = watchdog(|| {
        let sum = flowgate::from_iter(std::iter::empty::<u64>())
            .map(|x| x + 1)
            .fold(7, |a, x| a + x)
            .run()
            .unwrap();
        let items = flowgate::from_iter(Vec::<u8>::new())
            .collect()
            .run()
            .unwrap();
        (sum, items)
    });
    assert_eq!((sum, items), (7, vec![]));
}

#[test]
fn dropping_the_output_stream_stops_an_endless_source() {
    // If dropping the stream did not stop the stages, the endless source
    // would keep the executor busy and `ex.run` below would never finish.
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let first: Vec<u64> = futures_lite::future::block_on(ex.run(async {
            let mut out = flowgate::from_iter(0u64..).map(|x| x + 1).into_stream();
            let mut first = Vec::new();
            while first.len() < 3 {
                first.push(out.next().await.unwrap().unwrap());
            }
            first
        }));
        assert_eq!(first, [1, 2, 3]);
    });
}

#[test]
fn dropping_a_handle_cancels_the_pipeline() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let handle = flowgate::from_iter(0u64..)
            .map(|x| x + 1)
            .count()
            .spawn_local(&ex);
        // The endless pipeline is always runnable: let it get going.
        for _ in 0..100 {
            assert!(ex.try_tick(), "the pipeline stopped on its own");
        }
        drop(handle);
        // Every stage task was cancelled, so the executor runs dry; an
        // endless stage left running would keep it busy until the watchdog.
        support::settle(&ex);
        assert!(!ex.try_tick());
    });
}

#[test]
fn a_detached_pipeline_runs_to_its_end() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (tx, rx) = async_channel::bounded::<u64>(1);
        // Nobody awaits the pipeline; its sink reports the last item.
        flowgate::from_iter(1..=100u64)
            .for_each_async(move |x| {
                let tx = tx.clone();
                async move {
                    if x == 100 {
                        tx.send(x).await.unwrap();
                    }
                }
            })
            .spawn_local(&ex)
            .detach();
        let last = futures_lite::future::block_on(ex.run(rx.recv())).unwrap();
        assert_eq!(last, 100);
    });
}
