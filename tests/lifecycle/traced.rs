//! With the `tracing` feature: a span per stage, and events for a stage's
//! life, retries, dead letters and a cancel, in order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use flowgate::{Backoff, OnError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::support::watchdog;

/// One event as the test saw it: the stage whose span it was in, its
/// message, and its other fields.
#[derive(Debug, Clone)]
struct Seen {
    stage: Option<String>,
    message: String,
    fields: HashMap<String, String>,
}

/// A subscriber that keeps every event, with the stage span it was in.
#[derive(Default, Clone)]
struct Keep {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<HashMap<u64, String>>>,
    /// Each stage span's name and kind.
    kinds: Arc<Mutex<Vec<(String, String)>>>,
    events: Arc<Mutex<Vec<Seen>>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// A second subscriber, registered for as long as the tests run. `tracing`
/// caches, per call site, whether a subscriber wants its events. While only
/// one subscriber is registered it asks the default subscriber of the
/// thread that reaches the call site first, which for a test running beside
/// these has none: the call site is then cached as unwanted, and this
/// test's events from it are lost. With two registered, it asks them both.
static SECOND: LazyLock<tracing::Dispatch> =
    LazyLock::new(|| tracing::Dispatch::new(Keep::default()));

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Keep {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::default();
        span.record(&mut fields);
        if let Some(name) = fields.0.remove("name") {
            let kind = fields.0.remove("kind").unwrap_or_default();
            self.kinds.lock().unwrap().push((name.clone(), kind));
            self.spans.lock().unwrap().insert(id, name);
        }
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let stage = ENTERED
            .with(|entered| entered.borrow().last().copied())
            .and_then(|id| self.spans.lock().unwrap().get(&id).cloned());
        self.events.lock().unwrap().push(Seen {
            stage,
            message,
            fields: fields.0,
        });
    }
    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &Id) {
        ENTERED.with(|entered| {
            entered.borrow_mut().pop();
        });
    }
}

#[test]
fn a_run_that_retries_dead_letters_and_is_cancelled_is_traced_stage_by_stage() {
    LazyLock::force(&SECOND);
    let events = watchdog(|| {
        let keep = Keep::default();
        let events = Arc::clone(&keep.events);
        let kinds = Arc::clone(&keep.kinds);
        tracing::subscriber::with_default(keep, || {
            let (letters, letters_rx) = flowgate::async_channel::unbounded();
            let source = flowgate::from_iter(0u32..);
            let control = source.control();
            let err = source
                .name("numbers")
                .try_map(|n| {
                    if n == 3 {
                        Err(std::io::Error::other("three"))
                    } else {
                        Ok(n)
                    }
                })
                .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_dead_letter(letters))
                .name("check")
                .inspect(move |n| {
                    if *n == 10 {
                        control.cancel();
                    }
                })
                .name("watch")
                .count()
                .name("total")
                .run()
                .unwrap_err();
            assert!(matches!(err, flowgate::Error::Cancelled { .. }));
            assert_eq!(letters_rx.len(), 1);
        });
        let kinds = kinds.lock().unwrap().clone();
        for (name, kind) in [
            ("numbers", "source"),
            ("check", "try_map"),
            ("watch", "inspect"),
            ("total", "count"),
        ] {
            assert!(
                kinds.contains(&(name.to_owned(), kind.to_owned())),
                "no span of `{name}` as `{kind}`: {kinds:?}"
            );
        }
        events.lock().unwrap().clone()
    });
    let of = |stage: &str, message: &str| {
        events
            .iter()
            .position(|e| e.stage.as_deref() == Some(stage) && e.message == message)
            .unwrap_or_else(|| panic!("no `{message}` in `{stage}`: {events:#?}"))
    };
    // Every stage that took items started and ended in its own span; the
    // sink may be cancelled before its first poll, and then only ends.
    for stage in ["numbers", "check", "watch", "total"] {
        let ended = of(stage, "stage ended");
        if stage != "total" {
            assert!(of(stage, "stage started") < ended);
        }
        let end = &events[ended];
        assert_eq!(
            end.fields.get("state").map(String::as_str),
            Some("cancelled"),
            "{end:?}"
        );
    }
    // In order: the retry, the dead letter, the cancel.
    let retried = of("check", "item retried");
    let dead = of("check", "item dead-lettered");
    let cancel = events
        .iter()
        .position(|e| e.message == "run cancelled")
        .expect("a cancel event");
    assert!(of("check", "stage started") < retried);
    assert!(retried < dead && dead < cancel, "{events:#?}");
    assert!(cancel < of("check", "stage ended"));
    assert_eq!(events[cancel].stage.as_deref(), Some("watch"));
}

#[test]
fn a_fused_stage_is_traced_in_its_own_span() {
    // `double` and `picky` run fused in the sink's task; each still starts,
    // logs and ends in its own span, and the panic is `picky`'s.
    LazyLock::force(&SECOND);
    let events = watchdog(|| {
        let keep = Keep::default();
        let events = Arc::clone(&keep.events);
        tracing::subscriber::with_default(keep, || {
            let err = flowgate::from_iter(0..100u32)
                .map(|x| x * 2)
                .name("double")
                .inspect(|x| {
                    tracing::info!("saw {x}");
                    assert!(*x != 50, "fifty");
                })
                .name("picky")
                .count()
                .name("total")
                .run()
                .unwrap_err();
            assert!(
                matches!(err, flowgate::Error::StagePanicked { ref stage, .. } if stage == "picky")
            );
        });
        events.lock().unwrap().clone()
    });
    let at = |stage: &str, message: &str| {
        events
            .iter()
            .find(|e| e.stage.as_deref() == Some(stage) && e.message == message)
            .unwrap_or_else(|| panic!("no `{message}` in `{stage}`: {events:#?}"))
    };
    at("double", "stage started");
    at("picky", "saw 0");
    at("picky", "stage panicked");
    let ended = at("total", "stage ended");
    assert_eq!(
        ended.fields.get("state").map(String::as_str),
        Some("cancelled")
    );
    let ended = at("double", "stage ended");
    assert_eq!(
        ended.fields.get("state").map(String::as_str),
        Some("cancelled")
    );
}
