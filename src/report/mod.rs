//! Pure data about a run: its [`State`](state::State), one
//! [`StageReport`](stage::StageReport) per stage, the hops between them,
//! and the [`Report`](run::Report) that holds it all and prints as a table.
//!
//! Nothing here reads a running pipeline; `engine::snapshot` does, and
//! fills these types in.

#[cfg(feature = "metrics")]
mod export;
pub(crate) mod links;
mod picture;
pub(crate) mod run;
pub(crate) mod stage;
pub(crate) mod state;
mod table;
