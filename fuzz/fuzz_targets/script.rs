//! Runs the operation scripts of `tests/script` on bytes from libFuzzer.
//!
//! `cargo +nightly fuzz run script` from the repository root; see the
//! README's "Reliability" section.

#![no_main]

#[path = "../../tests/support/script.rs"]
mod script;

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

/// libFuzzer's hook aborts on every panic, but the scripts panic on purpose
/// inside stages, and flowgate catches those and turns them into errors.
/// Only the other panics are findings.
fn quiet_scripted_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let findings = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if message != Some(script::SCRIPTED) {
                findings(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    quiet_scripted_panics();
    script::run(data);
});
