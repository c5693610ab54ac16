//! Runs the standard workloads through flowgate and through hand-written
//! alternatives, in one process, and prints side-by-side tables.
//!
//! The pipeline workload: a source of `0..N` u64, `map(x.wrapping_mul(3))`,
//! `map(x ^ 0x5555)`, and a wrapping sum, with hops of 1024 items. The ack
//! workload: sends of `n`, each answered with `n + 1`, summed. Within each
//! group every row must produce the same checksum; the example exits with
//! status 1 if one differs.
//!
//! Run with: cargo run --release --example throughput -- [--items N] [--capacity C] [--only NAME] [--csv]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_lite::future;
use smol::LocalExecutor;

#[derive(Parser, Debug)]
#[command(about = "Side-by-side throughput of flowgate and hand-written pipelines")]
struct Args {
    /// Items pushed through each pipeline.
    #[arg(long, default_value_t = 10_000_000)]
    items: u64,
    /// Capacity of every hop, in items.
    #[arg(long, default_value_t = 1024)]
    capacity: usize,
    /// Chunk limit of flowgate's stages (default: the library's default).
    #[arg(long, default_value_t = flowgate::DEFAULT_CHUNK_LIMIT)]
    chunk_limit: usize,
    /// Round trips in each ack row.
    #[arg(long, default_value_t = 1_000_000)]
    ack_items: u64,
    /// Run only the row with this name.
    #[arg(long)]
    only: Option<String>,
    /// Print CSV instead of a markdown table.
    #[arg(long)]
    csv: bool,
    /// Runs per row; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
}

/// A named implementation of the workload: takes N and the capacity, returns
/// the checksum.
type Row = (&'static str, fn(&Args) -> u64);

const ROWS: &[Row] = &[
    ("flowgate", flowgate_row),
    ("async-channel-per-item", per_item),
    ("async-channel-batched-256", batched_256),
];

/// Round-trip rows: `--ack-items` sends of `n`, each answered with `n + 1`;
/// the checksum is the wrapping sum of the replies.
const ACK_ROWS: &[Row] = &[
    ("flowgate-ack-inline", ack_inline),
    ("flowgate-ack-task", ack_task),
    ("flowgate-ack-pipelined", ack_pipelined),
    ("flowgate-ack-future", ack_future),
    ("async-channel-ping-pong", ping_pong),
];

/// The baseline for a task round trip: two async-channels between two
/// tasks on one single-threaded executor, one request and one reply each.
fn ping_pong(args: &Args) -> u64 {
    let ex = LocalExecutor::new();
    let (req_tx, req_rx) = async_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = async_channel::bounded::<u64>(1);
    ex.spawn(async move {
        while let Ok(n) = req_rx.recv().await {
            if rep_tx.send(n.wrapping_add(1)).await.is_err() {
                break;
            }
        }
    })
    .detach();
    let n = args.ack_items;
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for x in 0..n {
            req_tx.send(x).await.expect("the consumer is running");
            sum = sum.wrapping_add(rep_rx.recv().await.expect("the consumer replies"));
        }
        sum
    });
    future::block_on(ex.run(producer))
}

fn reply(_: &mut (), n: u64) -> u64 {
    n.wrapping_add(1)
}

/// Sequential sends to a generator-style consumer, in the caller's task.
fn ack_inline(args: &Args) -> u64 {
    let mut consumer = flowgate::Consumer::new((), reply).inline();
    future::block_on(async {
        let mut sum = 0u64;
        for n in 0..args.ack_items {
            sum = sum.wrapping_add(consumer.send(n).await.expect("the consumer replies"));
        }
        sum
    })
}

/// Sequential sends to a consumer task on a single-threaded executor.
fn ack_task(args: &Args) -> u64 {
    let ex = LocalExecutor::new();
    let (mut producer, _consumer) = flowgate::Consumer::new((), reply).spawn_local(&ex);
    let n = args.ack_items;
    // The producer is a task too, so the executor switches between two
    // tasks without going idle in between.
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for n in 0..n {
            sum = sum.wrapping_add(producer.send(n).await.expect("the consumer replies"));
        }
        sum
    });
    future::block_on(ex.run(producer))
}

/// Sequential sends to a consumer driven as a future beside the producer,
/// in one `zip` on one thread: no executor queue between them.
fn ack_future(args: &Args) -> u64 {
    let (mut producer, consumer) = flowgate::Consumer::new((), reply).into_future();
    let n = args.ack_items;
    let produce = async move {
        let mut sum = 0u64;
        for x in 0..n {
            sum = sum.wrapping_add(producer.send(x).await.expect("the consumer replies"));
        }
        sum
    };
    future::block_on(future::zip(produce, consumer)).0
}

/// Many sends in flight to a consumer task, replies read in send order.
fn ack_pipelined(args: &Args) -> u64 {
    let ex = LocalExecutor::new();
    let (producer, _consumer) = flowgate::Consumer::new((), reply).spawn_local(&ex);
    let (mut tx, mut replies) = producer.pipelined(4096).expect("the window is not 0");
    let n = args.ack_items;
    future::block_on(ex.run(async move {
        let send = async move {
            for x in 0..n {
                tx.send(x).await.expect("the consumer is running");
            }
            tx.close().await;
        };
        let read = async move {
            let mut sum = 0u64;
            while let Some(chunk) = replies.next_chunk().await {
                for (_, reply) in chunk {
                    sum = sum.wrapping_add(reply.expect("the consumer replies"));
                }
            }
            sum
        };
        future::zip(send, read).await.1
    }))
}

#[inline]
fn stage1(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[inline]
fn stage2(x: u64) -> u64 {
    x ^ 0x5555
}

/// The builder API, exactly as a user would write it.
fn flowgate_row(args: &Args) -> u64 {
    let (capacity, chunk_limit) = (args.capacity, args.chunk_limit);
    flowgate::from_iter(0..args.items)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .map(stage1)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .map(stage2)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .fold(0u64, u64::wrapping_add)
        .run()
        .expect("the pipeline is well formed")
}

/// Hand-written stages on smol, one item per channel operation.
fn per_item(args: &Args) -> u64 {
    let (n, capacity) = (args.items, args.capacity);
    let ex = LocalExecutor::new();
    let (tx0, rx0) = async_channel::bounded::<u64>(capacity);
    let (tx1, rx1) = async_channel::bounded::<u64>(capacity);
    let (tx2, rx2) = async_channel::bounded::<u64>(capacity);
    ex.spawn(async move {
        for x in 0..n {
            tx0.send(x).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx0.recv().await {
            tx1.send(stage1(x)).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx1.recv().await {
            tx2.send(stage2(x)).await.unwrap();
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

/// Hand-written stages on smol, moving `Vec` chunks of 256 items.
fn batched_256(args: &Args) -> u64 {
    let (n, capacity) = (args.items, args.capacity);
    const CHUNK: usize = 256;
    let slots = (capacity / CHUNK).max(1);
    let ex = LocalExecutor::new();
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
            chunk.iter_mut().for_each(|x| *x = stage1(*x));
            tx1.send(chunk).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(mut chunk) = rx1.recv().await {
            chunk.iter_mut().for_each(|x| *x = stage2(*x));
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

struct Measured {
    name: &'static str,
    ns_per_item: f64,
    checksum: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if [
        args.items,
        args.ack_items,
        args.capacity as u64,
        args.chunk_limit as u64,
        args.repeat as u64,
    ]
    .contains(&0)
    {
        eprintln!("error: --items, --ack-items, --capacity, --chunk-limit and --repeat must be at least 1");
        return ExitCode::from(2);
    }
    let pick = |rows: &'static [Row]| -> Vec<&'static Row> {
        rows.iter()
            .filter(|(name, _)| args.only.as_deref().is_none_or(|only| only == *name))
            .collect()
    };
    let (rows, ack_rows) = (pick(ROWS), pick(ACK_ROWS));
    if rows.is_empty() && ack_rows.is_empty() {
        let names: Vec<&str> = ROWS.iter().chain(ACK_ROWS).map(|(name, _)| *name).collect();
        eprintln!(
            "error: no row named {:?}; rows are: {}",
            args.only,
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    let measure = |rows: &[&Row], items: u64| -> Vec<Measured> {
        rows.iter()
            .map(|(name, run)| {
                let mut best = Duration::MAX;
                let mut checksum = 0;
                for _ in 0..args.repeat {
                    let start = Instant::now();
                    checksum = run(&args);
                    best = best.min(start.elapsed());
                }
                Measured {
                    name,
                    ns_per_item: best.as_secs_f64() * 1e9 / items as f64,
                    checksum,
                }
            })
            .collect()
    };
    let groups = [
        ("pipeline", measure(&rows, args.items), args.items),
        ("ack", measure(&ack_rows, args.ack_items), args.ack_items),
    ];

    if args.csv {
        println!("name,items_per_sec,ns_per_item,checksum");
        for m in groups.iter().flat_map(|(_, results, _)| results) {
            println!(
                "{},{:.0},{:.3},{}",
                m.name,
                1e9 / m.ns_per_item,
                m.ns_per_item,
                m.checksum
            );
        }
    } else {
        println!(
            "capacity {}, best of {}, {} cores",
            args.capacity,
            args.repeat,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for (group, results, items) in &groups {
            let Some(first) = results.first() else {
                continue;
            };
            println!(
                "\n{group}: {items} items; ratio = this row's ns/item over {}'s\n",
                first.name
            );
            println!("| name | items/s | ns/item | ratio | checksum |");
            println!("|---|---:|---:|---:|---:|");
            for m in results {
                println!(
                    "| {} | {:.1} M | {:.2} | {:.2} | {:#x} |",
                    m.name,
                    1e3 / m.ns_per_item,
                    m.ns_per_item,
                    m.ns_per_item / first.ns_per_item,
                    m.checksum
                );
            }
        }
    }

    for (_, results, _) in &groups {
        let Some(first) = results.first() else {
            continue;
        };
        if let Some(bad) = results.iter().find(|m| m.checksum != first.checksum) {
            eprintln!(
                "error: checksum mismatch: {} gave {:#x}, {} gave {:#x}",
                first.name, first.checksum, bad.name, bad.checksum
            );
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
