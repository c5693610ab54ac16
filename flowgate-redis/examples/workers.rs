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
    if table.lost != 0 || table.pending != 0 {
        return Err("entries were lost or left pending".into());
    }
    Ok(())
}
