//! Driving a pipeline's stages to the end and combining their results.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use smol::Timer;

use crate::drive::is_stopped;
use crate::report::State;
use crate::run::Ctx;
use crate::{Control, Error};

/// A boxed future, as every stage is stored once built.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A built stage: it ends with `Ok` or with the error that stopped it.
pub(crate) type StageFuture = BoxFuture<Result<(), Error>>;

/// A built sink: it ends with the pipeline's output.
pub(crate) type SinkFuture<O> = BoxFuture<Result<O, Error>>;

/// Polls a set of stage futures (or the tasks running them) until every one
/// has ended.
///
/// The first failure raises the run's cancel signal, which stops every other
/// stage promptly; they are still polled to their end, so that each records
/// what it held when it stopped, and the report is exact.
pub(crate) struct Stages<F> {
    slots: Vec<Option<F>>,
    live: usize,
    /// The first real failure (not a stage that was merely stopped).
    error: Option<Error>,
    /// Whether any stage was stopped before the end of its input.
    stopped: bool,
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
            error: None,
            stopped: false,
        }
    }

    /// Polls every stage that has not ended, upstream first. Ready once all
    /// have ended.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, ctx: &Ctx) -> Poll<()> {
        for slot in &mut self.slots {
            let Some(stage) = slot else { continue };
            if let Poll::Ready(result) = Pin::new(stage).poll(cx) {
                // Dropping the stage drops its hops, so its neighbours see
                // them close.
                *slot = None;
                self.live -= 1;
                if let Err(err) = result {
                    record(&mut self.error, &mut self.stopped, err, ctx);
                }
            }
        }
        if self.live == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether no stage has failed or been stopped so far.
    pub(crate) fn is_clean(&self) -> bool {
        self.error.is_none() && !self.stopped
    }

    /// Takes the stages out, for handing them to someone else.
    pub(crate) fn into_inner(self) -> impl Iterator<Item = F> {
        self.slots.into_iter().flatten()
    }

    /// The run's error, once every stage has ended and the sink (if any)
    /// gave no output: the first failure, or else a cancel with its report.
    pub(crate) fn outcome(&mut self, ctx: &Arc<Ctx>, sink_ok: bool) -> Result<(), Error> {
        if let Some(err) = self.error.take() {
            ctx.set_verdict(State::Failed);
            return Err(err);
        }
        if sink_ok && !self.stopped {
            ctx.set_verdict(State::Done);
            return Ok(());
        }
        ctx.set_verdict(State::Cancelled);
        let report = Box::new(Control::new(Arc::clone(ctx)).report());
        match ctx.deadline() {
            Some(after) if ctx.deadline_passed.load(Relaxed) => {
                Err(Error::DeadlineElapsed { after, report })
            }
            _ => Err(Error::Cancelled { report }),
        }
    }

    /// Records the error of a stage that ran outside this set (the sink).
    pub(crate) fn record(&mut self, err: Error, ctx: &Ctx) {
        record(&mut self.error, &mut self.stopped, err, ctx);
    }
}

/// Keeps the first real failure, and stops every stage on any error.
fn record(first: &mut Option<Error>, stopped: &mut bool, err: Error, ctx: &Ctx) {
    if is_stopped(&err) {
        *stopped = true;
    } else if first.is_none() {
        *first = Some(err);
    }
    ctx.cancel.raise();
}

/// A whole pipeline in motion: its stages and its sink, the run's deadline,
/// and any configuration error found while building it.
pub(crate) struct Join<F, S, O> {
    stages: Stages<F>,
    sink: Option<S>,
    output: Option<O>,
    ctx: Arc<Ctx>,
    /// A configuration error, returned at once: the pipeline never starts.
    failed: Option<Error>,
    deadline: Option<Timer>,
}

// The output is only ever moved out whole, never pinned.
impl<F, S, O> Unpin for Join<F, S, O> {}

impl<F, S, O> Join<F, S, O>
where
    F: Future<Output = Result<(), Error>> + Unpin,
    S: Future<Output = Result<O, Error>> + Unpin,
{
    pub(crate) fn new(stages: Vec<F>, sink: S, ctx: Arc<Ctx>) -> Self {
        let deadline = ctx.deadline().map(Timer::after);
        Join {
            stages: Stages::new(stages),
            sink: Some(sink),
            output: None,
            ctx,
            failed: None,
            deadline,
        }
    }

    /// A join that fails at once, for a pipeline that was badly configured.
    pub(crate) fn failed(err: Error, ctx: Arc<Ctx>) -> Self {
        ctx.set_verdict(State::Failed);
        Join {
            stages: Stages::new(Vec::new()),
            sink: None,
            output: None,
            ctx,
            failed: Some(err),
            deadline: None,
        }
    }

    /// Ready with the sink's output once every stage and the sink are done,
    /// or with the first error once every stage has stopped. A sink that
    /// finishes while a stage is still running (as after a stage panicked)
    /// waits for that stage's result, so a failure is never hidden behind a
    /// short output.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, Error>> {
        if let Some(err) = self.failed.take() {
            return Poll::Ready(Err(err));
        }
        if let Some(timer) = &mut self.deadline {
            if Pin::new(timer).poll(cx).is_ready() {
                self.deadline = None;
                // Only a deadline that stops the run is reported as such.
                if self.ctx.cancel.raise() {
                    self.ctx.deadline_passed.store(true, Relaxed);
                }
            }
        }
        let stages_done = self.stages.poll(cx, &self.ctx).is_ready();
        if let Some(sink) = &mut self.sink {
            if let Poll::Ready(result) = Pin::new(sink).poll(cx) {
                self.sink = None;
                match result {
                    Ok(output) => self.output = Some(output),
                    Err(err) => self.stages.record(err, &self.ctx),
                }
            }
        }
        if !stages_done || self.sink.is_some() {
            return Poll::Pending;
        }
        let output = self.output.take();
        Poll::Ready(
            self.stages
                .outcome(&self.ctx, output.is_some())
                .and_then(|()| output.ok_or_else(crate::drive::stopped)),
        )
    }

    /// The run's shared state.
    pub(crate) fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Takes the stages and the sink out, for handing them to someone else.
    pub(crate) fn into_parts(self) -> (impl Iterator<Item = F>, Option<S>) {
        (self.stages.into_inner(), self.sink)
    }
}
