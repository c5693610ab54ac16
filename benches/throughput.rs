//! Throughput of the standard pipeline workload: a source of `0..N` u64,
//! two maps and a wrapping sum, hops of 1024 items. flowgate as a user
//! writes it, beside hand-written async-channel pipelines on smol (one item
//! per send, and `Vec` chunks of 256) and a fused iterator.
//!
//! Run with: cargo bench --bench throughput

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "shared/rows.rs"]
mod rows;

#[path = "shared/workloads.rs"]
mod workloads;

use rows::{bench_rows, Row};

const N: u64 = 1_000_000;
const CAPACITY: usize = 1024;

fn throughput(c: &mut Criterion) {
    let expected = workloads::fused(N);
    let rows: [Row; 4] = [
        ("flowgate", |n| {
            workloads::flowgate_pipeline(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT)
        }),
        ("async-channel-per-item", |n| {
            workloads::per_item(n, CAPACITY)
        }),
        ("async-channel-batched-256", |n| {
            workloads::batched_256(n, CAPACITY)
        }),
        ("fused-iterator", workloads::fused),
    ];
    bench_rows(c, "throughput", N, expected, &rows);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
