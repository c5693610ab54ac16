//! The life of a run: closing, shutdown and cancel, panics anywhere, and what
//! becomes of items when a consumer or an end of the pipeline goes away.

#[path = "../support/mod.rs"]
mod support;

mod close;
mod consumer_gone;
mod panics;
mod states;
#[cfg(feature = "tracing")]
mod traced;
