//! Runs the standard workloads through flowgate and through hand-written
//! alternatives, in one process, and prints side-by-side tables.
//!
//! The pipeline workload: a source of `0..N` u64, `map(x.wrapping_mul(3))`,
//! `map(x ^ 0x5555)`, and a wrapping sum, with hops of 1024 items. The ack
//! workload: sends of `n`, each answered with `n + 1`, summed. Within each
//! group every row must produce the same checksum; the example exits with
//! status 1 if one differs.
//!
//! Rows that are much slower than the rest (`mutex-condvar-threads`,
//! `os-process-ping-pong`) run a tenth of the items; ns/item is per item either way. At the end the
//! example prints its own peak resident memory, and resident memory sampled
//! during the runs, from `/proc/self/status`.
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

#[path = "../benches/shared/threads.rs"]
mod threads;

#[path = "../benches/shared/memory.rs"]
mod memory;

/// A named implementation of a workload: runs it on the given number of
/// items as the flags say, and returns the checksum.
struct Row {
    name: &'static str,
    run: fn(&Args, u64) -> u64,
    /// Runs a tenth of `--items`: the row is too slow for the full count.
    slow: bool,
}

const fn row(name: &'static str, run: fn(&Args, u64) -> u64) -> Row {
    Row {
        name,
        run,
        slow: false,
    }
}

/// The pipeline rows: the standard workload of `--items` u64 items; the
/// checksum is the wrapping sum of the outputs.
const ROWS: &[Row] = &[
    row("flowgate", |a, n| {
        workloads::flowgate_pipeline(n, a.capacity, a.chunk_limit)
    }),
    row("flowgate-metrics-off", |a, n| {
        workloads::flowgate_metered(n, a.capacity, a.chunk_limit, false)
    }),
    row("flowgate-source-hop", |a, n| {
        workloads::flowgate_source_hop(n, a.capacity, a.chunk_limit)
    }),
    row("flowgate-unfused", |a, n| {
        workloads::flowgate_unfused(n, a.capacity, a.chunk_limit)
    }),
    row("async-channel-batched-256", |a, n| {
        workloads::batched_256(n, a.capacity)
    }),
    row("async-channel-batched-in-place", |a, n| {
        workloads::batched_in_place(n, a.capacity)
    }),
    row("async-channel-per-item", |a, n| {
        workloads::per_item(n, a.capacity)
    }),
    row("crossbeam-threads", |a, n| {
        threads::crossbeam_threads(n, a.capacity)
    }),
    row("std-mpsc-threads", |a, n| {
        threads::std_mpsc_threads(n, a.capacity)
    }),
    Row {
        name: "mutex-condvar-threads",
        run: |a, n| threads::mutex_condvar_threads(n, a.capacity),
        slow: true,
    },
    row("tokio-mpsc", |a, n| threads::tokio_mpsc(n, a.capacity)),
    row("fused-iterator-black-box", |_, n| {
        workloads::fused_black_box(n)
    }),
    row("fused-iterator", |_, n| workloads::fused(n)),
];

/// Round-trip rows: `--ack-items` sends of `n`, each answered with `n + 1`;
/// the checksum is the wrapping sum of the replies.
const ACK_ROWS: &[Row] = &[
    row("flowgate-ack-inline", |_, n| workloads::ack_inline(n)),
    row("flowgate-ack-task", |_, n| workloads::ack_task(n)),
    row("flowgate-ack-pipelined", |_, n| workloads::ack_pipelined(n)),
    row("flowgate-service-pipelined", |_, n| {
        workloads::service_pipelined(n)
    }),
    row("flowgate-ack-future", |_, n| workloads::ack_future(n)),
    row("async-channel-ping-pong", |_, n| workloads::ping_pong(n)),
    row("smol-two-task-floor", |_, n| workloads::two_task_floor(n)),
    row("os-thread-ping-pong", |_, n| threads::thread_ping_pong(n)),
    Row {
        name: "os-process-ping-pong",
        run: |_, n| threads::process_ping_pong(n),
        slow: true,
    },
];

struct Measured {
    name: &'static str,
    items: u64,
    ns_per_item: f64,
    checksum: u64,
    expected: u64,
}

/// The checksum every pipeline row must give for `n` items.
fn pipeline_checksum(n: u64) -> u64 {
    workloads::fused(n)
}

/// The checksum every ack row must give for `n` round trips.
fn ack_checksum(n: u64) -> u64 {
    (0..n).map(|x| x.wrapping_add(1)).fold(0, u64::wrapping_add)
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
        eprintln!(
            "error: --items, --ack-items, --capacity, --chunk-limit and --repeat must be at least 1"
        );
        return ExitCode::from(2);
    }
    let pick = |rows: &'static [Row]| -> Vec<&'static Row> {
        rows.iter()
            .filter(|row| args.only.as_deref().is_none_or(|only| only == row.name))
            .collect()
    };
    let (rows, ack_rows) = (pick(ROWS), pick(ACK_ROWS));
    if rows.is_empty() && ack_rows.is_empty() {
        let names: Vec<&str> = ROWS.iter().chain(ACK_ROWS).map(|row| row.name).collect();
        eprintln!(
            "error: no row named {:?}; rows are: {}",
            args.only,
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    let rss = sampling::Sampler::start();
    let measure = |rows: &[&Row], items: u64, expected: fn(u64) -> u64| -> Vec<Measured> {
        rows.iter()
            .map(|row| {
                let items = if row.slow { (items / 10).max(1) } else { items };
                let mut best = Duration::MAX;
                let mut checksum = 0;
                for _ in 0..args.repeat {
                    let start = Instant::now();
                    checksum = (row.run)(&args, items);
                    best = best.min(start.elapsed());
                }
                Measured {
                    name: row.name,
                    items,
                    ns_per_item: best.as_secs_f64() * 1e9 / items as f64,
                    checksum,
                    expected: expected(items),
                }
            })
            .collect()
    };
    let groups = [
        ("pipeline", measure(&rows, args.items, pipeline_checksum)),
        ("ack", measure(&ack_rows, args.ack_items, ack_checksum)),
    ];
    let rss = rss.stop();

    if args.csv {
        println!("group,name,items,items_per_sec,ns_per_item,ratio,checksum");
        for (group, results) in &groups {
            let first = results.first().map_or(1.0, |m| m.ns_per_item);
            for m in results {
                println!(
                    "{group},{},{},{:.0},{:.3},{:.3},{:#x}",
                    m.name,
                    m.items,
                    1e9 / m.ns_per_item,
                    m.ns_per_item,
                    m.ns_per_item / first,
                    m.checksum
                );
            }
        }
    } else {
        println!(
            "capacity {}, best of {}, {} cores",
            args.capacity,
            args.repeat,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for (group, results) in &groups {
            let Some(first) = results.first() else {
                continue;
            };
            println!(
                "\n{group}: ratio = this row's ns/item over {}'s (above 1 is slower)\n",
                first.name
            );
            println!("| name | items | items/s | ns/item | ratio | checksum |");
            println!("|---|---:|---:|---:|---:|---:|");
            for m in results {
                println!(
                    "| {} | {} | {:.1} M | {:.2} | {:.2} | {:#x} |",
                    m.name,
                    m.items,
                    1e3 / m.ns_per_item,
                    m.ns_per_item,
                    m.ns_per_item / first.ns_per_item,
                    m.checksum
                );
            }
        }
        println!("\n{rss}");
    }

    for m in groups.iter().flat_map(|(_, results)| results) {
        if m.checksum != m.expected {
            eprintln!(
                "error: checksum mismatch: {} gave {:#x} for {} items, expected {:#x}",
                m.name, m.checksum, m.items, m.expected
            );
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// Resident memory sampled over the runs (Linux only).
mod sampling {
    use std::fmt;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::memory::{rss_kib, status_kib};

    /// Samples `VmRSS` every 100 ms on a thread of its own while the rows
    /// run, to show whether memory grows over a run.
    pub struct Sampler {
        stop: mpsc::Sender<()>,
        thread: thread::JoinHandle<Vec<u64>>,
    }

    pub struct Samples {
        samples: Vec<u64>,
        peak: Option<u64>,
    }

    impl Sampler {
        pub fn start() -> Self {
            let (stop, stopped) = mpsc::channel();
            let thread = thread::spawn(move || {
                let mut samples = Vec::new();
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(100))
                {
                    samples.extend(rss_kib());
                }
                samples
            });
            Sampler { stop, thread }
        }

        pub fn stop(self) -> Samples {
            let _ = self.stop.send(());
            Samples {
                samples: self.thread.join().unwrap_or_default(),
                peak: status_kib("self", "VmHWM:"),
            }
        }
    }

    impl fmt::Display for Samples {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mib = |kib: u64| kib as f64 / 1024.0;
            match self.peak {
                Some(peak) => write!(f, "peak RSS (VmHWM): {:.1} MiB", mib(peak))?,
                None => write!(f, "peak RSS: /proc/self/status is not readable here")?,
            }
            let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
                return Ok(());
            };
            let max = self.samples.iter().max().copied().unwrap_or(0);
            write!(
                f,
                "; RSS every 100 ms over the runs: first {:.1}, last {:.1}, max {:.1} MiB ({} samples)",
                mib(*first),
                mib(*last),
                mib(max),
                self.samples.len()
            )
        }
    }
}
