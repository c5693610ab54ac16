//! One stage's stats: its counters, wait clocks and state, written by the
//! stage as it works and read by reports from any thread.
//!
//! Every counter is an atomic that only the stage's own task adds to, a
//! chunk's worth at a time on the hot path. The stage's code counts through
//! the methods here; [`StageStats::report`] reads them all into a
//! [`StageReport`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::engine::clock::{WaitClock, Waiting, stamp};
use crate::engine::gauge::Gauge;
use crate::report::stage::StageReport;
use crate::report::state::State;

/// One stage's counters, clocks and state.
pub(crate) struct StageStats {
    name: String,
    state: AtomicU8,
    /// The zero of the stage's times, which are kept as stamps since it.
    epoch: Instant,
    received: AtomicU64,
    emitted: AtomicU64,
    /// Inputs whose outputs were all handed on; kept apart from `emitted`
    /// only for stages that expand one input into many.
    passed: AtomicU64,
    filtered: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    /// Outputs its output hop let go under an overflow policy.
    shed: AtomicU64,
    /// Times the stage went on after a panic.
    restarts: AtomicU64,
    started: AtomicU64,
    ended: AtomicU64,
    /// Whether one input may make any number of outputs.
    expands: bool,
    /// Set when the stage found the stage after it gone.
    cut_off: AtomicBool,
    /// Set when the stage found that the stages after it need nothing
    /// more (a `take` had its items): it ends as done.
    released: AtomicBool,
    /// Whether the run's stall watch found the stage holding input without
    /// progress for too long.
    stalled: AtomicBool,
    /// Time spent waiting for room in the output hop.
    send_wait: WaitClock,
    /// Time spent waiting for input.
    recv_wait: WaitClock,
    /// Time spent waiting for a rate limit's tokens.
    token_wait: WaitClock,
    /// Whether waits are timed, copied from the run when the stage starts.
    timed: AtomicBool,
    /// The stages that feed this one, and the hops they feed it through.
    inputs: Vec<InputHop>,
    /// The stage's span, in which it runs, whether in a task of its own or
    /// fused into another's.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// One of a stage's inputs: the stage that sends into it, and the gauge of
/// the hop between them, if there is one (none when the stage before is
/// fused into this one's task).
#[derive(Clone)]
pub(crate) struct InputHop {
    pub(crate) from: Arc<StageStats>,
    pub(crate) gauge: Option<Arc<Gauge>>,
}

impl InputHop {
    /// The input of a stage from the fused segment `from`, with no hop.
    pub(crate) fn fused(from: Arc<StageStats>) -> Self {
        InputHop { from, gauge: None }
    }
}

impl StageStats {
    /// The stats of a new stage called `name`, fed through `inputs`.
    /// `expands` says whether one input may make any number of outputs.
    pub(crate) fn new(
        name: String,
        kind: &'static str,
        expands: bool,
        inputs: Vec<InputHop>,
    ) -> Arc<Self> {
        // What the stage does (`map`, `try_then`, ...), whatever its name,
        // is in its span.
        #[cfg(feature = "tracing")]
        let span = tracing::info_span!("stage", name = %name, kind = kind);
        #[cfg(not(feature = "tracing"))]
        let _ = kind;
        Arc::new(StageStats {
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
            shed: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            expands,
            cut_off: AtomicBool::new(false),
            released: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            send_wait: WaitClock::default(),
            recv_wait: WaitClock::default(),
            token_wait: WaitClock::default(),
            timed: AtomicBool::new(true),
            #[cfg(feature = "tracing")]
            span,
            inputs,
        })
    }

    /// The stage's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The stage's span.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The stages that feed this one, and the hops they feed it through.
    pub(crate) fn inputs(&self) -> &[InputHop] {
        &self.inputs
    }

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed)).unwrap_or(State::Pending)
    }

    /// Now, as a stamp since the stage's epoch.
    fn now(&self) -> u64 {
        stamp(self.epoch, Instant::now())
    }

    /// Whether the stage times its waits.
    #[inline]
    fn is_timed(&self) -> bool {
        self.timed.load(Relaxed)
    }

    /// The stamp the stage's run is measured up to: its end, or now if it
    /// is still running; 0 if it has not started.
    fn until(&self) -> u64 {
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
    fn wall_time(&self, until: u64) -> Duration {
        let started = self.started.load(Relaxed);
        Duration::from_nanos(until.saturating_sub(started))
    }
}

/// The counts, each added by the stage's own task.
impl StageStats {
    /// `n` items taken from the stage's input.
    #[inline]
    pub(crate) fn count_received(&self, n: usize) {
        self.received.fetch_add(n as u64, Relaxed);
    }

    /// `n` items handed on to the next stage, or consumed by a sink.
    #[inline]
    pub(crate) fn count_emitted(&self, n: usize) {
        self.emitted.fetch_add(n as u64, Relaxed);
    }

    /// `n` inputs of an expanding stage whose outputs were all handed on.
    #[inline]
    pub(crate) fn count_passed(&self, n: u64) {
        self.passed.fetch_add(n, Relaxed);
    }

    /// `n` inputs dropped on purpose by a filter.
    #[inline]
    pub(crate) fn count_filtered(&self, n: usize) {
        self.filtered.fetch_add(n as u64, Relaxed);
    }

    /// One input that failed and stopped the run.
    pub(crate) fn count_failed(&self) {
        #[cfg(feature = "tracing")]
        tracing::warn!("item failed");
        self.failed.fetch_add(1, Relaxed);
    }

    /// One input that failed and was skipped by the stage's policy.
    pub(crate) fn count_skipped(&self) {
        #[cfg(feature = "tracing")]
        tracing::warn!("item skipped");
        self.skipped.fetch_add(1, Relaxed);
    }

    /// One extra attempt by a retry policy.
    pub(crate) fn count_retried(&self) {
        #[cfg(feature = "tracing")]
        tracing::warn!("item retried");
        self.retried.fetch_add(1, Relaxed);
    }

    /// One input sent to the dead-letter output.
    pub(crate) fn count_dead_lettered(&self) {
        #[cfg(feature = "tracing")]
        tracing::warn!("item dead-lettered");
        self.dead_lettered.fetch_add(1, Relaxed);
    }

    /// `n` outputs let go by the stage's output hop under its overflow
    /// policy; they were counted as emitted when they were handed on.
    #[inline]
    pub(crate) fn count_shed(&self, n: usize) {
        self.shed.fetch_add(n as u64, Relaxed);
    }

    /// One panic the stage goes on after; gives the restarts so far.
    pub(crate) fn count_restart(&self) -> u64 {
        #[cfg(feature = "tracing")]
        tracing::warn!("stage restarted after a panic");
        self.restarts.fetch_add(1, Relaxed) + 1
    }

    /// Marks the stage as stalled, or as moving again; gives whether that
    /// changed anything.
    pub(crate) fn set_stalled(&self, stalled: bool) -> bool {
        self.stalled.swap(stalled, Relaxed) != stalled
    }

    /// What the stage has done so far, as one number that grows with any
    /// progress, and whether it holds input now.
    pub(crate) fn progress(&self) -> (u64, bool) {
        let emitted = self.emitted.load(Relaxed);
        let done = if self.expands {
            self.passed.load(Relaxed)
        } else {
            emitted
        } + self.filtered.load(Relaxed)
            + self.failed.load(Relaxed)
            + self.skipped.load(Relaxed)
            + self.dead_lettered.load(Relaxed);
        let received = self.received.load(Relaxed);
        let holds = self.state() == State::Running && received > done;
        (received + done + emitted, holds)
    }

    /// Records that the stage found the stage after it gone.
    pub(super) fn mark_cut_off(&self) {
        self.cut_off.store(true, Relaxed);
    }

    /// Whether the stage found the stage after it gone.
    pub(super) fn is_cut_off(&self) -> bool {
        self.cut_off.load(Relaxed)
    }

    /// Records that the stages after this one need nothing more.
    pub(crate) fn mark_released(&self) {
        self.released.store(true, Relaxed);
    }

    /// Whether the stages after this one need nothing more.
    pub(super) fn is_released(&self) -> bool {
        self.released.load(Relaxed)
    }
}

/// The stage's life and its waits.
impl StageStats {
    /// Marks the stage as running from now, timing its waits if `timed`.
    pub(crate) fn begin(&self, timed: bool) {
        self.timed.store(timed, Relaxed);
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

    /// Starts timing a wait for room in an output hop: backpressure.
    pub(crate) fn waiting_to_send(&self) -> Waiting<'_> {
        Waiting::start(&self.send_wait, self.epoch, self.is_timed())
    }

    /// Starts timing a wait for input: starvation.
    pub(crate) fn waiting_to_receive(&self) -> Waiting<'_> {
        Waiting::start(&self.recv_wait, self.epoch, self.is_timed())
    }

    /// Starts timing a wait for a rate limit's tokens.
    pub(crate) fn waiting_for_tokens(&self) -> Waiting<'_> {
        Waiting::start(&self.token_wait, self.epoch, self.is_timed())
    }

    /// Starts timing a wait for input that the caller ends itself with
    /// [`StageStats::end_receive_wait`], for code that polls by hand.
    pub(crate) fn start_receive_wait(&self) -> Option<Instant> {
        self.recv_wait.start(self.epoch, self.is_timed())
    }

    /// Ends a wait begun at `from` by [`StageStats::start_receive_wait`].
    pub(crate) fn end_receive_wait(&self, from: Instant) {
        self.recv_wait.stop(from);
    }
}

impl StageStats {
    /// Everything the stage has counted so far, as a report.
    ///
    /// Outputs are counted after the inputs that made them, so they are
    /// read first: a live report then never shows more out than in.
    pub(crate) fn report(&self) -> StageReport {
        let state = self.state();
        let until = self.until();
        let wall_time = self.wall_time(until);
        let blocked_send = self.send_wait.waited(until);
        let blocked_recv = self.recv_wait.waited(until);
        let throttled = self.token_wait.waited(until);
        let gauges = self.inputs.iter().filter_map(|input| input.gauge.as_ref());
        let queued = gauges.clone().map(|gauge| gauge.items() as u64).sum();
        let peak_queued = gauges.clone().map(|gauge| gauge.peak() as u64).max();
        let queue_capacity = gauges.map(|gauge| gauge.capacity() as u64).sum();
        let emitted = self.emitted.load(Relaxed);
        let passed = if self.expands {
            self.passed.load(Relaxed)
        } else {
            emitted
        };
        let filtered = self.filtered.load(Relaxed);
        let failed = self.failed.load(Relaxed);
        let skipped = self.skipped.load(Relaxed);
        let dead_lettered = self.dead_lettered.load(Relaxed);
        let received = self.received.load(Relaxed);
        let accounted = passed + filtered + failed + skipped + dead_lettered;
        let rest = received.saturating_sub(accounted);
        let (dropped, in_hand) = if state.is_finished() {
            (rest, 0)
        } else {
            (0, rest)
        };
        StageReport {
            name: self.name.clone(),
            state,
            received,
            emitted,
            passed,
            filtered,
            failed,
            skipped,
            retried: self.retried.load(Relaxed),
            dead_lettered,
            dropped,
            in_hand,
            shed: self.shed.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            wall_time,
            busy: wall_time.saturating_sub(blocked_send + blocked_recv + throttled),
            blocked_send,
            blocked_recv,
            throttled,
            queued,
            peak_queued: peak_queued.unwrap_or(0),
            queue_capacity,
            stalled: self.stalled.load(Relaxed) && !state.is_finished(),
        }
    }
}

#[cfg(test)]
impl StageStats {
    /// Sets the counts of a clean run's stage, for tests of the report.
    pub(super) fn set_counts(&self, received: u64, emitted: u64) {
        self.received.store(received, Relaxed);
        self.emitted.store(emitted, Relaxed);
        self.passed.store(received, Relaxed);
    }
}
