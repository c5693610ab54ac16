//! The pipeline builder: the typed [`Pipeline`](builder::Pipeline), the
//! graph of stages it builds, and its newest stage waiting for its hop.

pub(crate) mod builder;
pub(crate) mod graph;
pub(crate) mod head;
