//! Throughput of the standard pipeline workload: a source of `0..N` u64,
//! two maps and a wrapping sum, hops of 1024 items. flowgate as a user
//! writes it (fused into one task), with its source on a hop of its own,
//! and unfused (a task per stage), beside hand-written pipelines:
//! async-channel on smol (one item per send, `Vec` chunks of 256, and the
//! same with their buffers reused), crossbeam-channel, std's
//! `sync_channel` and a `Mutex` + `Condvar` queue on one OS thread per
//! stage, tokio's mpsc on a current-thread runtime, and a fused iterator,
//! with and without a `black_box` per stage.
//!
//! Run with: cargo bench --bench throughput

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "shared/rows.rs"]
mod rows;

#[path = "shared/workloads.rs"]
mod workloads;

#[path = "shared/threads.rs"]
mod threads;

use rows::{Row, bench_rows};

const N: u64 = 1_000_000;
const CAPACITY: usize = 1024;

fn throughput(c: &mut Criterion) {
    let rows: [Row; 11] = [
        ("flowgate", |n| {
            workloads::flowgate_pipeline(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT)
        }),
        ("flowgate-source-hop", |n| {
            workloads::flowgate_source_hop(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT)
        }),
        ("flowgate-unfused", |n| {
            workloads::flowgate_unfused(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT)
        }),
        ("async-channel-per-item", |n| {
            workloads::per_item(n, CAPACITY)
        }),
        ("async-channel-batched-256", |n| {
            workloads::batched_256(n, CAPACITY)
        }),
        ("async-channel-batched-in-place", |n| {
            workloads::batched_in_place(n, CAPACITY)
        }),
        ("crossbeam-threads", |n| {
            threads::crossbeam_threads(n, CAPACITY)
        }),
        ("std-mpsc-threads", |n| {
            threads::std_mpsc_threads(n, CAPACITY)
        }),
        ("tokio-mpsc", |n| threads::tokio_mpsc(n, CAPACITY)),
        ("fused-iterator-black-box", workloads::fused_black_box),
        ("fused-iterator", workloads::fused),
    ];
    bench_rows(c, "throughput", N, workloads::fused(N), &rows);
    // About 1.4 µs per item: a tenth of the items keeps the run short.
    let slow: [Row; 1] = [("mutex-condvar-threads", |n| {
        threads::mutex_condvar_threads(n, CAPACITY)
    })];
    bench_rows(
        c,
        "throughput-locked",
        N / 10,
        workloads::fused(N / 10),
        &slow,
    );
}

criterion_group!(benches, throughput);
criterion_main!(benches);
