//! Memory and leaks, counted by a counting global allocator: once a
//! pipeline has warmed up, the number of live allocations does not grow
//! over 1,000,000 items, and after the run every allocation it made has
//! been returned. Three runs: map, filter and batches on one thread, async
//! and parallel stages on two threads, and a pipelined consumer.
//!
//! This binary holds one test, so no other test allocates while it counts.

#[path = "../support/mod.rs"]
mod support;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::sync::{Arc, Mutex};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made and not yet returned, by the whole process.
fn live_allocations() -> i64 {
    let stats = GLOBAL.stats();
    stats.allocations as i64 - stats.deallocations as i64
}

/// How many threads this process has now (Linux: `Threads:` in
/// `/proc/self/status`), or `None` where that cannot be read.
fn threads_now() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the threads a run started have left the process.
///
/// `run_on_threads` joins its helper threads before it returns, but a
/// joined thread still runs its thread-local destructors, which free
/// memory, on its way out. Counting before they are done would see those
/// allocations as not returned; the thread count says when they are done.
/// A thread that never leaves is a hang, caught by the watchdog.
fn wait_for_threads_to_leave(before: Option<usize>) {
    let Some(before) = before else { return };
    while threads_now().is_some_and(|now| now > before) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

const ITEMS: u64 = 1_000_000;
/// The sink samples the live allocations every this many items.
const EVERY: u64 = 25_000;
/// How far the later median may sit above the earlier: samples move with
/// the chunk buffers and batches in flight at that moment (a band of about
/// a dozen on one thread). The two medians are about 500,000 items apart,
/// so a leak of one allocation per 5,000 items would add 100; any leak that
/// outlives the run is caught exactly by the count after it.
const JITTER: i64 = 64;

/// One scenario: its name and a run of `ITEMS` items whose sink calls
/// `sample` on every item.
type Scenario = (&'static str, fn(Arc<dyn Fn(u64) + Send + Sync>) -> u64);

fn scenarios() -> Vec<Scenario> {
    vec![
        ("map, filter and batches, one thread", |sample| {
            flowgate::from_iter(0..ITEMS)
                .map(|x| x ^ 1)
                .filter(|_| true)
                .chunks(100)
                .flat_map(|batch| batch)
                .fold(0, move |n, x| {
                    sample(x);
                    n + 1
                })
                .run()
                .unwrap()
        }),
        ("async and parallel stages, two threads", |sample| {
            flowgate::from_iter(0..ITEMS)
                .then(|x| async move { x ^ 1 })
                .par_map(2, |x| x ^ 1)
                .fold(0, move |n, x| {
                    sample(x);
                    n + 1
                })
                .run_on_threads(2)
                .unwrap()
        }),
        ("pipelined consumer", |sample| {
            let ex = smol::LocalExecutor::new();
            let (p, consumer) = flowgate::Consumer::new(0u64, move |n: &mut u64, x: u64| {
                sample(x);
                *n += 1;
                x
            })
            .spawn_local(&ex);
            let (mut tx, replies) = p.pipelined(1024).unwrap();
            drop(p);
            futures_lite::future::block_on(ex.run(async move {
                let send = async move {
                    for x in 0..ITEMS {
                        tx.send(x).await.unwrap();
                    }
                    tx.close().await;
                };
                let read = futures_lite::StreamExt::for_each(replies, |(_, r)| {
                    r.unwrap();
                });
                futures_lite::future::zip(send, read).await;
                consumer.await.unwrap()
            }))
        }),
    ]
}

#[test]
fn live_allocations_stay_flat_and_all_are_returned() {
    // Everything is measured on the watchdog's thread, before it reports.
    let lines = support::watchdog_for(std::time::Duration::from_secs(120), || {
        let mut lines = Vec::new();
        for (name, run) in scenarios() {
            // A short run first, so that lazily made globals (the executor's
            // thread-locals, the timer thread) exist before counting.
            let warm: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(|_| {});
            run(warm);
            // Made before counting, with room for every sample, so that
            // the test's own bookkeeping allocates nothing during the run.
            let samples = Arc::new(Mutex::new(Vec::with_capacity(64)));
            let kept = Arc::clone(&samples);
            // Read before the count: the warm-up's threads may still be on
            // their way out, and then they are not waited for below.
            let threads = threads_now();
            let before = live_allocations();
            let sample: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |x| {
                if x % EVERY == 0 {
                    let live = live_allocations();
                    kept.lock().unwrap().push(live);
                }
            });
            let done = run(sample);
            assert_eq!(done, ITEMS, "{name}");
            wait_for_threads_to_leave(threads);
            let after = live_allocations();
            let samples = std::mem::take(&mut *samples.lock().unwrap());
            // The first quarter is the warm-up: chunk buffers, spares and
            // batches in flight reach their working number (later on two
            // threads). After it, the last quarter's median must not rise
            // above the second quarter's beyond the jitter of buffers in
            // transit; a leak would rise with every item. Medians, because
            // one sample can catch a burst of batches in flight on the other
            // thread.
            let median = |part: &[i64]| {
                let mut part = part.to_vec();
                part.sort_unstable();
                part[part.len() / 2]
            };
            let n = samples.len();
            let (first, last) = (
                median(&samples[n / 4..n / 2]),
                median(&samples[3 * n / 4..]),
            );
            assert!(
                last <= first + JITTER,
                "{name}: live allocations grew from {first} to {last}: {samples:?}"
            );
            // Every thread the runs started has left, so nothing is still
            // being freed: the count must be back where it was before.
            assert!(
                after <= before,
                "{name}: expected every allocation of the run returned, but {} \
                 were still live after it ({before} before, {after} after)",
                after - before
            );
            lines.push(format!(
                "{name}: {} samples; live allocations {before} before, {} at the first \
                 sample, median {first} in the second quarter and {last} in the last, {after} after",
                samples.len(),
                samples[0]
            ));
        }
        lines
    });
    for line in lines {
        eprintln!("{line}");
    }
}
