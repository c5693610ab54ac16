//! The report's graph as Mermaid and DOT: every stage a box, every hop an
//! arrow.

use crate::support::watchdog;

fn branching_report() -> flowgate::Report {
    watchdog(|| {
        let job = flowgate::from_iter(0..1000u32)
            .name("numbers")
            .filter(|x| x % 10 != 0)
            .name("no tens")
            .partition(
                2,
                |x| (*x % 2) as usize,
                |i, branch| {
                    branch
                        .map(move |x| x * (i as u32 + 2))
                        .name(format!("times {}", i + 2))
                },
            )
            .count();
        let control = job.control();
        assert_eq!(job.run().unwrap(), 900);
        control.report()
    })
}

#[test]
fn every_stage_is_a_box_and_every_hop_an_arrow() {
    let report = branching_report();
    let mermaid = report.to_mermaid();
    let dot = report.to_dot();
    println!("{mermaid}\n{dot}");
    let boxes = mermaid
        .lines()
        .filter(|l| l.trim_start().starts_with('s') && l.contains("[\""))
        .count();
    assert_eq!(boxes, report.stages.len(), "{mermaid}");
    let arrows = mermaid.lines().filter(|l| l.contains("-->")).count();
    let dot_arrows = dot.lines().filter(|l| l.contains(" -> ")).count();
    assert_eq!(arrows, dot_arrows);
    // numbers → no tens, no tens → each branch, each branch → the merge,
    // the merge → count: at least 6 arrows for 6 stages.
    assert!(arrows >= report.stages.len(), "{mermaid}");
    for stage in &report.stages {
        assert!(
            mermaid.contains(&stage.name),
            "{} missing\n{mermaid}",
            stage.name
        );
        assert!(dot.contains(&stage.name), "{} missing\n{dot}", stage.name);
    }
    assert!(
        mermaid.contains("no tens<br/>done · in 1000 · out 900 · filtered 100"),
        "{mermaid}"
    );
    // Evens to "times 2" (500, less the 100 tens), odds to "times 3".
    assert!(
        mermaid.contains("times 2<br/>done · in 400 · out 400"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("times 3<br/>done · in 500 · out 500"),
        "{mermaid}"
    );
    assert!(mermaid.contains("(inputs together)"), "{mermaid}");
    // The source runs fused in the filter's task: no hop, so no queue.
    assert!(mermaid.contains("s0 -->|\"fused\"| s1"), "{mermaid}");
    assert!(dot.contains("fused"), "{dot}");
}

#[test]
fn quotes_in_names_are_escaped() {
    let job = flowgate::from_iter(0..3u8).name("say \"hi\"").count();
    let control = job.control();
    job.run().unwrap();
    let report = control.report();
    assert!(report.to_mermaid().contains("say #quot;hi#quot;"));
    assert!(report.to_dot().contains("say \\\"hi\\\""));
}
