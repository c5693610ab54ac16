//! `chunks` and `chunks_timeout`: batches of n, a partial batch flushed
//! after the wait and at the end, and bad sizes as typed errors.

use std::time::Duration;

use crate::support::{assert_accounted, watchdog};
use flowgate::Error;
use futures_lite::{StreamExt, stream};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn chunks_match_slice_chunks(
        items in prop::collection::vec(any::<u16>(), 0..3000),
        size in 1usize..300,
        chunk_limit in 1usize..64,
        timed in any::<bool>(),
    ) {
        let input = items.clone();
        let job = flowgate::from_iter(input).chunk_limit(chunk_limit);
        let job = if timed {
            job.chunks_timeout(size, Duration::from_secs(3600))
        } else {
            job.chunks(size)
        };
        let job = job.collect::<Vec<_>>();
        let control = job.control();
        let out = watchdog(move || job.run()).unwrap();
        let expected: Vec<Vec<u16>> = items.chunks(size).map(<[u16]>::to_vec).collect();
        prop_assert_eq!(out, expected);
        let report = control.report();
        assert_accounted(&report);
        prop_assert_eq!(report.stages[1].received, items.len() as u64);
        prop_assert_eq!(report.stages[1].emitted, items.len().div_ceil(size) as u64);
    }
}

#[test]
fn chunks_timeout_flushes_a_partial_chunk_after_the_wait() {
    // Three items come at once, then the source stalls until the test has
    // seen their batch: only the timer can have sent it on.
    let (release, stalled) = async_channel::bounded::<()>(1);
    let (seen_tx, seen_rx) = async_channel::bounded::<Vec<u32>>(8);
    let source = stream::iter(0..3u32).chain(stream::once_future(async move {
        let _ = stalled.recv().await;
        3
    }));
    let job = flowgate::from_stream(source)
        .chunks_timeout(100, Duration::from_millis(20))
        .for_each_async(move |batch| {
            let seen = seen_tx.clone();
            async move { seen.send(batch).await.unwrap() }
        });
    watchdog(move || {
        let ex = smol::Executor::new();
        smol::block_on(ex.run(async {
            let handle = job.spawn(&ex);
            assert_eq!(seen_rx.recv().await.unwrap(), [0, 1, 2]);
            release.close();
            assert_eq!(seen_rx.recv().await.unwrap(), [3]);
            handle.await.unwrap();
        }))
    });
}

#[test]
fn a_zero_wait_sends_what_is_ready() {
    let out: Vec<Vec<u8>> = watchdog(|| {
        flowgate::from_iter(0..10u8)
            .chunks_timeout(4, Duration::ZERO)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out.concat(), (0..10).collect::<Vec<u8>>());
    assert!(out.iter().all(|b| !b.is_empty() && b.len() <= 4));
}

#[test]
fn huge_sizes_and_waits_neither_allocate_up_front_nor_panic() {
    let out: Vec<Vec<u8>> = watchdog(|| {
        flowgate::from_iter(0..10u8)
            .chunks_timeout(usize::MAX, Duration::MAX)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, [(0..10).collect::<Vec<u8>>()]);
}

#[test]
fn batch_size_zero_is_a_typed_error() {
    for timed in [false, true] {
        let err = watchdog(move || {
            let p = flowgate::from_iter(0..3u8);
            let p = if timed {
                p.chunks_timeout(0, Duration::from_millis(1))
            } else {
                p.chunks(0)
            };
            p.name("batcher").count().run()
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::ZeroBatchSize { ref stage } if stage == "batcher"),
            "{err}"
        );
    }
}
