//! The report that accounts for every item of a run, with each stage's
//! metrics.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::links::{self, Link};
use crate::run::Cell;
pub use crate::state::State;

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
/// A stage's wall time splits three ways:
///
/// - `blocked_send`: waiting for room in its output hop, because the stages
///   after it are slower (backpressure);
/// - `blocked_recv`: waiting for input, because the stages before it are
///   slower (starvation);
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
    /// Inputs that failed and stopped the run.
    pub failed: u64,
    /// Inputs that failed and were skipped by the stage's policy.
    pub skipped: u64,
    /// Extra attempts made by a retry policy (not items: one item may be
    /// retried many times).
    pub retried: u64,
    /// Inputs that failed and went to the dead-letter output.
    pub dead_lettered: u64,
    /// Inputs the stage held when it was stopped, and the items still in
    /// its input hop then: they were dropped undelivered.
    pub dropped: u64,
    /// Inputs being worked on when a live report was made; 0 once the
    /// stage has ended.
    pub in_hand: u64,
    /// Time from the stage's start to its end (or to now, while it runs).
    pub wall_time: Duration,
    /// Part of `wall_time` not spent waiting on a hop.
    pub busy: Duration,
    /// Time spent waiting for room in the output hop.
    pub blocked_send: Duration,
    /// Time spent waiting for input.
    pub blocked_recv: Duration,
    /// Items waiting in the stage's input hop when the report was made.
    pub queued: u64,
    /// The most items its input hop has held at once.
    pub peak_queued: u64,
    /// The most items its input hop can hold.
    pub queue_capacity: u64,
}

impl StageReport {
    fn collect(cell: &Cell) -> StageReport {
        let state = cell.state();
        let until = cell.until();
        let wall_time = cell.wall_time(until);
        let blocked_send = cell.send_wait.waited(until);
        let blocked_recv = cell.recv_wait.waited(until);
        let hops = cell.inputs.iter().map(|feed| &feed.hop);
        let queued = hops.clone().map(|hop| hop.items() as u64).sum();
        let peak_queued = hops.clone().map(|hop| hop.peak() as u64).max();
        let queue_capacity = hops.map(|hop| hop.capacity() as u64).sum();
        // Outputs are counted after the inputs that made them, so read them
        // first: a live report then never shows more out than in.
        let emitted = cell.emitted.load(Relaxed);
        let passed = if cell.expands {
            cell.passed.load(Relaxed)
        } else {
            emitted
        };
        let filtered = cell.filtered.load(Relaxed);
        let failed = cell.failed.load(Relaxed);
        let skipped = cell.skipped.load(Relaxed);
        let dead_lettered = cell.dead_lettered.load(Relaxed);
        let received = cell.received.load(Relaxed);
        let accounted = passed + filtered + failed + skipped + dead_lettered;
        let rest = received.saturating_sub(accounted);
        let (dropped, in_hand) = if state.is_finished() {
            (rest, 0)
        } else {
            (0, rest)
        };
        StageReport {
            name: cell.name.clone(),
            state,
            received,
            emitted,
            passed,
            filtered,
            failed,
            skipped,
            retried: cell.retried.load(Relaxed),
            dead_lettered,
            dropped,
            in_hand,
            wall_time,
            busy: wall_time.saturating_sub(blocked_send + blocked_recv),
            blocked_send,
            blocked_recv,
            queued,
            peak_queued: peak_queued.unwrap_or(0),
            queue_capacity,
        }
    }

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

/// The account of a whole run: the pipeline's state and one
/// [`StageReport`] per stage, source first, sink last.
///
/// Get it from [`Control::report`](crate::Control::report), or from the
/// error of a run that was cancelled or ran out of time. `Display` prints
/// it as a table.
///
/// # Examples
///
/// ```
/// let job = flowgate::from_iter(0..10u32).name("numbers").filter(|x| x % 3 == 0).count();
/// let control = job.control();
/// assert_eq!(job.run()?, 4);
/// let report = control.report();
/// assert_eq!(report.delivered(), 4);
/// assert_eq!(report.stage("numbers").map(|s| s.emitted), Some(10));
/// assert!(report.to_string().contains("numbers"));
/// # Ok::<(), flowgate::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The pipeline's state when the report was made.
    pub state: State,
    /// Every stage, in pipeline order. In a graph, each branch's stages
    /// come after the stage that feeds it.
    pub stages: Vec<StageReport>,
    /// The hops, as groups of stages: what the `from` stages handed on, the
    /// `to` stages received. A plain hop has one of each; a fan-out hop has
    /// many `to`, a merge many `from`.
    pub(crate) links: Vec<Link>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            state: State::Pending,
            stages: Vec::new(),
            links: Vec::new(),
        }
    }
}

impl Report {
    pub(crate) fn collect(state: State, cells: &[Arc<Cell>]) -> Report {
        Report {
            state,
            stages: cells
                .iter()
                .map(|cell| StageReport::collect(cell))
                .collect(),
            links: links::links(cells),
        }
    }

    /// The stage called `name`, if there is one.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// Items the sinks consumed: the last stage's, or with a fan-out whose
    /// branches end in sinks, all of theirs.
    pub fn delivered(&self) -> u64 {
        if self.links.is_empty() {
            return self.stages.last().map_or(0, |sink| sink.emitted);
        }
        let feeds = |i: usize| self.links.iter().any(|link| link.from.contains(&i));
        (0..self.stages.len())
            .filter(|&i| !feeds(i))
            .map(|i| self.stages[i].emitted)
            .sum()
    }

    /// Items dropped undelivered by stopped stages, over all stages.
    pub fn dropped(&self) -> u64 {
        self.stages.iter().map(|stage| stage.dropped).sum()
    }

    /// Whether every stage accounts for each item it received exactly once,
    /// and every item one stage handed on was received by the next.
    pub fn is_balanced(&self) -> bool {
        let each = self.stages.iter().all(StageReport::is_balanced);
        let sum = |stages: &[usize], count: fn(&StageReport) -> u64| -> u64 {
            stages.iter().map(|&i| count(&self.stages[i])).sum()
        };
        let hops = self.state.is_finished().then(|| {
            self.links
                .iter()
                .all(|link| sum(&link.from, |s| s.emitted) == sum(&link.to, |s| s.received))
        });
        each && hops.unwrap_or(true)
    }

    /// The stage that holds the run back, if one does.
    ///
    /// Among the stages that a neighbour waits on (a stage before it spent
    /// at least [`WAITED_ON`] of its time blocked sending, or a stage after
    /// it blocked receiving), the one with the highest
    /// [busy share](StageReport::busy_share). `None` when no stage made
    /// another wait that long, as in a run too short to measure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let job = flowgate::from_iter(0..40u32)
    ///     .then(|x| async move {
    ///         smol::Timer::after(Duration::from_millis(1)).await;
    ///         x
    ///     })
    ///     .name("slow")
    ///     .count();
    /// let control = job.control();
    /// job.run()?;
    /// assert_eq!(control.report().bottleneck().map(|s| s.name.as_str()), Some("slow"));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn bottleneck(&self) -> Option<&StageReport> {
        let waits_on = |i: usize| {
            links::upstream(&self.links, i)
                .any(|up| self.stages[up].blocked_send_share() >= WAITED_ON)
                || links::downstream(&self.links, i)
                    .any(|down| self.stages[down].blocked_recv_share() >= WAITED_ON)
        };
        (0..self.stages.len())
            .filter(|&i| waits_on(i))
            .map(|i| &self.stages[i])
            .max_by(|a, b| a.busy_share().total_cmp(&b.busy_share()))
    }
}

/// The share of its time a stage must spend waiting on a neighbour for
/// [`Report::bottleneck`] to count that neighbour as holding it back: 1%.
pub const WAITED_ON: f64 = 0.01;

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
