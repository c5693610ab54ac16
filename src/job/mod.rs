//! A complete pipeline and how it runs: the [`Job`](run::Job), the
//! [`JobHandle`](handle::JobHandle) of one spawned on an executor, the
//! [`JobFuture`](future::JobFuture) of one awaited, and the
//! [`PipelineStream`](stream::PipelineStream) of one read as a stream.

pub(crate) mod future;
pub(crate) mod handle;
pub(crate) mod run;
pub(crate) mod stream;
