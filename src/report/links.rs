//! The shape of a run's graph, as the report sees it: which stages each
//! hop joins.

/// Stages joined by hops, by index into
/// [`Report::stages`](crate::Report::stages).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Link {
    pub(crate) from: Vec<usize>,
    pub(crate) to: Vec<usize>,
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
