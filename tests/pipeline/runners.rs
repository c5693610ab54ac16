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
