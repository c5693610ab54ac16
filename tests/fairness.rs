//! A hot pipeline does not starve other tasks on its thread.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::watchdog;

#[test]
fn a_hot_pipeline_does_not_starve_a_timer_on_the_same_thread() {
    watchdog(|| {
        let ex = smol::LocalExecutor::new();
        let processed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&processed);
        // An endless pipeline whose stages always have work.
        let hot = flowgate::from_iter(0u64..)
            .map(|x| x.wrapping_mul(3))
            .for_each(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .spawn_local(&ex);
        let fired = futures_lite::future::block_on(ex.run(async {
            smol::Timer::after(Duration::from_millis(10)).await;
            processed.load(Ordering::Relaxed)
        }));
        drop(hot);
        // The timer fired while the pipeline was running, not before it began.
        assert!(fired > 0, "the pipeline never ran");
    });
}

#[test]
fn an_always_ready_async_stage_yields_under_one_future() {
    // In one-future mode, every stage is polled from one task. A stage whose
    // futures are always ready must still hand control back regularly, or a
    // sibling future in the same `or` would never be polled.
    watchdog(|| {
        let processed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&processed);
        let hot = flowgate::from_stream(futures_lite::stream::repeat(1u64))
            .then(move |x| {
                counter.fetch_add(1, Ordering::Relaxed);
                async move { x }
            })
            .count();
        let winner = futures_lite::future::block_on(futures_lite::future::or(
            async {
                let _ = std::future::IntoFuture::into_future(hot).await;
                "pipeline"
            },
            async {
                smol::Timer::after(Duration::from_millis(10)).await;
                "timer"
            },
        ));
        assert_eq!(winner, "timer");
        assert!(processed.load(Ordering::Relaxed) > 0);
    });
}
