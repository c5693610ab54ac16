//! The state one run shares between its stages: the stop signals, the
//! verdict, the deadline, and every stage's stats once the graph is built.
//!
//! Everything here is an atomic, a closed-or-open channel or a set-once
//! cell, so a stage never takes a lock to read it, and a
//! [`Control`](crate::Control) can read it from any thread while the run
//! goes on.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::engine::stats::StageStats;
use crate::report::state::State;

/// A one-way flag that tasks can wait on: raising it closes a channel, which
/// wakes every waiter at once.
pub(crate) struct Signal {
    tx: Sender<()>,
    /// Kept so that the channel only closes when the signal is raised.
    _rx: Receiver<()>,
}

impl Signal {
    fn new() -> Self {
        let (tx, _rx) = async_channel::bounded(1);
        Signal { tx, _rx }
    }

    /// Raises the signal; `true` if this call raised it.
    pub(super) fn raise(&self) -> bool {
        self.tx.close()
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.tx.is_closed()
    }

    /// Completes once the signal is raised.
    pub(crate) async fn wait(&self) {
        self.tx.closed().await;
    }
}

/// What every stage of one run shares: the stop signals and the run's
/// verdict.
pub(crate) struct RunState {
    /// Raised to stop every stage promptly.
    cancel: Signal,
    /// Raised to make the source stop taking input; the rest drains.
    shutdown: Signal,
    /// Raised once the sink has ended: the run is over.
    ended: Signal,
    /// Whether the run's deadline is what raised `cancel`.
    deadline_passed: AtomicBool,
    /// Whether stages time their waits; read by each stage as it starts.
    timed: AtomicBool,
    /// Whether cheap sync stages are fused into the task of the stage
    /// after them; read by the builder as it wires each stage.
    fusing: AtomicBool,
    /// The pipeline's final state once the run has ended, as a `State`.
    verdict: AtomicU8,
    /// Every stage's stats, set once the pipeline ends in its sink.
    stages: OnceLock<Box<[Arc<StageStats>]>>,
    /// The run's deadline, if it has one.
    deadline: OnceLock<Duration>,
    /// How long a stage may hold input without progress before it counts
    /// as stalled, if the run watches for stalls.
    stall_after: OnceLock<Duration>,
    /// The run this one joined when its pipeline was merged into another:
    /// from then on that run's signals and verdict are the ones that count.
    joined: OnceLock<Arc<RunState>>,
}

/// No verdict yet.
const NO_VERDICT: u8 = u8::MAX;

impl RunState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(RunState {
            cancel: Signal::new(),
            shutdown: Signal::new(),
            ended: Signal::new(),
            deadline_passed: AtomicBool::new(false),
            timed: AtomicBool::new(true),
            fusing: AtomicBool::new(true),
            verdict: AtomicU8::new(NO_VERDICT),
            stages: OnceLock::new(),
            deadline: OnceLock::new(),
            stall_after: OnceLock::new(),
            joined: OnceLock::new(),
        })
    }

    /// The run this one belongs to: itself, unless its pipeline was merged
    /// into another one's.
    pub(crate) fn root(self: &Arc<Self>) -> Arc<RunState> {
        let mut run = self;
        while let Some(next) = run.joined.get() {
            run = next;
        }
        Arc::clone(run)
    }

    /// Makes this run (and every run already joined to it) part of `into`.
    /// Joining a run to itself does nothing.
    pub(crate) fn join(self: &Arc<Self>, into: &Arc<RunState>) {
        let (from, into) = (self.root(), into.root());
        if !Arc::ptr_eq(&from, &into) {
            if !from.timed.load(Relaxed) {
                into.timed.store(false, Relaxed);
            }
            if !from.fusing.load(Relaxed) {
                into.fusing.store(false, Relaxed);
            }
            let _ = from.joined.set(into);
        }
    }

    pub(crate) fn set_verdict(&self, state: State) {
        self.verdict.store(state as u8, Relaxed);
    }

    pub(super) fn verdict(&self) -> Option<State> {
        State::from_u8(self.verdict.load(Relaxed))
    }

    /// Records the finished pipeline's stages, in order.
    pub(crate) fn set_stages(&self, stages: Vec<Arc<StageStats>>) {
        let _ = self.stages.set(stages.into_boxed_slice());
    }

    pub(crate) fn set_deadline(&self, after: Duration) {
        let _ = self.deadline.set(after);
    }

    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline.get().copied()
    }

    pub(crate) fn set_stall_after(&self, after: Duration) {
        let _ = self.stall_after.set(after);
    }

    /// How long a stage may hold input without progress, if the run
    /// watches for stalls.
    pub(crate) fn stall_after(&self) -> Option<Duration> {
        self.stall_after.get().copied()
    }

    /// Every stage's stats, in pipeline order; none until the pipeline
    /// has ended in its sink.
    pub(crate) fn stages(&self) -> &[Arc<StageStats>] {
        self.stages.get().map_or(&[], |stages| stages)
    }
}

/// The stop signals, the deadline's mark and the timing switch.
impl RunState {
    /// Raises the cancel signal, which stops every stage promptly; `true`
    /// if this call raised it.
    pub(crate) fn cancel(&self) -> bool {
        let first = self.cancel.raise();
        #[cfg(feature = "tracing")]
        if first {
            tracing::info!("run cancelled");
        }
        first
    }

    /// Whether the run is being cancelled.
    pub(super) fn is_cancelled(&self) -> bool {
        self.cancel.is_raised()
    }

    /// Completes once the run is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.cancel.wait().await;
    }

    /// Raises the shutdown signal, which makes the source stop taking
    /// input while the rest drains; `true` if this call raised it.
    pub(crate) fn shut_down(&self) -> bool {
        let first = self.shutdown.raise();
        #[cfg(feature = "tracing")]
        if first {
            tracing::info!("run shutting down");
        }
        first
    }

    /// The shutdown signal, for a source to watch.
    pub(crate) fn shutdown_signal(&self) -> &Signal {
        &self.shutdown
    }

    /// Records that the sink has ended, and with it the run.
    pub(crate) fn mark_ended(&self) {
        self.ended.raise();
    }

    /// Completes once the run is over or is being cancelled: from then on
    /// there is nothing left for a deadline to stop.
    pub(crate) async fn ended_or_cancelled(&self) {
        self.ended.wait().or(self.cancel.wait()).await;
    }

    /// Records that the run's deadline is what cancelled it.
    pub(crate) fn mark_deadline_passed(&self) {
        self.deadline_passed.store(true, Relaxed);
    }

    /// Whether the run's deadline is what cancelled it.
    pub(super) fn deadline_passed(&self) -> bool {
        self.deadline_passed.load(Relaxed)
    }

    /// Whether stages time their waits.
    pub(crate) fn is_timed(&self) -> bool {
        self.timed.load(Relaxed)
    }

    /// Turns the timing of waits on or off, for stages yet to start.
    pub(crate) fn set_timed(&self, on: bool) {
        self.timed.store(on, Relaxed);
    }

    /// Whether stages wired from now on may be fused.
    pub(crate) fn fuses(&self) -> bool {
        self.fusing.load(Relaxed)
    }

    /// Turns fusion on or off, for stages wired from now on.
    pub(crate) fn set_fusing(&self, on: bool) {
        self.fusing.store(on, Relaxed);
    }
}
