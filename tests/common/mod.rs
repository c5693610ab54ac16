//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// How long any one test may take before it counts as hung.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread and fails the test if it has not finished
/// within [`WATCHDOG`], so a hang fails fast instead of stalling CI.
pub fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: no result within {WATCHDOG:?}"),
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
