//! The report as a table: one row per stage, then the bottleneck.

use std::fmt;

use crate::report::run::Report;
use crate::report::stage::StageReport;

impl fmt::Display for Report {
    /// One row per stage: its state; items in, out, failed (errors) and
    /// dropped; items handed on per second; the shares of its time spent
    /// busy, blocked sending and blocked receiving; and its input hop's
    /// peak depth over its capacity. A line follows for each stage that
    /// was throttled, shed items or restarted, and a last line names the
    /// bottleneck.
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
            "{:<width$}  {:<9}  {:>10}  {:>10}  {:>6}  {:>7}  {:>9}  {:>5}  {:>9}  {:>9}  {:>11}",
            "stage",
            "state",
            "in",
            "out",
            "errors",
            "dropped",
            "items/s",
            "busy",
            "send-wait",
            "recv-wait",
            "peak queue",
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<width$}  {:<9}  {:>10}  {:>10}  {:>6}  {:>7}  {:>9}  {:>5}  {:>9}  {:>9}  {:>11}",
                s.name,
                if s.stalled {
                    "stalled".to_owned()
                } else {
                    s.state.to_string()
                },
                s.received,
                s.emitted,
                s.failed + s.skipped + s.dead_lettered,
                s.dropped,
                rate(s.items_per_sec()),
                percent(s.busy_share()),
                percent(s.blocked_send_share()),
                percent(s.blocked_recv_share()),
                queue(s),
            )?;
        }
        for s in &self.stages {
            let mut notes = Vec::new();
            if !s.throttled.is_zero() {
                notes.push(format!("throttled {}", percent(s.throttled_share())));
            }
            if s.shed > 0 {
                notes.push(format!("shed {}", s.shed));
            }
            if s.restarts > 0 {
                notes.push(format!("restarted {}x", s.restarts));
            }
            if !notes.is_empty() {
                writeln!(f, "{}: {}", s.name, notes.join(", "))?;
            }
        }
        match self.bottleneck() {
            Some(stage) => writeln!(
                f,
                "bottleneck: {} (busy {} of its {:.1?})",
                stage.name,
                percent(stage.busy_share()),
                stage.wall_time
            ),
            None => writeln!(f, "bottleneck: none found"),
        }
    }
}

/// `per_sec` with an SI prefix: `950`, `12.3k`, `4.56M`, `1.20G`.
fn rate(per_sec: f64) -> String {
    match per_sec {
        r if r >= 1e9 => format!("{:.2}G", r / 1e9),
        r if r >= 1e6 => format!("{:.2}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Peak depth over capacity, or `-` for a stage with no input hop.
fn queue(stage: &StageReport) -> String {
    if stage.queue_capacity == 0 {
        "-".to_owned()
    } else {
        format!("{}/{}", stage.peak_queued, stage.queue_capacity)
    }
}
