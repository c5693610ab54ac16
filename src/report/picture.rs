//! The report as a picture: the graph of stages and hops, with counts, as
//! Mermaid (which renders on repository pages) and as Graphviz DOT.

use std::fmt::Write;

use crate::report::run::Report;
use crate::report::stage::StageReport;

impl Report {
    /// The run's graph as a Mermaid flowchart, left to right: a box per
    /// stage with its state and counts, an arrow per hop with its peak
    /// depth over its capacity. Paste it into a ` ```mermaid ` block of a
    /// Markdown page to see it.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..10u32).name("numbers").filter(|x| x % 2 == 0).count();
    /// let control = job.control();
    /// job.run()?;
    /// let chart = control.report().to_mermaid();
    /// assert!(chart.starts_with("flowchart LR\n"));
    /// assert!(chart.contains(r#"s0["numbers<br/>done · in 10 · out 10"]"#));
    /// assert!(chart.contains("s0 -->|"));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, stage) in self.stages.iter().enumerate() {
            let label = label(stage, "<br/>").replace('"', "#quot;");
            let _ = writeln!(out, "    s{i}[\"{label}\"]");
        }
        for (from, to, hop) in self.arrows() {
            let _ = writeln!(out, "    s{from} -->|\"{hop}\"| s{to}");
        }
        out
    }

    /// The run's graph in Graphviz's DOT language, left to right: a box per
    /// stage with its state and counts, an arrow per hop with its peak
    /// depth over its capacity. `dot -Tsvg` draws it.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..10u32).name("numbers").count();
    /// let control = job.control();
    /// job.run()?;
    /// let dot = control.report().to_dot();
    /// assert!(dot.starts_with("digraph flowgate {\n"));
    /// assert!(dot.contains(r#"s0 [label="numbers\ndone · in 10 · out 10"];"#));
    /// assert!(dot.trim_end().ends_with('}'));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph flowgate {\n    rankdir=LR;\n    node [shape=box];\n");
        for (i, stage) in self.stages.iter().enumerate() {
            let label = label(stage, "\n")
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "    s{i} [label=\"{label}\"];");
        }
        for (from, to, hop) in self.arrows() {
            let _ = writeln!(out, "    s{from} -> s{to} [label=\"{hop}\"];");
        }
        out.push_str("}\n");
        out
    }

    /// Each arrow of the graph: the stage a hop's items come from, the
    /// stage they go to, and the receiving stage's peak queue over its
    /// capacity (of all its inputs together, for a stage with several), or
    /// `fused` where there is no hop: the receiving stage runs the other in
    /// its task.
    fn arrows(&self) -> Vec<(usize, usize, String)> {
        let pairs: Vec<(usize, usize)> = self
            .links
            .iter()
            .flat_map(|link| {
                link.from
                    .iter()
                    .flat_map(move |&from| link.to.iter().map(move |&to| (from, to)))
            })
            .collect();
        pairs
            .iter()
            .map(|&(from, to)| {
                let stage = &self.stages[to];
                let inputs = pairs.iter().filter(|&&(_, t)| t == to).count();
                let mut hop = if stage.queue_capacity == 0 {
                    "fused".to_owned()
                } else {
                    format!("peak {}/{}", stage.peak_queued, stage.queue_capacity)
                };
                if inputs > 1 {
                    hop.push_str(" (inputs together)");
                }
                (from, to, hop)
            })
            .collect()
    }
}

/// A stage's box: its name, then its state and counts, with the errors,
/// filtered and dropped items when there are any, split by `newline`.
fn label(stage: &StageReport, newline: &str) -> String {
    let mut text = format!(
        "{}{newline}{} · in {} · out {}",
        stage.name, stage.state, stage.received, stage.emitted
    );
    for (what, n) in [
        ("filtered", stage.filtered),
        ("failed", stage.failed),
        ("skipped", stage.skipped),
        ("dead-lettered", stage.dead_lettered),
        ("dropped", stage.dropped),
    ] {
        if n > 0 {
            let _ = write!(text, " · {what} {n}");
        }
    }
    text
}
