//! Properties over many random cases: exactly-once delivery, conservation
//! of every item, bounded memory under backpressure, fairness, and stress.

#[path = "../support/mod.rs"]
mod support;

mod backpressure;
mod conservation;
mod exactly_once;
mod fairness;
mod stress;
