//! Runs named implementations of one workload as a criterion group.

use std::hint::black_box;

use criterion::{Criterion, Throughput};

/// A named implementation of a workload: takes N, gives a checksum.
pub type Row = (&'static str, fn(u64) -> u64);

/// Benchmarks every row on `n` items in the group `name`, after checking
/// that each row gives the `expected` checksum.
pub fn bench_rows(c: &mut Criterion, name: &str, n: u64, expected: u64, rows: &[Row]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n));
    group.sample_size(20);
    for &(row, run) in rows {
        assert_eq!(run(n), expected, "{row} gave a different checksum");
        group.bench_function(row, |b| b.iter(|| run(black_box(n))));
    }
    group.finish();
}
