//! The four ways to run a pipeline, for tests that must hold under each.

use std::future::IntoFuture;
use std::time::Duration;

use flowgate::{Error, Pipeline};
use futures_lite::StreamExt;
use proptest::prelude::*;

/// How a test runs its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `Job::run`: every stage a task on one thread.
    Run,
    /// `Job::run_on_threads(2)`.
    Threads,
    /// The job awaited as one future, with nothing spawned.
    Future,
    /// The pipeline read as a stream.
    Stream,
}

impl Runner {
    /// Any of the four, each as likely.
    pub fn any() -> impl Strategy<Value = Runner> {
        prop_oneof![
            Just(Runner::Run),
            Just(Runner::Threads),
            Just(Runner::Future),
            Just(Runner::Stream),
        ]
    }

    /// Runs `pipeline` to its end and collects its output: with the
    /// `collect` sink, or read from the stream.
    pub fn collect<T: Send + 'static>(self, pipeline: Pipeline<T>) -> Result<Vec<T>, Error> {
        match self {
            Runner::Run => pipeline.collect().run(),
            Runner::Threads => pipeline.collect().run_on_threads(2),
            Runner::Future => futures_lite::future::block_on(pipeline.collect().into_future()),
            Runner::Stream => futures_lite::future::block_on(async {
                let mut stream = pipeline.into_stream();
                let mut out = Vec::new();
                while let Some(item) = stream.next().await {
                    out.push(item?);
                }
                Ok(out)
            }),
        }
    }

    /// Runs `pipeline` to its end, calling `f` on each output as it comes,
    /// so that the outputs before a failure are seen too. A job-based runner
    /// gives the run `deadline`, if any; a stream has no deadline.
    pub fn for_each<T: Send + 'static>(
        self,
        pipeline: Pipeline<T>,
        deadline: Option<Duration>,
        mut f: impl FnMut(T) + Send + 'static,
    ) -> Result<(), Error> {
        if self == Runner::Stream {
            return futures_lite::future::block_on(async {
                let mut stream = pipeline.into_stream();
                while let Some(item) = stream.next().await {
                    f(item?);
                }
                Ok(())
            });
        }
        let mut job = pipeline.for_each(f);
        if let Some(after) = deadline {
            job = job.deadline(after);
        }
        match self {
            Runner::Run => job.run(),
            Runner::Threads => job.run_on_threads(2),
            _ => futures_lite::future::block_on(job.into_future()),
        }
    }
}
