//! Several worker processes share one Redis stream through a consumer
//! group, each running a flowgate pipeline; one is killed with SIGKILL
//! mid-run, and the survivors claim the entries it held.
//!
//! ```text
//! cargo run --release -p flowgate-redis --example workers
//! cargo run --release -p flowgate-redis --example workers -- --entries 200000 --workers 4
//! cargo run --release -p flowgate-redis --example workers -- --url redis://127.0.0.1:6379/
//! ```
//!
//! Without `--url`, it starts a `redis-server` of its own on a free
//! loopback port (the Debian package `redis-server`), and stops it at the
//! end. With `--url`, it uses that server, and deletes the streams
//! `jobs`, `jobs:done` and `jobs:dead` there first.

#[path = "../tests/support/server.rs"]
mod server;

#[path = "../tests/support/crash.rs"]
mod crash;

#[path = "../tests/support/throughput.rs"]
mod throughput;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
#[command(about = "Worker processes sharing a Redis stream, one killed mid-run")]
struct Args {
    /// The Redis server to use; without it, one is started.
    #[arg(long)]
    url: Option<String>,
    /// Entries to write.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Entries for the side-by-side throughput rows; 0 skips them.
    #[arg(long, default_value_t = 20_000)]
    compare: u64,
    /// Run as a worker under this consumer name (used by the example
    /// itself).
    #[arg(long, hide = true)]
    worker: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let (Some(name), Some(url)) = (&args.worker, &args.url) {
        return crash::worker(url, name, Duration::from_secs(1));
    }
    if args.workers < 2 {
        return Err("--workers must be at least 2: one is killed, the others recover".into());
    }
    let mut own = None;
    let url = match &args.url {
        Some(url) => {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_connection()?;
            let () = redis::cmd("DEL")
                .arg(crash::JOBS)
                .arg(crash::DONE)
                .arg("jobs:dead")
                .query(&mut conn)?;
            url.clone()
        }
        None => {
            if !server::available() {
                return Err("`redis-server` is not on PATH: install it \
                            (apt-get install -y redis-server) or pass --url"
                    .into());
            }
            let started = server::Server::start().ok_or("redis-server did not start")?;
            let url = started.url();
            own = Some(started);
            url
        }
    };
    println!(
        "{} entries, {} worker processes; worker-0 is killed at 30% and replaced under a new name",
        args.entries, args.workers
    );
    let exe = std::env::current_exe()?;
    let spawn = |name: &str| {
        let mut command = Command::new(&exe);
        command
            .args(["--url", &url, "--worker", name])
            .stdout(Stdio::null());
        command
    };
    let kills = [crash::Kill {
        at: 0.3,
        slot: 0,
        rename: true,
    }];
    let started = Instant::now();
    let table = crash::crash_run(
        &url,
        args.entries,
        args.workers,
        &kills,
        spawn,
        Duration::from_secs(600),
    );
    let took = started.elapsed();
    println!("{table}");
    println!(
        "took {:.2} s, {:.0} entries/s end to end (XADD, XREADGROUP, work, XADD, XACK)",
        took.as_secs_f64(),
        table.processed as f64 / took.as_secs_f64()
    );
    drop(own);
    if args.compare > 0 {
        match &args.url {
            Some(url) => compare(url, args.compare),
            None => {
                // A server that keeps nothing on disk: the rows then
                // measure the network path, not the disk's fsync.
                let fast = server::Server::start_in_memory().ok_or("redis-server did not start")?;
                compare(&fast.url(), args.compare);
            }
        }
    }
    if table.lost != 0 || table.pending != 0 {
        return Err("entries were lost or left pending".into());
    }
    Ok(())
}

/// Reads and acknowledgements a chunk per round trip against one per
/// entry, on the same server, one after the other.
fn compare(url: &str, n: u64) {
    let chunked = throughput::chunked(url, n);
    let single = throughput::per_entry(url, n);
    println!();
    println!("{n} entries written by XADD while one consumer reads and acknowledges them:");
    println!("| read and acknowledge               | entries/s | µs/entry | Redis CPU |");
    println!("|------------------------------------|-----------|----------|-----------|");
    for (name, m) in [
        ("flowgate, one round trip per chunk", chunked),
        ("XREADGROUP COUNT 1 + XACK per entry", single),
    ] {
        println!(
            "| {name:<34} | {:>9.0} | {:>8.2} | {:>8.0}% |",
            m.per_second(),
            1e6 / m.per_second(),
            100.0 * m.redis_share()
        );
    }
    println!(
        "chunked / per entry: {:.1}x",
        chunked.per_second() / single.per_second()
    );
}
