//! The shape of a run's graph, as the report sees it: which stages each
//! hop joins.

use std::sync::Arc;

use crate::run::Cell;

/// Stages joined by hops, by index into [`Report::stages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) from: Vec<usize>,
    pub(crate) to: Vec<usize>,
}

/// Groups the hops between `cells` into links: two hops are in one link if
/// they share a sending or a receiving stage.
pub(crate) fn links(cells: &[Arc<Cell>]) -> Vec<Link> {
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
        for from in cell.inputs.iter().filter_map(|feed| index(&feed.from)) {
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

/// The stages that send into a hop that stage `i` receives from.
pub(crate) fn upstream(links: &[Link], i: usize) -> impl Iterator<Item = usize> + '_ {
    links
        .iter()
        .filter(move |link| link.to.contains(&i))
        .flat_map(|link| link.from.iter().copied())
}

/// The stages that receive from a hop that stage `i` sends into.
pub(crate) fn downstream(links: &[Link], i: usize) -> impl Iterator<Item = usize> + '_ {
    links
        .iter()
        .filter(move |link| link.from.contains(&i))
        .flat_map(|link| link.to.iter().copied())
}
