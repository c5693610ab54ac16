//! Bad settings give a typed error naming the stage; they never panic or hang.

use crate::support;

use crate::support::watchdog;
use std::future::IntoFuture;

use flowgate::Error;

#[test]
fn zero_capacity_names_the_stage() {
    let err = watchdog(|| {
        flowgate::from_iter(0..10u32)
            .map(|x| x + 1)
            .name("inc")
            .capacity(0)
            .count()
            .run()
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::ZeroCapacity { stage } if stage == "inc"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`inc`"), "{err}");
}

#[test]
fn zero_chunk_limit_is_an_error() {
    let err = watchdog(|| flowgate::from_iter(0..10u32).chunk_limit(0).count().run()).unwrap_err();
    assert!(
        matches!(&err, Error::ZeroChunkLimit { stage } if stage == "source"),
        "{err:?}"
    );
}

#[test]
fn zero_threads_is_an_error() {
    let err = watchdog(|| flowgate::from_iter(0..10u32).count().run_on_threads(0)).unwrap_err();
    assert!(matches!(err, Error::ZeroThreads), "{err:?}");
}

#[test]
fn the_first_bad_setting_is_reported() {
    let err = watchdog(|| {
        flowgate::from_iter(0..10u32)
            .capacity(0)
            .map(|x| x)
            .chunk_limit(0)
            .count()
            .run()
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::ZeroCapacity { stage } if stage == "source"),
        "{err:?}"
    );
}

#[test]
fn a_bad_setting_fails_every_way_of_running() {
    use futures_lite::StreamExt;

    let bad = || flowgate::from_iter(0..10u32).capacity(0);
    watchdog(move || {
        assert!(bad().count().run().is_err());
        assert!(futures_lite::future::block_on(bad().count().into_future()).is_err());
        let ex = smol::LocalExecutor::new();
        assert!(futures_lite::future::block_on(ex.run(bad().count().spawn_local(&ex))).is_err());
        let all: Vec<_> = futures_lite::future::block_on(bad().into_stream().collect());
        assert_eq!(all.len(), 1);
        assert!(matches!(all[0], Err(Error::ZeroCapacity { .. })));
    });
}

#[test]
fn a_chunk_limit_above_the_capacity_still_delivers_everything() {
    let out: Vec<u32> = watchdog(|| {
        flowgate::from_iter(0..1000u32)
            .capacity(3)
            .chunk_limit(1000)
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, (0..1000).collect::<Vec<_>>());
}

#[test]
fn too_many_threads_is_an_error_before_any_thread_starts() {
    let err = flowgate::from_iter(0..3u8)
        .count()
        .run_on_threads(usize::MAX)
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyThreads { threads: usize::MAX, max } if max == flowgate::MAX_THREADS),
        "{err:?}"
    );
    assert_eq!(
        support::watchdog(|| flowgate::from_iter(0..3u8)
            .count()
            .run_on_threads(flowgate::MAX_THREADS))
        .unwrap(),
        3
    );
}

#[test]
fn huge_settings_are_not_allocated_up_front() {
    // Found by tests/fuzz_config.rs: a chunk limit of 2^40 under a huge
    // capacity once reserved 2^40 slots per chunk, and a consumer capacity
    // of 2^40 sized its queue up front; both aborted on the allocation.
    let n = watchdog(|| {
        flowgate::from_iter(0..10_000u32)
            .capacity(usize::MAX)
            .chunk_limit(1 << 40)
            .map(|x| x + 1)
            .capacity(1 << 40)
            .chunk_limit(usize::MAX)
            .count()
            .run()
    })
    .unwrap();
    assert_eq!(n, 10_000);
    let reply = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let (mut p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x)
            .capacity(1 << 40)
            .spawn_local(&ex);
        assert_eq!(p.capacity(), Some(flowgate::MAX_CONSUMER_CAPACITY));
        futures_lite::future::block_on(ex.run(p.send(7)))
    });
    assert_eq!(reply.unwrap(), 7);
}
