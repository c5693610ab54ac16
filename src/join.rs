//! Driving a pipeline's stages to the end and combining their results.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::FutureExt;

use crate::error::panic_message;
use crate::Error;

/// A boxed future, as every stage is stored once built.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A built stage: it ends with `Ok` or with the error that stopped it.
pub(crate) type StageFuture = BoxFuture<Result<(), Error>>;

/// A built sink: it ends with the pipeline's output.
pub(crate) type SinkFuture<O> = BoxFuture<Result<O, Error>>;

/// Polls a set of stage futures (or the tasks running them) until all are
/// done, or until one fails.
///
/// On the first failure every other stage is dropped, which cancels it: a
/// stage waiting on a source that never ends must not keep the pipeline
/// alive after another stage has failed.
pub(crate) struct Stages<F> {
    slots: Vec<Option<F>>,
    live: usize,
}

impl<F> Stages<F>
where
    F: Future<Output = Result<(), Error>> + Unpin,
{
    pub(crate) fn new(stages: Vec<F>) -> Self {
        let live = stages.len();
        Stages {
            slots: stages.into_iter().map(Some).collect(),
            live,
        }
    }

    /// Polls every stage that has not finished, upstream first. Ready with
    /// `Ok` once all have finished, with `Err` as soon as one fails.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        for slot in &mut self.slots {
            let Some(stage) = slot else { continue };
            if let Poll::Ready(result) = Pin::new(stage).poll(cx) {
                // Dropping the stage drops its hops, so its neighbours see
                // them close.
                *slot = None;
                self.live -= 1;
                if let Err(err) = result {
                    self.cancel();
                    return Poll::Ready(Err(err));
                }
            }
        }
        if self.live == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Drops every stage that is still running.
    pub(crate) fn cancel(&mut self) {
        self.slots.clear();
        self.live = 0;
    }

    /// Takes the stages out, for handing them to someone else.
    pub(crate) fn into_inner(self) -> impl Iterator<Item = F> {
        self.slots.into_iter().flatten()
    }
}

/// A whole pipeline in motion: its stages and its sink, plus any
/// configuration error found while building it.
pub(crate) struct Join<F, S, O> {
    stages: Stages<F>,
    sink: Option<S>,
    output: Option<O>,
    failed: Option<Error>,
}

// The output is only ever moved out whole, never pinned.
impl<F, S, O> Unpin for Join<F, S, O> {}

impl<F, S, O> Join<F, S, O>
where
    F: Future<Output = Result<(), Error>> + Unpin,
    S: Future<Output = Result<O, Error>> + Unpin,
{
    pub(crate) fn new(stages: Vec<F>, sink: S) -> Self {
        Join {
            stages: Stages::new(stages),
            sink: Some(sink),
            output: None,
            failed: None,
        }
    }

    /// A join that fails at once, for a pipeline that was badly configured.
    pub(crate) fn failed(err: Error) -> Self {
        Join {
            stages: Stages::new(Vec::new()),
            sink: None,
            output: None,
            failed: Some(err),
        }
    }

    /// Ready with the sink's output once every stage and the sink are done,
    /// or with the first error. A sink that finishes while a stage is still
    /// running (as after a stage panicked) waits for that stage's result, so
    /// a failure is never hidden behind a short output.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, Error>> {
        if let Some(err) = self.failed.take() {
            return Poll::Ready(Err(err));
        }
        let stages_done = match self.stages.poll(cx) {
            Poll::Ready(Err(err)) => {
                self.sink = None;
                return Poll::Ready(Err(err));
            }
            Poll::Ready(Ok(())) => true,
            Poll::Pending => false,
        };
        if let Some(sink) = &mut self.sink {
            if let Poll::Ready(result) = Pin::new(sink).poll(cx) {
                self.sink = None;
                match result {
                    Ok(output) => self.output = Some(output),
                    Err(err) => {
                        self.stages.cancel();
                        return Poll::Ready(Err(err));
                    }
                }
            }
        }
        match self.output.take() {
            Some(output) if stages_done => Poll::Ready(Ok(output)),
            output => {
                self.output = output;
                Poll::Pending
            }
        }
    }

    /// Takes the stages and the sink out, for handing them to someone else.
    pub(crate) fn into_parts(self) -> (impl Iterator<Item = F>, Option<S>) {
        (self.stages.into_inner(), self.sink)
    }
}

/// Runs `fut` as the stage called `name`, turning a panic into
/// [`Error::StagePanicked`].
pub(crate) fn guard<T: 'static>(
    name: String,
    fut: impl Future<Output = T> + Send + 'static,
) -> BoxFuture<Result<T, Error>> {
    Box::pin(async move {
        AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .map_err(|payload| Error::StagePanicked {
                stage: name,
                message: panic_message(payload),
            })
    })
}
