//! [`Report`]: the account of a whole run, stage by stage and hop by hop.

use crate::report::links::{self, Link};
use crate::report::stage::StageReport;
use crate::report::state::State;

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
///
/// With the `serde` feature, a report (and [`StageReport`] and
/// [`State`]) implements `Serialize` and `Deserialize`: each stage's
/// counts and times, the state in lowercase, and the hops as `hops`, the
/// indexes of the stages each joins.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let job = flowgate::from_iter(0..10u32).name("numbers").count();
/// let control = job.control();
/// job.run().unwrap();
/// let report = control.report();
/// let json = serde_json::to_string(&report).unwrap();
/// assert!(json.starts_with(r#"{"state":"done","stages":[{"name":"numbers","#));
/// let back: flowgate::Report = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, report);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    #[cfg_attr(feature = "serde", serde(rename = "hops", default))]
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
    /// A report of `stages` joined by `links`, the pipeline being in `state`.
    pub(crate) fn new(state: State, stages: Vec<StageReport>, links: Vec<Link>) -> Self {
        Report {
            state,
            stages,
            links,
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

    /// Items shed by overflow policies, over all stages: handed on, and let
    /// go by a full hop set to [`overflow`](crate::Pipeline::overflow).
    pub fn shed(&self) -> u64 {
        self.stages.iter().map(|stage| stage.shed).sum()
    }

    /// Whether every stage accounts for each item it received exactly once,
    /// and every item one stage handed on was received by the next or shed
    /// by an [overflow policy](crate::Pipeline::overflow).
    pub fn is_balanced(&self) -> bool {
        let each = self.stages.iter().all(StageReport::is_balanced);
        let sum = |stages: &[usize], count: fn(&StageReport) -> u64| -> u64 {
            stages.iter().map(|&i| count(&self.stages[i])).sum()
        };
        // What an overflow policy shed was handed on but never arrived.
        let hops = self.state.is_finished().then(|| {
            self.links.iter().all(|link| {
                sum(&link.from, |s| s.emitted)
                    == sum(&link.to, |s| s.received) + sum(&link.from, |s| s.shed)
            })
        });
        each && hops.unwrap_or(true)
    }

    /// The stage that holds the run back, if one does.
    ///
    /// Among the stages that a neighbour waits on (a stage before it spent
    /// at least [`WAITED_ON`] of its time blocked sending, or a stage after
    /// it blocked receiving), the one with the highest
    /// [busy share](StageReport::busy_share), if it was busy at least half
    /// of its time. `None` when no stage made another wait that long, as in
    /// a run too short to measure, or when every stage waited more than it
    /// worked, as when the source waits on a slow outside stream.
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
            .filter(|&i| waits_on(i) && self.stages[i].busy_share() >= BUSY_ENOUGH)
            .map(|i| &self.stages[i])
            .max_by(|a, b| a.busy_share().total_cmp(&b.busy_share()))
    }
}

/// The share of its time a stage must be busy to be named the bottleneck:
/// half. A stage that waits more than it works is not what holds a run
/// back, however its neighbours wait on it.
const BUSY_ENOUGH: f64 = 0.5;

/// The share of its time a stage must spend waiting on a neighbour for
/// [`Report::bottleneck`] to count that neighbour as holding it back: 1%.
pub const WAITED_ON: f64 = 0.01;
