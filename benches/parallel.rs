//! Parallel stages.
//!
//! - `parallel/timers`: 100,000 async items, each waiting on a 1 ms timer,
//!   through an ordered stage of 256 workers (and, for comparison, the
//!   unordered and keyed forms). The target is 1.5 × the ideal of
//!   100,000 / 256 ms = 391 ms.
//! - `parallel/cpu`: CPU-bound sync work through `par_map` with 1 and 2
//!   workers on the 2-thread executor. The target is 2 workers ≥ 1.6 × 1.
//! - `parallel/tokio`: the same `par_map(2, ..)` with its stages spawned on
//!   a tokio runtime (`Job::spawn_with`) of 1 and of 2 worker threads: the
//!   speed-up that `.await` under tokio, one future, cannot give.
//!
//! Run with: cargo bench --bench parallel

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};

const TIMER_ITEMS: u64 = 100_000;
const TIMER_WORKERS: usize = 256;
const CPU_ITEMS: u64 = 20_000;

async fn tick(x: u64) -> u64 {
    smol::Timer::after(Duration::from_millis(1)).await;
    x
}

/// About 10 µs of arithmetic that the compiler cannot skip.
fn spin(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..10_000 {
        h = h
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    h
}

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parallel/timers");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(TIMER_ITEMS));
    let expected: u64 = (0..TIMER_ITEMS).sum();
    group.bench_function("ordered-256", |b| {
        b.iter(|| {
            let sum = flowgate::from_iter(0..TIMER_ITEMS)
                .par_then(TIMER_WORKERS, tick)
                .fold(0u64, |a, x| a + x)
                .run()
                .unwrap();
            assert_eq!(sum, expected);
        })
    });
    group.bench_function("unordered-256", |b| {
        b.iter(|| {
            let sum = flowgate::from_iter(0..TIMER_ITEMS)
                .par_then_unordered(TIMER_WORKERS, tick)
                .fold(0u64, |a, x| a + x)
                .run()
                .unwrap();
            assert_eq!(sum, expected);
        })
    });
    group.bench_function("by-key-256", |b| {
        b.iter(|| {
            let sum = flowgate::from_iter(0..TIMER_ITEMS)
                .par_then_by_key(TIMER_WORKERS, |x| x % 1024, tick)
                .fold(0u64, |a, x| a + x)
                .run()
                .unwrap();
            assert_eq!(sum, expected);
        })
    });
    group.finish();
}

/// A group of CPU-bound runs of `CPU_ITEMS` items, and the checksum each
/// run must give.
fn cpu_group<'a>(c: &'a mut Criterion, name: &str) -> (BenchmarkGroup<'a, WallTime>, u64) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(CPU_ITEMS));
    (group, (0..CPU_ITEMS).map(spin).fold(0, |a, x| a ^ x))
}

fn cpu(c: &mut Criterion) {
    let (mut group, expected) = cpu_group(c, "parallel/cpu");
    for workers in [1, 2] {
        group.bench_with_input(
            BenchmarkId::new("par_map-2-threads", workers),
            &workers,
            |b, &w| {
                b.iter(|| {
                    let out = flowgate::from_iter(0..CPU_ITEMS)
                        .par_map(w, spin)
                        .fold(0u64, |a, x| a ^ x)
                        .run_on_threads(2)
                        .unwrap();
                    assert_eq!(black_box(out), expected);
                })
            },
        );
    }
    group.bench_function("map-1-thread", |b| {
        b.iter(|| {
            let out = flowgate::from_iter(0..CPU_ITEMS)
                .map(spin)
                .fold(0u64, |a, x| a ^ x)
                .run()
                .unwrap();
            assert_eq!(black_box(out), expected);
        })
    });
    group.finish();
}

fn tokio_workers(c: &mut Criterion) {
    let (mut group, expected) = cpu_group(c, "parallel/tokio");
    for threads in [1, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .build()
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("par_map-2-spawn_with", threads),
            &threads,
            |b, _| {
                b.iter(|| {
                    let handle = flowgate::from_iter(0..CPU_ITEMS)
                        .par_map(2, spin)
                        .fold(0u64, |a, x| a ^ x)
                        .spawn_with(|stage| {
                            rt.spawn(stage);
                        });
                    assert_eq!(black_box(rt.block_on(handle).unwrap()), expected);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, timers, cpu, tokio_workers);
criterion_main!(benches);
