//! With a sink that stops taking items, the source stops being pulled: the
//! items in the pipeline stay within the hops' capacities plus the chunks
//! the stages hold.
//!
//! The pipeline runs on a local executor that the test ticks by hand until
//! no task can move, so every check sees the pipeline at rest, with no sleep.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{settle, watchdog};

/// Runs a source -> map -> map -> gated sink pipeline and checks the bound
/// after every release of the gate.
fn check_bound(capacities: [usize; 3], chunk_limits: [usize; 3]) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let source = (0..u64::MAX).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    // The sink takes one item per token in the gate.
    let (gate_tx, gate_rx) = async_channel::bounded::<()>(1);
    let taken = Arc::new(AtomicUsize::new(0));
    let sink_taken = Arc::clone(&taken);

    let ex = smol::LocalExecutor::new();
    let handle = flowgate::from_iter(source)
        .capacity(capacities[0])
        .chunk_limit(chunk_limits[0])
        .map(|x| x + 1)
        .capacity(capacities[1])
        .chunk_limit(chunk_limits[1])
        .map(|x| x * 2)
        .capacity(capacities[2])
        .chunk_limit(chunk_limits[2])
        .for_each_async(move |_| {
            let gate = gate_rx.clone();
            let taken = Arc::clone(&sink_taken);
            async move {
                let _ = gate.recv().await;
                taken.fetch_add(1, Ordering::SeqCst);
            }
        })
        .spawn_local(&ex);

    // Each hop holds at most its capacity; beyond that, the chunk each
    // stage is filling and the chunk each stage is draining. The effective
    // chunk limit of a hop is at most its capacity.
    let limits: Vec<usize> = (0..3).map(|i| chunk_limits[i].min(capacities[i])).collect();
    let bound: usize = capacities.iter().sum::<usize>() + 2 * limits.iter().sum::<usize>();

    let mut last = 0;
    for round in 0..50 {
        settle(&ex);
        let in_flight = pulled.load(Ordering::SeqCst) - taken.load(Ordering::SeqCst);
        assert!(
            in_flight <= bound,
            "round {round}: {in_flight} items in flight, bound {bound} \
             (capacities {capacities:?}, chunk limits {chunk_limits:?})"
        );
        // At rest the source is not being pulled: settling again moves nothing.
        let now = pulled.load(Ordering::SeqCst);
        settle(&ex);
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            now,
            "round {round}: the source ran on"
        );
        assert!(now >= last);
        last = now;
        gate_tx.try_send(()).unwrap();
    }
    assert!(
        taken.load(Ordering::SeqCst) >= 49,
        "the sink was released 50 times"
    );
    drop(handle);
}

#[test]
fn a_stalled_sink_stops_the_source() {
    watchdog(|| check_bound([1024, 1024, 1024], [256, 256, 256]));
}

#[test]
fn the_bound_holds_for_small_and_uneven_hops() {
    watchdog(|| {
        check_bound([1, 1, 1], [1, 1, 1]);
        check_bound([3, 17, 64], [2, 100, 8]);
        check_bound([100, 5, 40], [7, 5, 64]);
    });
}

#[test]
fn memory_stays_bounded_over_a_long_run() {
    // A slow sink and a fast, endless source: after many items the number in
    // flight is still within the bound.
    watchdog(|| {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let seen = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let (seen2, max2, pulled2) = (
            Arc::clone(&seen),
            Arc::clone(&max_in_flight),
            Arc::clone(&pulled),
        );
        let total = flowgate::from_iter(0..200_000u64)
            .inspect(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .capacity(64)
            .chunk_limit(16)
            .map(|x| x ^ 1)
            .capacity(64)
            .chunk_limit(16)
            .then(move |x| {
                let done = seen2.fetch_add(1, Ordering::SeqCst) + 1;
                max2.fetch_max(pulled2.load(Ordering::SeqCst) - done, Ordering::SeqCst);
                async move {
                    if x % 64 == 0 {
                        futures_lite::future::yield_now().await;
                    }
                    x
                }
            })
            .count()
            .run_on_threads(2)
            .unwrap();
        assert_eq!(total, 200_000);
        // Two hops of 64, chunks of 16 at each end of each hop.
        let max = max_in_flight.load(Ordering::SeqCst);
        assert!(max <= 64 + 64 + 4 * 16, "{max} items were in flight");
    });
}
