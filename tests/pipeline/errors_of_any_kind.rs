//! Fallible stages take the errors users already have: boxed errors and
//! `anyhow::Error`, with the chain of errors under them kept.

use anyhow::Context;
use flowgate::{Error, OnError, Outcome};

use crate::support::watchdog;

#[test]
fn an_anyhow_error_fails_the_run_with_its_context_chain() {
    let err = watchdog(|| {
        flowgate::from_iter(["1", "x"])
            .try_map(|s: &str| s.parse::<u32>().with_context(|| format!("parsing {s:?}")))
            .name("parse")
            .count()
            .run()
            .unwrap_err()
    });
    let Error::Stage { stage, source } = err else {
        panic!("{err}")
    };
    assert_eq!(stage, "parse");
    assert_eq!(source.to_string(), r#"parsing "x""#);
    let cause = source.source().expect("the error under the context");
    assert_eq!(cause.to_string(), "invalid digit found in string");
}

#[test]
fn a_boxed_error_is_dead_lettered_like_any_other() {
    type Boxed = Box<dyn std::error::Error + Send + Sync>;
    let (letters, letters_rx) = flowgate::async_channel::unbounded();
    let (told, told_rx) = std::sync::mpsc::channel();
    let items = ["1", "x", "3"].into_iter().map(move |s| {
        let told = told.clone();
        (s, move |outcome: Outcome| told.send((s, outcome)).unwrap())
    });
    let n = watchdog(move || {
        flowgate::from_iter_acked(items)
            .try_map(|s: &str| {
                s.parse::<u32>()
                    .map_err(|e| Boxed::from(format!("{s}: {e}")))
            })
            .on_error(OnError::dead_letter(letters))
            .name("parse")
            .count()
            .run()
            .unwrap()
    });
    assert_eq!(n, 2);
    assert_eq!(letters_rx.try_recv().unwrap().item, "x");
    let outcomes: Vec<_> = told_rx.iter().collect();
    let x = outcomes.iter().find(|(s, _)| *s == "x").unwrap();
    assert_eq!(
        x.1,
        Outcome::DeadLettered {
            stage: "parse".to_owned(),
            error: "x: invalid digit found in string".to_owned()
        }
    );
}
