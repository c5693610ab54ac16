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

#[path = "../benches/shared/workloads.rs"]
mod workloads;

/// A named implementation of a workload: runs it as the flags say, returns
/// the checksum.
type Row = (&'static str, fn(&Args) -> u64);

const ROWS: &[Row] = &[
    ("flowgate", |a| {
        workloads::flowgate_pipeline(a.items, a.capacity, a.chunk_limit)
    }),
    ("flowgate-metrics-off", |a| {
        workloads::flowgate_metered(a.items, a.capacity, a.chunk_limit, false)
    }),
    ("async-channel-per-item", |a| {
        workloads::per_item(a.items, a.capacity)
    }),
    ("async-channel-batched-256", |a| {
        workloads::batched_256(a.items, a.capacity)
    }),
    ("fused-iterator", |a| workloads::fused(a.items)),
];

/// Round-trip rows: `--ack-items` sends of `n`, each answered with `n + 1`;
/// the checksum is the wrapping sum of the replies.
const ACK_ROWS: &[Row] = &[
    ("flowgate-ack-inline", |a| {
        workloads::ack_inline(a.ack_items)
    }),
    ("flowgate-ack-task", |a| workloads::ack_task(a.ack_items)),
    ("flowgate-ack-pipelined", |a| {
        workloads::ack_pipelined(a.ack_items)
    }),
    ("flowgate-ack-future", |a| {
        workloads::ack_future(a.ack_items)
    }),
    ("async-channel-ping-pong", |a| {
        workloads::ping_pong(a.ack_items)
    }),
];

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
