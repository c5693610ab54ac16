//! A report of a run as it stands: every stage's stats read into a
//! [`Report`], with the hops between the stages.

use std::sync::Arc;

use crate::engine::run::RunState;
use crate::engine::stats::StageStats;
use crate::report::links::Link;
use crate::report::run::Report;
use crate::report::state::State;

/// The report of `run`: live while it goes on, final once it has ended.
pub(crate) fn report(run: &Arc<RunState>) -> Report {
    let run = run.root();
    let stages = run.stages();
    Report::new(
        state(&run),
        stages.iter().map(|stats| stats.report()).collect(),
        links(stages),
    )
}

/// The state of `run`, which is the root of its run: its verdict once it
/// has one, else what its stages' states add up to.
pub(crate) fn state(run: &RunState) -> State {
    if let Some(verdict) = run.verdict() {
        return verdict;
    }
    State::of_pipeline(run.stages().iter().map(|stats| stats.state()))
}

/// Groups the hops between `stages` into links: two hops are in one link if
/// they share a sending or a receiving stage.
fn links(stages: &[Arc<StageStats>]) -> Vec<Link> {
    let index = |stats: &Arc<StageStats>| stages.iter().position(|s| Arc::ptr_eq(s, stats));
    // Union-find over sides: `i` is stage i's sending side, `n + i` its
    // receiving side.
    let n = stages.len();
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut used = vec![false; 2 * n];
    for (to, stats) in stages.iter().enumerate() {
        for from in stats.inputs().iter().filter_map(|input| index(&input.from)) {
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

/// The hop checks of [`Report::is_balanced`] on hand-made graphs, so that a
/// count lost on a fan-out or merge hop is shown to be caught.
#[cfg(test)]
mod tests {

    use std::sync::Arc;

    use super::links;
    use crate::engine::gauge::Gauge;
    use crate::engine::stats::{InputHop, StageStats};
    use crate::report::run::Report;
    use crate::report::stage::StageReport;
    use crate::report::state::State;

    /// source → fan (broadcast to two branches) → a, b → merge → sink, with
    /// every count as a clean run of `n` items leaves it.
    fn diamond(n: u64) -> Vec<Arc<StageStats>> {
        let feed = |from: &Arc<StageStats>| InputHop {
            from: Arc::clone(from),
            gauge: Some(Gauge::new(16)),
        };
        let source = StageStats::new("source".into(), "source", false, vec![]);
        let fan = StageStats::new("fan".into(), "fan", true, vec![feed(&source)]);
        let a = StageStats::new("a".into(), "a", false, vec![feed(&fan)]);
        let b = StageStats::new("b".into(), "b", false, vec![feed(&fan)]);
        let merge = StageStats::new("merge".into(), "merge", false, vec![feed(&a), feed(&b)]);
        let sink = StageStats::new("sink".into(), "sink", false, vec![feed(&merge)]);
        let set =
            |stats: &StageStats, received: u64, emitted: u64| stats.set_counts(received, emitted);
        set(&source, n, n);
        set(&fan, n, 2 * n);
        set(&a, n, n);
        set(&b, n, n);
        set(&merge, 2 * n, 2 * n);
        set(&sink, 2 * n, 2 * n);
        vec![source, fan, a, b, merge, sink]
    }

    fn report(stages: &[Arc<StageStats>]) -> Report {
        let reports = stages.iter().map(|stats| stats.report()).collect();
        Report::new(State::Done, reports, links(stages))
    }

    #[test]
    fn a_clean_diamond_balances_and_delivers_from_its_one_sink() {
        let stages = diamond(10);
        let report = report(&stages);
        assert!(report.is_balanced(), "{report}");
        assert_eq!(report.delivered(), 20);
    }

    #[test]
    fn an_item_lost_on_a_fan_out_hop_is_caught() {
        let stages = diamond(10);
        // Branch `b` received one item fewer than the fan-out sent, and every
        // stage after it agrees: only the fan-out hop is off.
        for (stats, n) in [(&stages[3], 9), (&stages[4], 19), (&stages[5], 19)] {
            set_all(stats, n);
        }
        assert_hop_caught(&report(&stages));
    }

    #[test]
    fn an_item_lost_on_a_merge_hop_is_caught() {
        let stages = diamond(10);
        // The merge received one item fewer than its inputs sent.
        for stats in &stages[4..] {
            set_all(stats, 19);
        }
        assert_hop_caught(&report(&stages));
    }

    /// Sets a non-expanding stage's counts to `n` in and `n` out.
    fn set_all(stats: &StageStats, n: u64) {
        stats.set_counts(n, n);
    }

    /// Every stage balances on its own, yet the report does not: the hop check
    /// found the loss.
    fn assert_hop_caught(report: &Report) {
        assert!(
            report.stages.iter().all(StageReport::is_balanced),
            "{report}"
        );
        assert!(!report.is_balanced(), "{report}");
    }
}
