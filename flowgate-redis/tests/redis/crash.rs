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
        let kills = [
            // Replaced under a new name: its entries wait to be claimed.
            Kill {
                at: 0.2,
                slot: 0,
                rename: true,
            },
            // Replaced under its own name: it reads its own entries again.
            Kill {
                at: 0.5,
                slot: 1,
                rename: false,
            },
            Kill {
                at: 0.7,
                slot: 2,
                rename: true,
            },
        ];
        let table = crash_run(&url, 20_000, 3, &kills, spawn, Duration::from_secs(50));
        eprintln!("{table}");
        assert_eq!(table.killed, 3);
        assert_eq!(table.lost, 0, "{table}");
        assert_eq!(table.pending, 0, "{table}");
        assert_eq!(table.dead_lettered, 0, "{table}");
        assert!(table.processed >= table.written, "{table}");
    });
}
