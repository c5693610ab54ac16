//! Round trips: each send of `n` is answered with `n + 1`. Sequential sends
//! to an inline (generator-style) consumer and to a consumer task, and
//! pipelined sends with many in flight.
//!
//! Run with: cargo bench --bench ack
//! Python's generator `send` loop, the reference, is measured by
//! `python3 ../shared/bench/gen_send.py`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowgate::Consumer;
use futures_lite::{future, StreamExt};
use smol::LocalExecutor;

const N: u64 = 100_000;

/// A named round-trip loop: takes N, gives the checksum of the replies.
type Row = (&'static str, fn(u64) -> u64);

fn reply(_: &mut (), n: u64) -> u64 {
    n.wrapping_add(1)
}

fn inline(n: u64) -> u64 {
    let mut consumer = Consumer::new((), reply).inline();
    future::block_on(async {
        let mut sum = 0u64;
        for x in 0..n {
            sum = sum.wrapping_add(consumer.send(x).await.unwrap());
        }
        sum
    })
}

fn task(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (mut producer, _consumer) = Consumer::new((), reply).spawn_local(&ex);
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for x in 0..n {
            sum = sum.wrapping_add(producer.send(x).await.unwrap());
        }
        sum
    });
    future::block_on(ex.run(producer))
}

fn pipelined(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (producer, _consumer) = Consumer::new((), reply).spawn_local(&ex);
    let (mut tx, replies) = producer.pipelined(4096).unwrap();
    future::block_on(ex.run(async move {
        let send = async move {
            for x in 0..n {
                tx.send(x).await.unwrap();
            }
            tx.close().await;
        };
        let read = replies.fold(0u64, |sum, (_, r)| sum.wrapping_add(r.unwrap()));
        future::zip(send, read).await.1
    }))
}

fn ack(c: &mut Criterion) {
    let expected = (0..N)
        .map(|x| x.wrapping_add(1))
        .fold(0u64, u64::wrapping_add);
    let rows: [Row; 3] = [
        ("flowgate-ack-inline", inline),
        ("flowgate-ack-task", task),
        ("flowgate-ack-pipelined", pipelined),
    ];
    let mut group = c.benchmark_group("ack");
    group.throughput(Throughput::Elements(N));
    group.sample_size(20);
    for (name, run) in rows {
        assert_eq!(run(N), expected, "{name} gave a different checksum");
        group.bench_function(name, |b| b.iter(|| run(black_box(N))));
    }
    group.finish();
}

criterion_group!(benches, ack);
criterion_main!(benches);
