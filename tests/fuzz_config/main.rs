//! Fuzzed configuration: arbitrary settings (capacity 0 or huge, chunk limit
//! 0, workers 0 or too many, zero or huge timeouts, 0 retries, bad backoff,
//! 0 branches, 0 or too many threads) and arbitrary operation scripts
//! (send, try_send, send with a timeout, close, cancel, shutdown, a panic at
//! step k, a handle or a producer dropped). Each case ends in a typed error
//! or a correct result: never a panic from flowgate, never a hang, never a
//! huge allocation up front.
//!
//! The scripts are decoded from bytes by `tests/script`, which the
//! cargo-fuzz target in `fuzz/` runs too. 1,000 cases by default, 10,000
//! with `FLOWGATE_STRESS=1`.

// Not the whole support module: the script module includes the tracked
// items itself, so that the fuzz crate can build it alone.
#[path = "../support/script.rs"]
mod script;

use proptest::prelude::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// 1,000 cases, or 10,000 under `FLOWGATE_STRESS=1`.
fn cases() -> u32 {
    match std::env::var("FLOWGATE_STRESS") {
        Ok(v) if v == "1" => 10_000,
        _ => 1_000,
    }
}

/// No case may allocate this much in all: a buffer sized from a huge
/// setting would.
const MOST_BYTES: usize = 256 << 20;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_script_ends_in_a_typed_error_or_a_correct_result(
        bytes in prop::collection::vec(any::<u8>(), 0..96)
    ) {
        let region = Region::new(GLOBAL);
        script::run(&bytes);
        let used = region.change();
        prop_assert!(
            used.bytes_allocated < MOST_BYTES,
            "the case allocated {} bytes",
            used.bytes_allocated
        );
    }
}
