//! Runs one standard workload through flowgate and through hand-written
//! alternatives, in one process, and prints a side-by-side table.
//!
//! The workload: a source of `0..N` u64, `map(x.wrapping_mul(3))`,
//! `map(x ^ 0x5555)`, and a wrapping sum, with hops of 1024 items. Every row
//! must produce the same checksum; the example exits with status 1 if one
//! differs.
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
    best: Duration,
    checksum: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.items == 0 || args.capacity == 0 || args.chunk_limit == 0 || args.repeat == 0 {
        eprintln!("error: --items, --capacity, --chunk-limit and --repeat must be at least 1");
        return ExitCode::from(2);
    }
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|(name, _)| args.only.as_deref().is_none_or(|only| only == *name))
        .collect();
    if rows.is_empty() {
        let names: Vec<&str> = ROWS.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "error: no row named {:?}; rows are: {}",
            args.only,
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    let results: Vec<Measured> = rows
        .iter()
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
                best,
                checksum,
            }
        })
        .collect();

    let per_item = |m: &Measured| m.best.as_secs_f64() * 1e9 / args.items as f64;
    let base = results.iter().find(|m| m.name == "flowgate").map(per_item);
    if args.csv {
        println!("name,items_per_sec,ns_per_item,checksum");
        for m in &results {
            let ns = per_item(m);
            println!("{},{:.0},{:.3},{}", m.name, 1e9 / ns, ns, m.checksum);
        }
    } else {
        println!(
            "{} items, capacity {}, best of {}, {} cores\n",
            args.items,
            args.capacity,
            args.repeat,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        println!("| name | items/s | ns/item | flowgate is x faster | checksum |");
        println!("|---|---:|---:|---:|---:|");
        for m in &results {
            let ns = per_item(m);
            let ratio = base.map_or("-".to_owned(), |b| format!("{:.2}", ns / b));
            println!(
                "| {} | {:.1} M | {:.2} | {} | {:#x} |",
                m.name,
                1e3 / ns,
                ns,
                ratio,
                m.checksum
            );
        }
    }

    let expected = results[0].checksum;
    if let Some(bad) = results.iter().find(|m| m.checksum != expected) {
        eprintln!(
            "error: checksum mismatch: {} gave {:#x}, {} gave {:#x}",
            results[0].name, expected, bad.name, bad.checksum
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
