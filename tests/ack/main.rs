//! Send and acknowledge: consumers and producers, sends with a time limit,
//! pipelined replies, and pipelines opened as services.

#[path = "../support/mod.rs"]
mod support;

mod disruptions;
mod replies;
mod send_and_reply;
mod send_timeout;
mod service;
mod tickets;
