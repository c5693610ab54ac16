//! [`StageReport`]: what one stage did with its items, and its metrics.

use std::time::Duration;

use crate::report::state::State;

/// What one stage did with its items.
///
/// Every item a stage received is accounted for exactly once:
///
/// `received = passed + filtered + failed + skipped + dead_lettered + dropped + in_hand`
///
/// `passed` counts inputs whose outputs were all handed on. It equals
/// `emitted` except in a `flat_map`, where one input makes any number of
/// outputs. For the source, `received` counts the items it took from its
/// iterator or stream; for the sink, `emitted` counts the items it
/// consumed.
///
/// # Time and queues
///
/// A stage's wall time splits four ways:
///
/// - `blocked_send`: waiting for room in its output hop, because the stages
///   after it are slower (backpressure);
/// - `blocked_recv`: waiting for input, because the stages before it are
///   slower (starvation);
/// - `throttled`: waiting for a rate limit
///   ([`throttle`](crate::Pipeline::throttle)) to let items through;
/// - `busy`: the rest, when it is doing its work, awaiting its own async
///   work, or ready and waiting for a thread.
///
/// A stage whose parts run at once, such as a parallel stage's collector
/// waiting to send while its dispatcher waits for input, can wait both ways
/// at the same time; `busy` then never drops below zero. Waits are timed
/// only when a stage has to wait, so they cost nothing while items flow;
/// [`Pipeline::metrics`](crate::Pipeline::metrics) turns the timing off.
///
/// `queued`, `peak_queued` and `queue_capacity` describe the hop the stage
/// receives from (for a merge, all of them: the sum now, the fullest ever,
/// the sum of capacities). The source has none, and shows zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// The stage's state when the report was made.
    pub state: State,
    /// Items taken from the stage's input.
    pub received: u64,
    /// Items handed on to the next stage (for the sink: consumed).
    pub emitted: u64,
    /// Inputs whose outputs were all handed on.
    pub passed: u64,
    /// Inputs that a filter dropped on purpose.
    pub filtered: u64,
    /// Inputs that failed and stopped the run, or that a stage set to
    /// [restart](crate::Pipeline::restart_on_panic) panicked on.
    pub failed: u64,
    /// Inputs that failed and were skipped by the stage's policy.
    pub skipped: u64,
    /// Extra attempts made by a retry policy (not items: one item may be
    /// retried many times).
    pub retried: u64,
    /// Inputs that failed and went to the dead-letter output.
    pub dead_lettered: u64,
    /// Inputs the stage held when it was stopped, and the items still in
    /// its input hop then: they were dropped undelivered. Also those no
    /// longer needed once a later stage such as
    /// [`take`](crate::Pipeline::take) had all it wanted; the stage then
    /// ends `Done`.
    pub dropped: u64,
    /// Inputs being worked on when a live report was made; 0 once the
    /// stage has ended.
    pub in_hand: u64,
    /// Outputs let go by the stage's output hop under an
    /// [overflow policy](crate::Pipeline::overflow), when it was full. They
    /// count in `emitted` (the stage handed them on) but never reach the
    /// next stage.
    #[cfg_attr(feature = "serde", serde(default))]
    pub shed: u64,
    /// Times the stage went on after a panic, when set to
    /// [restart](crate::Pipeline::restart_on_panic).
    #[cfg_attr(feature = "serde", serde(default))]
    pub restarts: u64,
    /// Time from the stage's start to its end (or to now, while it runs).
    pub wall_time: Duration,
    /// Part of `wall_time` not spent waiting on a hop.
    pub busy: Duration,
    /// Time spent waiting for room in the output hop.
    pub blocked_send: Duration,
    /// Time spent waiting for input.
    pub blocked_recv: Duration,
    /// Time spent waiting for a rate limit's tokens.
    #[cfg_attr(feature = "serde", serde(default))]
    pub throttled: Duration,
    /// Items waiting in the stage's input hop when the report was made.
    pub queued: u64,
    /// The most items its input hop has held at once.
    pub peak_queued: u64,
    /// The most items its input hop can hold.
    pub queue_capacity: u64,
    /// Whether the stage is stalled: it has held input without making any
    /// progress for longer than the run's
    /// [`stall_after`](crate::Job::stall_after). Only while it runs.
    #[cfg_attr(feature = "serde", serde(default))]
    pub stalled: bool,
}

impl StageReport {
    /// Items handed on (for the sink: consumed) per second of the stage's
    /// wall time; 0 before it starts.
    pub fn items_per_sec(&self) -> f64 {
        match self.wall_time.as_secs_f64() {
            secs if secs > 0.0 => self.emitted as f64 / secs,
            _ => 0.0,
        }
    }

    /// `busy` as a share of the wall time, from 0 to 1.
    pub fn busy_share(&self) -> f64 {
        self.share(self.busy)
    }

    /// `blocked_send` as a share of the wall time, from 0 to 1.
    pub fn blocked_send_share(&self) -> f64 {
        self.share(self.blocked_send)
    }

    /// `blocked_recv` as a share of the wall time, from 0 to 1.
    pub fn blocked_recv_share(&self) -> f64 {
        self.share(self.blocked_recv)
    }

    /// `throttled` as a share of the wall time, from 0 to 1.
    pub fn throttled_share(&self) -> f64 {
        self.share(self.throttled)
    }

    fn share(&self, part: Duration) -> f64 {
        match self.wall_time.as_secs_f64() {
            secs if secs > 0.0 => (part.as_secs_f64() / secs).min(1.0),
            _ => 0.0,
        }
    }

    /// Whether every received item is accounted for exactly once.
    pub fn is_balanced(&self) -> bool {
        self.received
            == self.passed
                + self.filtered
                + self.failed
                + self.skipped
                + self.dead_lettered
                + self.dropped
                + self.in_hand
    }
}
