//! The cost of the metrics: the standard pipeline workload with the timing
//! of waits on (the default) and off (`Pipeline::metrics(false)`), in one
//! criterion group so the two are measured in the same run.
//!
//! Run with: cargo bench --bench metrics

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "shared/rows.rs"]
mod rows;

#[path = "shared/workloads.rs"]
mod workloads;

use rows::{Row, bench_rows};

const N: u64 = 1_000_000;
const CAPACITY: usize = 1024;

fn metrics(c: &mut Criterion) {
    let expected = workloads::fused(N);
    let rows: [Row; 2] = [
        ("metrics-on", |n| {
            workloads::flowgate_metered(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT, true)
        }),
        ("metrics-off", |n| {
            workloads::flowgate_metered(n, CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT, false)
        }),
    ];
    bench_rows(c, "metrics", N, expected, &rows);
}

criterion_group!(benches, metrics);
criterion_main!(benches);
