//! [`JobFuture`]: a whole pipeline as one future, made by awaiting a
//! [`Job`].

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::engine::drive::{SinkFuture, StageFuture};
use crate::engine::supervisor::Supervisor;
use crate::error::Error;
use crate::job::run::Job;

impl<O: Send + 'static> IntoFuture for Job<O> {
    type Output = Result<O, Error>;
    type IntoFuture = JobFuture<O>;

    /// Turns the pipeline into one future that drives every stage itself.
    ///
    /// # Examples
    ///
    /// ```
    /// // Any executor will do; here, tokio's.
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let v: Vec<u8> = rt.block_on(async { flowgate::from_iter(0..3u8).collect().await })?;
    /// assert_eq!(v, [0, 1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    fn into_future(self) -> JobFuture<O> {
        let supervisor = match self.launch() {
            (Err(err), run) => Supervisor::failed(err, run),
            (Ok((stages, sink)), run) => Supervisor::new(stages, sink, run),
        };
        JobFuture { supervisor }
    }
}

/// A whole pipeline as one future, made by awaiting a [`Job`].
///
/// Polling it polls every stage, so it needs no executor of its own and
/// nothing is spawned. Dropping it stops the pipeline.
///
/// Every stage then runs in the task that awaits it: a stage may use the
/// timers and I/O of the runtime that polls it (tokio's, inside a tokio
/// runtime) as well as smol's, but the stages share that one task and
/// never run in parallel. Under tokio, [`Job::spawn_with`] spreads them
/// over the runtime's worker threads.
///
/// # Examples
///
/// ```
/// use std::future::IntoFuture;
///
/// let fut: flowgate::JobFuture<usize> = flowgate::from_iter(0..5u8).count().into_future();
/// assert_eq!(futures_lite::future::block_on(fut)?, 5);
/// # Ok::<(), flowgate::Error>(())
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct JobFuture<O> {
    supervisor: Supervisor<StageFuture, SinkFuture<O>, O>,
}

impl<O> Future for JobFuture<O> {
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.supervisor.poll(cx)
    }
}

impl<O> Drop for JobFuture<O> {
    /// Dropped before its end, the future cancels the run, and every stage
    /// ends as on [`Control::cancel`](crate::Control::cancel): what it holds
    /// is dropped under its panic guard and counted in the report.
    fn drop(&mut self) {
        self.supervisor.wind_down();
    }
}

impl<O> fmt::Debug for JobFuture<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFuture").finish_non_exhaustive()
    }
}
