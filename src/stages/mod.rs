//! The stages, one file per family: each holds its `Pipeline` methods
//! beside the work its stage does on a chunk.

pub(crate) mod batch;
pub(crate) mod fallible;
pub(crate) mod fanout;
pub(crate) mod map;
pub(crate) mod merge;
pub(crate) mod parallel;
pub(crate) mod policy;
pub(crate) mod restart;
pub(crate) mod sink;
pub(crate) mod source;
mod stateful;
pub(crate) mod throttle;
mod workers;
