//! Throughput of the standard workload: a source of `0..N` u64, two maps and
//! a wrapping sum, hops of 1024 items. flowgate as a user writes it, beside
//! hand-written async-channel pipelines on smol (one item per send, and
//! `Vec` chunks of 256).
//!
//! Run with: cargo bench --bench throughput

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_lite::future;
use smol::LocalExecutor;

const N: u64 = 1_000_000;

/// A named implementation of the workload: takes N, gives the checksum.
type Row = (&'static str, fn(u64) -> u64);
const CAPACITY: usize = 1024;

fn flowgate_sum(n: u64) -> u64 {
    flowgate::from_iter(0..n)
        .map(|x| x.wrapping_mul(3))
        .map(|x| x ^ 0x5555)
        .fold(0u64, u64::wrapping_add)
        .run()
        .unwrap()
}

fn per_item(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (tx0, rx0) = async_channel::bounded::<u64>(CAPACITY);
    let (tx1, rx1) = async_channel::bounded::<u64>(CAPACITY);
    let (tx2, rx2) = async_channel::bounded::<u64>(CAPACITY);
    ex.spawn(async move {
        for x in 0..n {
            tx0.send(x).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx0.recv().await {
            tx1.send(x.wrapping_mul(3)).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx1.recv().await {
            tx2.send(x ^ 0x5555).await.unwrap();
        }
    })
    .detach();
    future::block_on(ex.run(async move {
        let mut sum = 0u64;
        while let Ok(x) = rx2.recv().await {
            sum = sum.wrapping_add(x);
        }
        sum
    }))
}

fn batched_256(n: u64) -> u64 {
    const CHUNK: usize = 256;
    let ex = LocalExecutor::new();
    let slots = CAPACITY / CHUNK;
    let (tx0, rx0) = async_channel::bounded::<Vec<u64>>(slots);
    let (tx1, rx1) = async_channel::bounded::<Vec<u64>>(slots);
    let (tx2, rx2) = async_channel::bounded::<Vec<u64>>(slots);
    ex.spawn(async move {
        let mut chunk = Vec::with_capacity(CHUNK);
        for x in 0..n {
            chunk.push(x);
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                tx0.send(full).await.unwrap();
            }
        }
        if !chunk.is_empty() {
            tx0.send(chunk).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(mut chunk) = rx0.recv().await {
            chunk.iter_mut().for_each(|x| *x = x.wrapping_mul(3));
            tx1.send(chunk).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(mut chunk) = rx1.recv().await {
            chunk.iter_mut().for_each(|x| *x ^= 0x5555);
            tx2.send(chunk).await.unwrap();
        }
    })
    .detach();
    future::block_on(ex.run(async move {
        let mut sum = 0u64;
        while let Ok(chunk) = rx2.recv().await {
            sum = chunk.into_iter().fold(sum, u64::wrapping_add);
        }
        sum
    }))
}

fn fused(n: u64) -> u64 {
    (0..n)
        .map(|x| x.wrapping_mul(3))
        .map(|x| x ^ 0x5555)
        .fold(0u64, u64::wrapping_add)
}

fn throughput(c: &mut Criterion) {
    let expected = fused(N);
    let rows: [Row; 4] = [
        ("flowgate", flowgate_sum),
        ("async-channel-per-item", per_item),
        ("async-channel-batched-256", batched_256),
        ("fused-iterator", fused),
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
