//! The hop checks of [`Report::is_balanced`] on hand-made graphs, so that a
//! count lost on a fan-out or merge hop is shown to be caught.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::{Report, State};
use crate::metrics::{Feed, Gauge};
use crate::run::Cell;

/// source → fan (broadcast to two branches) → a, b → merge → sink, with
/// every count as a clean run of `n` items leaves it.
fn diamond(n: u64) -> Vec<Arc<Cell>> {
    let feed = |from: &Arc<Cell>| Feed {
        from: Arc::clone(from),
        hop: Gauge::new(16),
    };
    let source = Cell::new("source".into(), false, vec![]);
    let fan = Cell::new("fan".into(), true, vec![feed(&source)]);
    let a = Cell::new("a".into(), false, vec![feed(&fan)]);
    let b = Cell::new("b".into(), false, vec![feed(&fan)]);
    let merge = Cell::new("merge".into(), false, vec![feed(&a), feed(&b)]);
    let sink = Cell::new("sink".into(), false, vec![feed(&merge)]);
    let set = |cell: &Cell, received: u64, emitted: u64| {
        cell.received.store(received, Relaxed);
        cell.emitted.store(emitted, Relaxed);
        cell.passed.store(received, Relaxed);
    };
    set(&source, n, n);
    set(&fan, n, 2 * n);
    set(&a, n, n);
    set(&b, n, n);
    set(&merge, 2 * n, 2 * n);
    set(&sink, 2 * n, 2 * n);
    vec![source, fan, a, b, merge, sink]
}

fn report(cells: &[Arc<Cell>]) -> Report {
    Report::collect(State::Done, cells)
}

#[test]
fn a_clean_diamond_balances_and_delivers_from_its_one_sink() {
    let cells = diamond(10);
    let report = report(&cells);
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.delivered(), 20);
}

#[test]
fn an_item_lost_on_a_fan_out_hop_is_caught() {
    let cells = diamond(10);
    // Branch `b` received one item fewer than the fan-out sent, and every
    // stage after it agrees: only the fan-out hop is off.
    for (cell, n) in [(&cells[3], 9), (&cells[4], 19), (&cells[5], 19)] {
        set_all(cell, n);
    }
    assert_hop_caught(&report(&cells));
}

#[test]
fn an_item_lost_on_a_merge_hop_is_caught() {
    let cells = diamond(10);
    // The merge received one item fewer than its inputs sent.
    for cell in &cells[4..] {
        set_all(cell, 19);
    }
    assert_hop_caught(&report(&cells));
}

/// Sets a non-expanding stage's counts to `n` in and `n` out.
fn set_all(cell: &Cell, n: u64) {
    cell.received.store(n, Relaxed);
    cell.emitted.store(n, Relaxed);
    cell.passed.store(n, Relaxed);
}

/// Every stage balances on its own, yet the report does not: the hop check
/// found the loss.
fn assert_hop_caught(report: &Report) {
    assert!(
        report.stages.iter().all(super::StageReport::is_balanced),
        "{report}"
    );
    assert!(!report.is_balanced(), "{report}");
}
