//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod runner;
pub mod tracked;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// How long any one test may take before it counts as hung.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Whether the heavy runs were asked for (`FLOWGATE_STRESS=1`).
pub fn stress() -> bool {
    std::env::var("FLOWGATE_STRESS").is_ok_and(|v| v == "1")
}

/// `normal` by default, `heavy` under `FLOWGATE_STRESS=1`.
pub fn scaled<T>(normal: T, heavy: T) -> T {
    if stress() { heavy } else { normal }
}

/// Runs `f` on its own thread and fails the test if it has not finished
/// within [`WATCHDOG`], so a hang fails fast instead of stalling CI.
pub fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog_for(WATCHDOG, f)
}

/// Like [`watchdog`], with a limit of `limit`.
pub fn watchdog_for<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: no result within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the worker sends before it ends"),
            }
        }
    }
}

/// Polls every task on `ex` until none can make progress, so a test can
/// observe a pipeline at rest without sleeping.
pub fn settle(ex: &smol::LocalExecutor<'_>) {
    while ex.try_tick() {}
}

/// Checks that a finished run's report accounts for every item: each stage
/// balances, every hop delivered what was sent into it, and no count is
/// left in hand.
pub fn assert_accounted(report: &flowgate::Report) {
    assert!(report.state.is_finished(), "{report}");
    for stage in &report.stages {
        assert!(
            stage.state.is_finished(),
            "stage {} still {}\n{report}",
            stage.name,
            stage.state
        );
        assert!(
            stage.is_balanced(),
            "stage {} does not balance\n{report}",
            stage.name
        );
        assert_eq!(stage.in_hand, 0, "{report}");
    }
    for pair in report.stages.windows(2) {
        assert_eq!(
            pair[0].emitted, pair[1].received,
            "items lost between {} and {}\n{report}",
            pair[0].name, pair[1].name
        );
    }
    assert!(report.is_balanced(), "{report}");
}

/// Like [`assert_accounted`], for a graph with fan-out or fan-in, whose
/// stages are not one chain: every hop is checked through the report's own
/// links.
pub fn assert_graph_accounted(report: &flowgate::Report) {
    assert!(report.state.is_finished(), "{report}");
    for stage in &report.stages {
        assert!(stage.state.is_finished(), "{report}");
        assert!(
            stage.is_balanced(),
            "stage {} does not balance\n{report}",
            stage.name
        );
        assert_eq!(stage.in_hand, 0, "{report}");
    }
    assert!(report.is_balanced(), "{report}");
}

/// An example binary, as a plain `cargo test` builds it beside the test
/// binaries (`cargo test --test NAME` alone does not rebuild examples).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    profile_dir.join("examples").join(name)
}
