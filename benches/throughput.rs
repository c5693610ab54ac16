//! Throughput of the standard pipeline workload: a source of `0..N` u64,
//! two maps and a wrapping sum, hops of 1024 items. flowgate as a user
//! writes it, beside hand-written async-channel pipelines on smol (one item
//! per send, and `Vec` chunks of 256) and a fused iterator.
//!
//! Run with: cargo bench --bench throughput

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "shared/workloads.rs"]
mod workloads;

const N: u64 = 1_000_000;
const CAPACITY: usize = 1024;

/// A named implementation of the workload: takes N, gives the checksum.
type Row = (&'static str, fn(u64) -> u64);

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
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(N));
    group.sample_size(20);
    for (name, run) in rows {
        assert_eq!(run(N), expected, "{name} gave a different checksum");
        group.bench_function(name, |b| b.iter(|| run(black_box(N))));
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
