//! With a sink that stops taking items, the source stops being pulled: the
//! items in the pipeline stay within the hops' capacities plus the chunks
//! the stages hold.
//!
//! The pipeline runs on a local executor that the test ticks by hand until
//! no task can move, so every check sees the pipeline at rest, with no sleep.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{settle, watchdog};

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

mod random {
    //! The bound under random shapes: live items (counted by the items
    //! themselves) are sampled at every pull from the source and every time
    //! the pipeline comes to rest. `FLOWGATE_BOUND_STATS=1` prints each
    //! case's peak against its bound.

    use super::support::settle;
    use super::support::tracked::{Live, Tracked};
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Map,
        Then,
        Filter,
    }

    #[derive(Debug, Clone)]
    struct Case {
        ops: Vec<Op>,
        /// (capacity, chunk limit) of each hop, the source's first.
        hops: Vec<(usize, usize)>,
        /// How many items the sink may take in each round.
        bursts: Vec<usize>,
    }

    fn case() -> impl Strategy<Value = Case> {
        prop::collection::vec(
            prop_oneof![Just(Op::Map), Just(Op::Then), Just(Op::Filter)],
            0..5,
        )
        .prop_flat_map(|ops| {
            let hops = prop::collection::vec(
                (prop_oneof![1..8usize, 8..300usize], 1..100usize),
                ops.len() + 1,
            );
            let bursts = prop::collection::vec(0..200usize, 1..30);
            (Just(ops), hops, bursts)
        })
        .prop_map(|(ops, hops, bursts)| Case { ops, hops, bursts })
    }

    /// The documented bound: Σ capacities, plus for each stage the chunk it
    /// is draining and the chunk it is filling (each hop's effective chunk
    /// limit counted once at each end).
    fn bound(hops: &[(usize, usize)]) -> i64 {
        let caps: usize = hops.iter().map(|h| h.0).sum();
        let chunks: usize = hops.iter().map(|&(c, l)| l.min(c)).sum();
        (caps + 2 * chunks) as i64
    }

    fn run(case: Case) -> Result<(), TestCaseError> {
        let live = Live::new();
        let peak = Arc::new(AtomicI64::new(0));
        let (items, seen) = (live.clone(), Arc::clone(&peak));
        let source = (0u64..).map(move |v| {
            seen.fetch_max(items.count(), Ordering::SeqCst);
            items.item(v)
        });
        let (gate_tx, gate) = async_channel::unbounded::<()>();
        let ex = smol::LocalExecutor::new();
        let (capacity, limit) = case.hops[0];
        let mut p = flowgate::from_iter(source)
            .capacity(capacity)
            .chunk_limit(limit);
        for (op, &(capacity, limit)) in case.ops.iter().zip(&case.hops[1..]) {
            p = match op {
                Op::Map => p.map(|t: Tracked| t),
                Op::Then => p.then(|t| async move {
                    if t.value % 3 == 0 {
                        futures_lite::future::yield_now().await;
                    }
                    t
                }),
                Op::Filter => p.filter(|t| t.value % 5 != 0),
            }
            .capacity(capacity)
            .chunk_limit(limit);
        }
        let handle = p
            .for_each_async(move |t| {
                let gate = gate.clone();
                async move {
                    let _ = gate.recv().await;
                    drop(t);
                }
            })
            .spawn_local(&ex);
        let bound = bound(&case.hops);
        for &burst in &case.bursts {
            settle(&ex);
            peak.fetch_max(live.count(), Ordering::SeqCst);
            let seen = peak.load(Ordering::SeqCst);
            prop_assert!(seen <= bound, "{} live items, bound {}", seen, bound);
            for _ in 0..burst {
                gate_tx.try_send(()).unwrap();
            }
        }
        if std::env::var_os("FLOWGATE_BOUND_STATS").is_some() {
            eprintln!("peak {} bound {}", peak.load(Ordering::SeqCst), bound);
        }
        drop(handle);
        settle(&ex);
        prop_assert_eq!(live.count(), 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: super::support::scaled(256, 2_000),
            ..ProptestConfig::default()
        })]

        #[test]
        fn live_items_stay_within_the_capacities_and_the_chunks_in_hand(case in case()) {
            super::support::watchdog(move || run(case))?;
        }
    }
}
