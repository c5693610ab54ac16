//! Building and running pipelines: every stage family, the runners, settings
//! that are errors, and the metrics and report.

#[path = "../support/mod.rs"]
mod support;

mod batches;
mod config_errors;
mod equivalence;
mod errors_of_any_kind;
mod fanout;
mod fusion;
mod metrics;
mod operators;
mod parallel;
mod picture;
mod policies;
mod runners;
#[cfg(feature = "serde")]
mod serde_report;
