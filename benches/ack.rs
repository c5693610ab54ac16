//! Round trips: each send of `n` is answered with `n + 1`. Sequential sends
//! to an inline (generator-style) consumer, to a consumer task and to a
//! consumer driven as a future; pipelined sends with many in flight; an
//! async-channel ping-pong between two tasks, the baseline; and the floor
//! of any round trip between two tasks on smol's executor, a one-slot
//! exchange with direct wakers.
//!
//! Run with: cargo bench --bench ack
//! The reference is Python's generator `send`: a consumer generator that
//! answers each `c.send(n)` with `'200 OK'`, primed with `c.send(None)`,
//! driven by a producer loop of 1,000,000 sends timed with
//! `time.perf_counter()`, with no printing inside the loop.

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "shared/rows.rs"]
mod rows;

#[path = "shared/workloads.rs"]
mod workloads;

use rows::{Row, bench_rows};

const N: u64 = 100_000;

fn ack(c: &mut Criterion) {
    let expected = (0..N)
        .map(|x| x.wrapping_add(1))
        .fold(0u64, u64::wrapping_add);
    let rows: [Row; 7] = [
        ("flowgate-ack-inline", workloads::ack_inline),
        ("flowgate-ack-task", workloads::ack_task),
        ("flowgate-ack-future", workloads::ack_future),
        ("flowgate-ack-pipelined", workloads::ack_pipelined),
        ("flowgate-service-pipelined", workloads::service_pipelined),
        ("async-channel-ping-pong", workloads::ping_pong),
        ("smol-two-task-floor", workloads::two_task_floor),
    ];
    bench_rows(c, "ack", N, expected, &rows);
}

criterion_group!(benches, ack);
criterion_main!(benches);
