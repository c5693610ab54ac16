//! The runtime under every pipeline: the hops between stages, each stage's
//! stats and wait clocks, the state a run shares, the one loop every stage
//! runs, the driver that runs a stage, and the supervisor of a whole run.

pub(crate) mod clock;
pub(crate) mod drive;
pub(crate) mod feed;
pub(crate) mod gauge;
pub(crate) mod hop;
pub(crate) mod run;
pub(crate) mod snapshot;
pub(crate) mod stage_loop;
pub(crate) mod stats;
pub(crate) mod supervisor;
