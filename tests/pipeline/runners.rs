//! Every way of running a pipeline gives the same result: `run`,
//! `run_on_threads`, `spawn` on each kind of smol executor, and one future
//! under smol, `block_on` and tokio.

use crate::support;

use std::future::IntoFuture;
use std::time::Duration;

use crate::support::watchdog;
use flowgate::Job;

const N: u64 = 50_000;

fn job() -> Job<u64> {
    flowgate::from_iter(0..N)
        .map(|x| x.wrapping_mul(3))
        .filter(|x| x % 7 != 0)
        .then(|x| async move {
            if x % 4096 == 0 {
                futures_lite::future::yield_now().await;
            }
            x ^ 0x5555
        })
        .fold(0u64, u64::wrapping_add)
}

fn expected() -> u64 {
    (0..N)
        .map(|x| x.wrapping_mul(3))
        .filter(|x| x % 7 != 0)
        .map(|x| x ^ 0x5555)
        .fold(0u64, u64::wrapping_add)
}

#[test]
fn run_blocks_until_the_sink_is_done() {
    assert_eq!(watchdog(|| job().run()).unwrap(), expected());
}

#[test]
fn run_on_threads_gives_the_same_result() {
    for threads in [1, 2, 4] {
        assert_eq!(
            watchdog(move || job().run_on_threads(threads)).unwrap(),
            expected()
        );
    }
}

#[test]
fn spawn_on_an_app_executor_beside_other_tasks() {
    let (sum, other) = watchdog(|| {
        let ex = smol::Executor::new();
        let other = ex.spawn(async { 40 + 2 });
        let handle = job().spawn(&ex);
        futures_lite::future::block_on(ex.run(async { (handle.await, other.await) }))
    });
    assert_eq!((sum.unwrap(), other), (expected(), 42));
}

#[test]
fn spawn_local_and_global() {
    let local = watchdog(|| {
        let ex = smol::LocalExecutor::new();
        futures_lite::future::block_on(ex.run(job().spawn_local(&ex)))
    });
    assert_eq!(local.unwrap(), expected());
    let global = watchdog(|| smol::block_on(job().spawn_global()));
    assert_eq!(global.unwrap(), expected());
}

#[test]
fn one_future_under_block_on() {
    let sum = watchdog(|| futures_lite::future::block_on(job().into_future()));
    assert_eq!(sum.unwrap(), expected());
}

#[tokio::test(flavor = "current_thread")]
async fn one_future_inside_a_tokio_runtime() {
    // The stages use tokio's timer, so the pipeline really runs as tokio code.
    let job = flowgate::from_iter(0..200u32)
        .then(|x| async move {
            if x % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            x * 2
        })
        .collect::<Vec<_>>();
    let out = tokio::time::timeout(support::WATCHDOG, job)
        .await
        .expect("hung")
        .unwrap();
    assert_eq!(out, (0..200).map(|x| x * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_future_inside_a_multi_thread_tokio_runtime() {
    let sum = tokio::time::timeout(support::WATCHDOG, job().into_future())
        .await
        .expect("hung")
        .unwrap();
    assert_eq!(sum, expected());
}

#[test]
fn async_stages_can_use_smol_timers_under_run() {
    let out: Vec<u8> = watchdog(|| {
        flowgate::from_iter(0..3u8)
            .then(|x| async move {
                smol::Timer::after(Duration::from_millis(2)).await;
                x
            })
            .collect()
            .run()
    })
    .unwrap();
    assert_eq!(out, [0, 1, 2]);
}

/// The threads (name and id) a CPU-bound `par_map(2, ..)` ran its items
/// on, its stages spawned on a tokio runtime of two workers.
fn tokio_threads(items: u64) -> std::collections::HashSet<(String, std::thread::ThreadId)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .build()
        .unwrap();
    let (names, seen) = flowgate::async_channel::unbounded();
    let handle = flowgate::from_iter(0..items)
        .par_map(2, move |x| {
            let thread = std::thread::current();
            let _ = names.try_send((thread.name().unwrap_or("").to_owned(), thread.id()));
            // About 50 µs of work.
            let until = std::time::Instant::now() + Duration::from_micros(50);
            let mut h = x;
            while std::time::Instant::now() < until {
                h = h.wrapping_mul(31).wrapping_add(7);
            }
            h
        })
        .count()
        .spawn_with(|stage| {
            rt.spawn(stage);
        });
    assert_eq!(rt.block_on(handle).unwrap(), items as usize);
    std::iter::from_fn(|| seen.try_recv().ok()).collect()
}

#[test]
fn spawn_with_runs_the_stages_on_the_runtime_s_own_threads() {
    let threads = watchdog(|| tokio_threads(200));
    assert!(!threads.is_empty());
    assert!(
        threads.iter().all(|(name, _)| name == "tokio-worker"),
        "{threads:?}"
    );
}

#[test]
fn spawn_with_spreads_the_stages_over_more_than_one_tokio_worker() {
    // Two CPU-bound workers on two runtime threads: tokio's idle thread
    // takes one of them. A run that happened to keep both on one thread
    // is tried again, so the test does not rest on one schedule.
    let spread = watchdog(|| (0..5).any(|_| tokio_threads(2000).len() >= 2));
    assert!(spread, "every run kept its stages on one tokio thread");
}

#[test]
fn spawn_with_cancels_when_the_handle_is_dropped() {
    watchdog(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let source = flowgate::from_iter(0u64..);
        let control = source.control();
        let handle = source.map(|x| x + 1).count().spawn_with(|stage| {
            rt.spawn(stage);
        });
        while control.report().delivered() < 1000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(handle);
        while !control.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let report = control.report();
        assert_eq!(report.state, flowgate::State::Cancelled);
        assert!(report.is_balanced(), "{report}");
    });
}
