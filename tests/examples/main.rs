//! The example binaries, run as a user would run them.

#[path = "../support/mod.rs"]
mod support;

mod example_dialog;
mod fetch_example;
