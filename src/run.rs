//! The shared state of one run: each stage's cell of counters and state, the
//! stop signals. The driver that runs a stage is in `drive`.
//!
//! Everything here is an atomic or a closed-or-open channel, so a stage never
//! takes a lock to record what it did, and a [`Control`](crate::Control) can
//! read it from any thread while the run goes on.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};

use crate::metrics::{nanos, Feed, WaitClock};
use crate::report::State;

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
    pub(crate) fn raise(&self) -> bool {
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
pub(crate) struct Ctx {
    /// Raised to stop every stage promptly.
    pub(crate) cancel: Signal,
    /// Raised to make the source stop taking input; the rest drains.
    pub(crate) shutdown: Signal,
    /// Whether the run's deadline is what raised `cancel`.
    pub(crate) deadline_passed: AtomicBool,
    /// Whether stages time their waits; read by each stage as it starts.
    pub(crate) timed: AtomicBool,
    /// The pipeline's final state once the run has ended, as a `State`.
    verdict: AtomicU8,
    /// Every stage's cell, set once the pipeline ends in its sink.
    cells: OnceLock<Box<[Arc<Cell>]>>,
    /// The run's deadline, if it has one.
    deadline: OnceLock<Duration>,
    /// The run this one joined when its pipeline was merged into another:
    /// from then on that run's signals and verdict are the ones that count.
    joined: OnceLock<Arc<Ctx>>,
}

/// No verdict yet.
const NO_VERDICT: u8 = u8::MAX;

impl Ctx {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Ctx {
            cancel: Signal::new(),
            shutdown: Signal::new(),
            deadline_passed: AtomicBool::new(false),
            timed: AtomicBool::new(true),
            verdict: AtomicU8::new(NO_VERDICT),
            cells: OnceLock::new(),
            deadline: OnceLock::new(),
            joined: OnceLock::new(),
        })
    }

    /// The run this one belongs to: itself, unless its pipeline was merged
    /// into another one's.
    pub(crate) fn root(self: &Arc<Self>) -> Arc<Ctx> {
        let mut ctx = self;
        while let Some(next) = ctx.joined.get() {
            ctx = next;
        }
        Arc::clone(ctx)
    }

    /// Makes this run (and every run already joined to it) part of `into`.
    /// Joining a run to itself does nothing.
    pub(crate) fn join(self: &Arc<Self>, into: &Arc<Ctx>) {
        let (from, into) = (self.root(), into.root());
        if !Arc::ptr_eq(&from, &into) {
            if !from.timed.load(Relaxed) {
                into.timed.store(false, Relaxed);
            }
            let _ = from.joined.set(into);
        }
    }

    pub(crate) fn set_verdict(&self, state: State) {
        self.verdict.store(state as u8, Relaxed);
    }

    pub(crate) fn verdict(&self) -> Option<State> {
        State::from_u8(self.verdict.load(Relaxed))
    }

    /// Records the finished pipeline's stages, in order.
    pub(crate) fn set_cells(&self, cells: Vec<Arc<Cell>>) {
        let _ = self.cells.set(cells.into_boxed_slice());
    }

    pub(crate) fn set_deadline(&self, after: Duration) {
        let _ = self.deadline.set(after);
    }

    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline.get().copied()
    }

    pub(crate) fn cells(&self) -> &[Arc<Cell>] {
        self.cells.get().map_or(&[], |cells| cells)
    }
}

/// One stage's counters, clocks and state.
pub(crate) struct Cell {
    pub(crate) name: String,
    state: AtomicU8,
    /// The zero of the cell's times, which are kept as nanoseconds since it.
    pub(crate) epoch: Instant,
    pub(crate) received: AtomicU64,
    pub(crate) emitted: AtomicU64,
    /// Inputs whose outputs were all handed on; kept apart from `emitted`
    /// only for stages that expand one input into many.
    pub(crate) passed: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    started: AtomicU64,
    ended: AtomicU64,
    pub(crate) expands: bool,
    /// Set when the stage found the stage after it gone.
    pub(crate) cut_off: AtomicBool,
    /// Time spent waiting for room in the output hop.
    pub(crate) send_wait: WaitClock,
    /// Time spent waiting for input.
    pub(crate) recv_wait: WaitClock,
    /// Whether waits are timed, copied from the run when the stage starts.
    timed: AtomicBool,
    /// The stages that feed this one, and the hops they feed it through.
    pub(crate) inputs: Vec<Feed>,
}

impl Cell {
    pub(crate) fn new(name: String, expands: bool, inputs: Vec<Feed>) -> Arc<Self> {
        Arc::new(Cell {
            name,
            state: AtomicU8::new(State::Pending as u8),
            epoch: Instant::now(),
            received: AtomicU64::new(0),
            emitted: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            expands,
            cut_off: AtomicBool::new(false),
            send_wait: WaitClock::default(),
            recv_wait: WaitClock::default(),
            timed: AtomicBool::new(true),
            inputs,
        })
    }

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed)).unwrap_or(State::Pending)
    }

    /// `at` as nanoseconds since the cell's epoch, plus one, so that 0
    /// can mean unset.
    #[inline]
    pub(crate) fn stamp(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.epoch)).saturating_add(1)
    }

    /// Now, as a stamp.
    pub(crate) fn now(&self) -> u64 {
        self.stamp(Instant::now())
    }

    /// Whether the stage times its waits.
    #[inline]
    pub(crate) fn is_timed(&self) -> bool {
        self.timed.load(Relaxed)
    }

    /// The stamp the stage's run is measured up to: its end, or now if it
    /// is still running; 0 if it has not started.
    pub(crate) fn until(&self) -> u64 {
        if self.started.load(Relaxed) == 0 {
            return 0;
        }
        match self.ended.load(Relaxed) {
            0 => self.now(),
            ended => ended,
        }
    }

    /// How long the stage has run, up to the stamp `until`: from its first
    /// poll to its end, or to now if it is still running.
    pub(crate) fn wall_time(&self, until: u64) -> Duration {
        let started = self.started.load(Relaxed);
        Duration::from_nanos(until.saturating_sub(started))
    }

    /// Adds `n` to a counter; a chunk's worth at a time on the hot path.
    #[inline]
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }
}

impl Cell {
    /// Marks the stage as running from now, timing its waits if the run
    /// says so.
    pub(crate) fn begin(&self, ctx: &Ctx) {
        self.timed.store(ctx.timed.load(Relaxed), Relaxed);
        self.started.store(self.now(), Relaxed);
        self.state.store(State::Running as u8, Relaxed);
    }

    /// Marks the stage as ended now, in `state`.
    pub(crate) fn end(&self, state: State) {
        let now = self.now();
        if self.started.load(Relaxed) == 0 {
            self.started.store(now, Relaxed);
        }
        self.ended.store(now, Relaxed);
        self.state.store(state as u8, Relaxed);
    }
}
