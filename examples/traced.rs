//! A run traced with the `tracing` feature: each stage in its own span, and
//! events for its start and end, a retry, a dead letter, a stall and the
//! cancel, printed by `tracing-subscriber`.
//!
//! ```text
//! cargo run --release --features tracing --example traced
//! ```

use std::time::Duration;

use flowgate::{Backoff, OnError};

fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let (letters, letters_rx) = flowgate::async_channel::unbounded();
    let source = flowgate::from_iter(0u32..20);
    let control = source.control();
    let result = source
        .name("numbers")
        .try_map(|n| {
            if n == 3 {
                Err(std::io::Error::other("three is bad"))
            } else {
                Ok(n)
            }
        })
        .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_dead_letter(letters))
        .name("check")
        .then(move |n| {
            let control = control.clone();
            async move {
                if n == 10 {
                    // Stuck long enough to be found stalled, then cancelled.
                    smol::Timer::after(Duration::from_millis(100)).await;
                    control.cancel();
                }
                n
            }
        })
        .name("slow")
        .count()
        .name("total")
        .stall_after(Duration::from_millis(40))
        .run();
    let result = result.map_err(|err| err.to_string());
    println!("result: {result:?}; {} dead letter(s)", letters_rx.len());
}
