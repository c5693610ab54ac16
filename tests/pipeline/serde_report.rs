//! With the `serde` feature, a report goes to JSON and back whole.

use std::time::Duration;

use flowgate::{Report, State};

use crate::support::watchdog;

#[test]
fn a_report_of_a_branching_run_goes_to_json_and_back_unchanged() {
    let report = watchdog(|| {
        let job = flowgate::from_iter(0..1000u32)
            .name("numbers")
            .then(|x| async move {
                if x == 0 {
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
                x
            })
            .partition(2, |x| (*x % 2) as usize, |_, branch| branch.map(|x| x * 2))
            .count();
        let control = job.control();
        assert_eq!(job.run().unwrap(), 1000);
        control.report()
    });
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state"], "done");
    assert_eq!(json["stages"][0]["name"], "numbers");
    assert_eq!(json["stages"][0]["emitted"], 1000);
    assert!(json["stages"][0]["wall_time"]["secs"].is_u64());
    assert!(!json["hops"].as_array().unwrap().is_empty());
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.to_string(), report.to_string());
    for state in [
        State::Pending,
        State::Running,
        State::Done,
        State::Cancelled,
        State::Failed,
    ] {
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(text, format!("\"{state}\""));
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), state);
    }
}
