//! The main example replays the Python tutorial's producer/consumer dialog
//! exactly.
//!
//! These tests run the example binary that a plain `cargo test` builds first;
//! `cargo test --test example_dialog` alone does not rebuild examples.

use crate::support::example;
use std::process::Command;

fn expected_dialog() -> Vec<String> {
    (1..=5)
        .flat_map(|n| {
            [
                format!("[Producer]Producing {n}..."),
                format!("[Consumer]Consuming {n}..."),
                "[PRODUCER]Consumer return: 200 OK".to_owned(),
            ]
        })
        .collect()
}

fn dialog(args: &[&str]) -> Vec<String> {
    let out = Command::new(example("producer_consumer"))
        .args(args)
        .output()
        .expect("the example runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_example_prints_the_tutorial_dialog() {
    assert_eq!(dialog(&[]), expected_dialog());
}

#[test]
fn the_inline_consumer_prints_the_same_dialog() {
    assert_eq!(dialog(&["--inline"]), expected_dialog());
}

#[test]
fn quiet_mode_prints_a_summary_with_the_checksum() {
    let lines = dialog(&["--quiet", "--items", "1000"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("checksum 500500"), "{}", lines[0]);
}

#[test]
fn a_bad_flag_exits_with_status_2() {
    let out = Command::new(example("producer_consumer"))
        .arg("--no-such-flag")
        .output()
        .expect("the example runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
