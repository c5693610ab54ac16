//! Entries per second end to end on a loopback Redis: a producer writes
//! with `XADD` while a consumer of a group reads and acknowledges, through
//! a flowgate pipeline (one `XREADGROUP` and one `XACK` per chunk) or one
//! entry per round trip, the baseline.
//!
//! Run with: cargo bench -p flowgate-redis --bench streams
//! It starts its own `redis-server` on a free loopback port (the Debian
//! package `redis-server`), keeping nothing on disk, so that the figures
//! are of the network path; without one it prints a notice and measures
//! nothing.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/support/server.rs"]
mod server;

#[path = "../tests/support/throughput.rs"]
mod throughput;

const N: u64 = 20_000;

fn streams(c: &mut Criterion) {
    let Some(server) = server::Server::start_in_memory() else {
        return;
    };
    let url = server.url();
    let mut group = c.benchmark_group("redis-streams");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(N));
    group.bench_function("flowgate-chunked", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| Duration::from_secs_f64(throughput::chunked(&url, N).seconds))
                .sum()
        });
    });
    group.bench_function("per-entry-xreadgroup-count-1", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| Duration::from_secs_f64(throughput::per_entry(&url, N).seconds))
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, streams);
criterion_main!(benches);
