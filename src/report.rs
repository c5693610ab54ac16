//! States, and the report that accounts for every item of a run.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::run::{Cell, Ctx};

/// Where a stage, or a whole pipeline, is in its life, as with an asyncio
/// task.
///
/// A pipeline is `Pending` until its first stage starts and `Running` while
/// any stage runs. At the end it is `Done` when every stage finished its
/// input, `Failed` when one failed, and `Cancelled` when it was stopped.
///
/// # Examples
///
/// ```
/// use flowgate::State;
///
/// assert!(!State::Running.is_finished());
/// assert!(State::Cancelled.is_finished());
/// assert_eq!(State::Done.to_string(), "done");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Built, not started yet.
    Pending = 0,
    /// Started and not finished.
    Running = 1,
    /// Finished its whole input.
    Done = 2,
    /// Stopped before the end of its input.
    Cancelled = 3,
    /// Ended with an error or a panic.
    Failed = 4,
}

impl State {
    pub(crate) fn from_u8(n: u8) -> Option<State> {
        Some(match n {
            0 => State::Pending,
            1 => State::Running,
            2 => State::Done,
            3 => State::Cancelled,
            4 => State::Failed,
            _ => return None,
        })
    }

    /// Whether this is one of the final states: `Done`, `Cancelled` or
    /// `Failed`.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Done | State::Cancelled | State::Failed)
    }

    /// The state of a pipeline whose stages are in `states`.
    pub(crate) fn of_pipeline(states: impl Iterator<Item = State>) -> State {
        let (mut any, mut pending, mut running) = (false, true, false);
        let (mut failed, mut cancelled) = (false, false);
        for state in states {
            any = true;
            pending &= state == State::Pending;
            running |= !state.is_finished();
            failed |= state == State::Failed;
            cancelled |= state == State::Cancelled;
        }
        match () {
            () if !any || pending => State::Pending,
            () if running => State::Running,
            () if failed => State::Failed,
            () if cancelled => State::Cancelled,
            () => State::Done,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
        })
    }
}

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
}

impl StageReport {
    fn collect(cell: &Cell, ctx: &Ctx) -> StageReport {
        let state = cell.state();
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
            wall_time: cell.wall_time(ctx),
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
    links: Vec<Link>,
}

/// Stages joined by hops, by index into [`Report::stages`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    from: Vec<usize>,
    to: Vec<usize>,
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

/// Groups the hops between `cells` into links: two hops are in one link if
/// they share a sending or a receiving stage.
fn links(cells: &[Arc<Cell>]) -> Vec<Link> {
    let index = |cell: &Arc<Cell>| cells.iter().position(|c| Arc::ptr_eq(c, cell));
    // Union-find over sides: `i` is stage i's sending side, `n + i` its
    // receiving side.
    let n = cells.len();
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut used = vec![false; 2 * n];
    for (to, cell) in cells.iter().enumerate() {
        for from in cell.inputs.iter().filter_map(index) {
            let (a, b) = (find(&mut parent, from), find(&mut parent, n + to));
            parent[a] = b;
            used[from] = true;
            used[n + to] = true;
        }
    }
    let mut groups: Vec<(usize, Link)> = Vec::new();
    for side in (0..2 * n).filter(|&side| used[side]) {
        let root = find(&mut parent, side);
        let at = match groups.iter().position(|(r, _)| *r == root) {
            Some(at) => at,
            None => {
                let link = Link {
                    from: Vec::new(),
                    to: Vec::new(),
                };
                groups.push((root, link));
                groups.len() - 1
            }
        };
        let link = &mut groups[at].1;
        if side < n {
            link.from.push(side);
        } else {
            link.to.push(side - n);
        }
    }
    groups.into_iter().map(|(_, link)| link).collect()
}

impl Report {
    pub(crate) fn collect(state: State, ctx: &Ctx, cells: &[Arc<Cell>]) -> Report {
        Report {
            state,
            stages: cells
                .iter()
                .map(|cell| StageReport::collect(cell, ctx))
                .collect(),
            links: links(cells),
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
}

impl fmt::Display for Report {
    /// One row per stage: name, state, and every count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .stages
            .iter()
            .map(|stage| stage.name.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        writeln!(f, "pipeline {}", self.state)?;
        writeln!(
            f,
            "{:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>6}  {:>7}  {:>7}  {:>5}  {:>7}  {:>10}",
            "stage",
            "state",
            "received",
            "emitted",
            "filtered",
            "failed",
            "skipped",
            "retried",
            "dead",
            "dropped",
            "time",
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>6}  {:>7}  {:>7}  {:>5}  {:>7}  {:>10}",
                s.name,
                s.state.to_string(),
                s.received,
                s.emitted,
                s.filtered,
                s.failed,
                s.skipped,
                s.retried,
                s.dead_lettered,
                s.dropped,
                format!("{:.1?}", s.wall_time),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
