//! [`JobHandle`]: a pipeline running as tasks on an executor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use smol::Task;

use crate::control::Control;
use crate::engine::run::RunState;
use crate::engine::supervisor::Supervisor;
use crate::error::Error;
use crate::report::run::Report;
use crate::report::state::State;

/// A stage (or the sink) running as a task: a smol task, or a task on a
/// runtime of the caller's, whose result comes back through a one-slot
/// channel.
pub(super) enum Running<T> {
    /// A task on a smol executor.
    Smol(Task<T>),
    /// A task on another runtime: the wait for its result.
    Elsewhere(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> Running<T> {
    /// Lets the task go on without anyone waiting for it.
    fn detach(self) {
        if let Running::Smol(task) = self {
            task.detach();
        }
    }
}

impl<T> Future for Running<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut *self {
            Running::Smol(task) => Pin::new(task).poll(cx),
            Running::Elsewhere(result) => result.as_mut().poll(cx),
        }
    }
}

/// A stage running as a task.
pub(super) type StageTask = Running<Result<(), Error>>;

/// The supervisor of a run whose stages and sink are tasks.
type TaskSupervisor<O> = Supervisor<StageTask, Running<Result<O, Error>>, O>;

/// A pipeline running as tasks on an executor: a future of its result.
///
/// Made by [`Job::spawn`](crate::Job::spawn), [`Job::spawn_local`](crate::Job::spawn_local),
/// [`Job::spawn_global`](crate::Job::spawn_global) or
/// [`Job::spawn_with`](crate::Job::spawn_with).
/// The handle reports the pipeline's state and a live report, and can shut
/// the pipeline down or cancel it; [`control`](JobHandle::control) gives the
/// same powers to another task.
///
/// Dropping the handle cancels every stage: a pipeline nobody awaits does
/// not run on for ever. The stages end on their executor, the next time it
/// runs them, as on [`Control::cancel`]: each drops what it holds under its
/// own panic guard, and the report accounts for it. [`detach`](JobHandle::detach)
/// lets the pipeline run on unobserved instead; a [`Control`] taken before
/// still watches it.
///
/// # Examples
///
/// ```
/// let ex = smol::LocalExecutor::new();
/// let handle = flowgate::from_iter(0..4u8).count().spawn_local(&ex);
/// assert_eq!(smol::block_on(ex.run(handle))?, 4);
/// # Ok::<(), flowgate::Error>(())
/// ```
#[must_use = "dropping a job handle cancels the pipeline"]
pub struct JobHandle<O> {
    run: Arc<RunState>,
    /// `None` once detached.
    supervisor: Option<TaskSupervisor<O>>,
}

impl<O> JobHandle<O> {
    /// A handle that supervises the tasks of a spawned run.
    pub(super) fn new(supervisor: TaskSupervisor<O>) -> Self {
        JobHandle {
            run: Arc::clone(supervisor.run()),
            supervisor: Some(supervisor),
        }
    }
}

impl<O: Send + 'static> JobHandle<O> {
    /// A [`Control`] for this pipeline, to watch or stop it from another
    /// task.
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(&self.run))
    }

    /// The pipeline's state, live.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::State;
    ///
    /// let ex = smol::LocalExecutor::new();
    /// let handle = flowgate::from_iter(0..4u8).count().spawn_local(&ex);
    /// assert_eq!(handle.state(), State::Pending); // nothing has run yet
    /// let control = handle.control();
    /// assert_eq!(smol::block_on(ex.run(handle))?, 4);
    /// assert_eq!(control.state(), State::Done);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn state(&self) -> State {
        self.control().state()
    }

    /// A live report of every stage; see [`Control::report`].
    pub fn report(&self) -> Report {
        self.control().report()
    }

    /// Stops the pipeline promptly; see [`Control::cancel`]. Awaiting the
    /// handle then gives [`Error::Cancelled`] with the report.
    pub fn cancel(&self) -> bool {
        self.control().cancel()
    }

    /// Closes the pipeline's input and lets the items in flight drain; see
    /// [`Control::shutdown`]. Awaiting the handle gives the normal result.
    pub fn shutdown(&self) -> bool {
        self.control().shutdown()
    }

    /// Closes the pipeline's input, and cancels it if the items in flight
    /// have not drained within `limit`; see [`Control::shutdown_within`].
    pub fn shutdown_within(&self, limit: Duration) -> Result<bool, Error> {
        self.control().shutdown_within(limit)
    }

    /// Lets the pipeline run to its end without anyone awaiting it. Its
    /// result, and any error, are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (tx, rx) = async_channel::bounded(4);
    /// flowgate::from_iter(0..3u8)
    ///     .for_each_async(move |x| {
    ///         let tx = tx.clone();
    ///         async move { let _ = tx.send(x).await; }
    ///     })
    ///     .spawn_local(&ex)
    ///     .detach();
    /// let got: Vec<u8> = smol::block_on(ex.run(async { vec![
    ///     rx.recv().await.unwrap(), rx.recv().await.unwrap(), rx.recv().await.unwrap(),
    /// ] }));
    /// assert_eq!(got, [0, 1, 2]);
    /// ```
    pub fn detach(mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            detach_all(supervisor);
        }
    }
}

/// Lets every task of a run go on without a handle.
fn detach_all<O>(supervisor: TaskSupervisor<O>) {
    let (stages, sink) = supervisor.into_parts();
    stages.for_each(Running::detach);
    if let Some(sink) = sink {
        sink.detach();
    }
}

impl<O> Drop for JobHandle<O> {
    /// Dropped before its end, the handle cancels the run. The stages are
    /// not dropped here but end on their executor as on
    /// [`Control::cancel`](crate::Control::cancel), each dropping what it
    /// holds under its own panic guard.
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            if !supervisor.is_finished() {
                supervisor.run().cancel();
            }
            detach_all(supervisor);
        }
    }
}

impl<O> Future for JobHandle<O> {
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.supervisor {
            Some(supervisor) => supervisor.poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<O> fmt::Debug for JobHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").finish_non_exhaustive()
    }
}
