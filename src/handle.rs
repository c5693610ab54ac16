//! Handles of a running pipeline or consumer: the handle of one spawned on
//! an executor, and the future of one that is awaited.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use smol::Task;

use crate::job::StageTask;
use crate::join::{Join, SinkFuture, StageFuture};
use crate::{Control, Error, Job, Report, State};

/// A pipeline running as tasks on an executor: a future of its result.
///
/// Made by [`Job::spawn`](crate::Job::spawn), [`Job::spawn_local`](crate::Job::spawn_local) or
/// [`Job::spawn_global`](crate::Job::spawn_global).
/// The handle reports the pipeline's state and a live report, and can shut
/// the pipeline down or cancel it; [`control`](JobHandle::control) gives the
/// same powers to another task.
///
/// Dropping the handle cancels every stage: a pipeline nobody awaits does
/// not run on for ever. [`detach`](JobHandle::detach) lets it run on
/// unobserved instead; a [`Control`] taken before still watches it.
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
    pub(crate) join: Join<StageTask, Task<Result<O, Error>>, O>,
}

impl<O: Send + 'static> JobHandle<O> {
    /// A [`Control`] for this pipeline, to watch or stop it from another
    /// task.
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(self.join.ctx()))
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
    pub fn detach(self) {
        let (stages, sink) = self.join.into_parts();
        stages.for_each(Task::detach);
        if let Some(sink) = sink {
            sink.detach();
        }
    }
}

impl<O> Future for JobHandle<O> {
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.join.poll(cx)
    }
}

impl<O> fmt::Debug for JobHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").finish_non_exhaustive()
    }
}

/// A task consumer's handle: a future of its final state.
///
/// The consumer ends once every [`Producer`](crate::Producer) has been dropped, or one has
/// called [`close`](crate::Producer::close) and the sends already queued have been
/// answered. Its final state is then the handle's output, like a generator's
/// return value. If the handler panicked, the output is
/// [`Error::StagePanicked`].
///
/// Dropping the handle detaches the consumer: it goes on answering its
/// producers until they close.
///
/// # Examples
///
/// ```
/// let ex = smol::LocalExecutor::new();
/// let (producer, consumer) = flowgate::Consumer::new(7u8, |_: &mut u8, x: u8| x).spawn_local(&ex);
/// producer.close();
/// assert_eq!(futures_lite::future::block_on(ex.run(consumer))?, 7);
/// # Ok::<(), flowgate::Error>(())
/// ```
#[must_use = "the handle gives the consumer's final state"]
pub struct ConsumerHandle<S> {
    pub(crate) task: Option<Task<Result<S, Error>>>,
}

impl<S> Future for ConsumerHandle<S> {
    type Output = Result<S, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Polled again after it was done: there is nothing more to give.
        let Some(task) = self.task.as_mut() else {
            return Poll::Pending;
        };
        let result = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(result)
    }
}

impl<S> Drop for ConsumerHandle<S> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<S> fmt::Debug for ConsumerHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("done", &self.task.is_none())
            .finish()
    }
}

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
        let join = match self.start() {
            (Err(err), ctx) => Join::failed(err, ctx),
            (Ok((stages, sink)), ctx) => Join::new(stages, sink, ctx),
        };
        JobFuture { join }
    }
}

/// A whole pipeline as one future, made by awaiting a [`Job`].
///
/// Polling it polls every stage, so it needs no executor of its own and
/// nothing is spawned. Dropping it stops the pipeline.
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
    join: Join<StageFuture, SinkFuture<O>, O>,
}

impl<O> Future for JobFuture<O> {
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.join.poll(cx)
    }
}

impl<O> fmt::Debug for JobFuture<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFuture").finish_non_exhaustive()
    }
}
