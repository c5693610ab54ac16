//! Worker processes killed with SIGKILL mid-run: every entry is processed
//! at least once, and none is left pending.

use std::process::Command;
use std::time::Duration;

use crate::helpers::with_server;
use crate::workers::{Kill, crash_run, worker};

/// The environment variable that makes this test binary a worker.
const WORKER: &str = "FLOWGATE_REDIS_TEST_WORKER";

/// Not a test: the body of a worker process, which the crash test starts
/// by running this binary again with `WORKER` set to `url consumer`.
#[test]
#[ignore = "the body of the crash test's worker processes"]
fn worker_process() {
    let Ok(args) = std::env::var(WORKER) else {
        return;
    };
    let (url, consumer) = args.split_once(' ').expect("`url consumer`");
    worker(url, consumer, Duration::from_millis(500)).expect("the worker runs");
}

#[test]
fn workers_killed_mid_run_lose_nothing_and_leave_nothing_pending() {
    with_server(|server| {
        let url = server.url();
        let spawn = |name: &str| {
            let mut command = Command::new(std::env::current_exe().unwrap());
            command
                .args([
                    "--exact",
                    "crash::worker_process",
                    "--ignored",
                    "--nocapture",
                    "--quiet",
                ])
                .env(WORKER, format!("{url} {name}"))
                .stdout(std::process::Stdio::null());
            command
        };
        // Three kills at random points of the run, of random workers, each
        // replaced under a new name (its entries wait to be claimed) or
        // under its own (it reads its own entries again, at once). The
        // seed is printed, to run the same kills again.
        let seed = std::env::var("FLOWGATE_REDIS_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |t| u64::from(t.subsec_nanos()) | 1)
            });
        let mut rng: u64 = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut kills: Vec<Kill> = (0..3)
            .map(|_| Kill {
                at: 0.1 + (next() % 700) as f64 / 1000.0,
                slot: (next() % 3) as usize,
                rename: next() % 2 == 0,
            })
            .collect();
        kills.sort_by(|a, b| a.at.total_cmp(&b.at));
        let table = crash_run(&url, 20_000, 3, &kills, spawn, Duration::from_secs(50));
        eprintln!("FLOWGATE_REDIS_CRASH_SEED={seed}: {kills:?}\n{table}");
        assert_eq!(table.killed, 3);
        assert_eq!(table.lost, 0, "seed {seed}\n{table}");
        assert_eq!(table.pending, 0, "{table}");
        assert_eq!(table.dead_lettered, 0, "{table}");
        assert!(table.processed >= table.written, "{table}");
    });
}
