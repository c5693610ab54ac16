//! The fetch example fetches every page from its own server on loopback,
//! through a parallel stage, and says `Done` for each.
//!
//! Like `example_dialog`, this runs the example binary that a plain `cargo
//! test` builds first.

use crate::support::example;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn every_request_is_fetched_and_done() {
    let requests = 7;
    let mut child = Command::new(example("fetch"))
        .args(["--requests", "7", "--concurrency", "3", "--unit-ms", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the fetch example runs");
    // A watchdog: the example must end, whatever its sockets do.
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the example can be waited for") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the fetch example hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut stdout)
        .expect("the output is text");
    assert!(status.success(), "{stdout}");
    for n in 1..=requests {
        let path = format!("/delay/{}/{n}", 20 * ((n - 1) % 3 + 1));
        let done: Vec<&str> = stdout
            .lines()
            .filter(|line| line.starts_with(&format!("Done {path} ")))
            .collect();
        assert_eq!(done.len(), 1, "one Done line for {path}:\n{stdout}");
        assert!(done[0].contains("HTTP/1.0 200 OK"), "{}", done[0]);
        let status = format!("{path} header > HTTP/1.0 200 OK");
        assert!(
            stdout.lines().any(|line| line.ends_with(&status)),
            "no status header for {path}:\n{stdout}"
        );
        let delay = format!("{path} header > X-Delay-Ms: {}", 20 * ((n - 1) % 3 + 1));
        assert!(
            stdout.lines().any(|line| line.ends_with(&delay)),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("fetched {requests} of {requests} pages")),
        "{stdout}"
    );
}
