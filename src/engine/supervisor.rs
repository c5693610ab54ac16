//! The supervisor of a run: it polls every stage and the sink to their end,
//! stops the others at the first failure, enforces the deadline, and turns
//! their results into the run's one result.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{FutureExt, StreamExt};

use smol::Timer;

use crate::engine::drive::{is_stopped, stopped};
use crate::engine::run::RunState;
use crate::engine::snapshot;
use crate::error::Error;
use crate::report::state::State;

/// Polls a set of stage futures (or the tasks running them) until every one
/// has ended.
///
/// The first failure raises the run's cancel signal, which stops every other
/// stage promptly; they are still polled to their end, so that each records
/// what it held when it stopped, and the report is exact.
pub(crate) struct StageSet<F> {
    slots: Vec<Option<F>>,
    live: usize,
    /// The first real failure (not a stage that was merely stopped).
    error: Option<Error>,
    /// Whether any stage was stopped before the end of its input.
    stopped: bool,
}

impl<F> StageSet<F>
where
    F: Future<Output = Result<(), Error>> + Unpin,
{
    pub(crate) fn new(stages: Vec<F>) -> Self {
        let live = stages.len();
        StageSet {
            slots: stages.into_iter().map(Some).collect(),
            live,
            error: None,
            stopped: false,
        }
    }

    /// Polls every stage that has not ended, upstream first. Ready once all
    /// have ended.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, run: &RunState) -> Poll<()> {
        for slot in &mut self.slots {
            let Some(stage) = slot else { continue };
            if let Poll::Ready(result) = Pin::new(stage).poll(cx) {
                // Dropping the stage drops its hops, so its neighbours see
                // them close.
                *slot = None;
                self.live -= 1;
                if let Err(err) = result {
                    record(&mut self.error, &mut self.stopped, err, run);
                }
            }
        }
        if self.live == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Stops the run and polls every stage that has not ended once more,
    /// so that each sees the cancel and ends under its own panic guard,
    /// dropping what it holds there: a panic in an item's `Drop` is then
    /// recorded, not raised in the caller. For stages polled here, not
    /// spawned as tasks.
    pub(crate) fn wind_down(&mut self, run: &RunState) {
        run.cancel();
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll(&mut cx, run);
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
    pub(crate) fn outcome(&mut self, run: &Arc<RunState>, sink_ok: bool) -> Result<(), Error> {
        if let Some(err) = self.error.take() {
            run.set_verdict(State::Failed);
            return Err(err);
        }
        if sink_ok && !self.stopped {
            run.set_verdict(State::Done);
            return Ok(());
        }
        run.set_verdict(State::Cancelled);
        let report = Box::new(snapshot::report(run));
        match run.deadline() {
            Some(after) if run.deadline_passed() => Err(Error::DeadlineElapsed { after, report }),
            _ => Err(Error::Cancelled { report }),
        }
    }

    /// Records the error of a stage that ran outside this set (the sink).
    pub(super) fn record(&mut self, err: Error, run: &RunState) {
        record(&mut self.error, &mut self.stopped, err, run);
    }
}

/// Keeps the first real failure, and stops every stage on any error.
fn record(first: &mut Option<Error>, stopped: &mut bool, err: Error, run: &RunState) {
    if is_stopped(&err) {
        *stopped = true;
    } else if first.is_none() {
        *first = Some(err);
    }
    run.cancel();
}

/// Watches a run for stalls until it ends or is cancelled: a few times per
/// `after`, it looks at every stage's progress, and marks a stage that has
/// held input without progress for `after` as stalled (and as moving again
/// once it moves). A task of the run's own, beside its stages.
pub(crate) async fn watch_stalls(run: Arc<RunState>, after: Duration) -> Result<(), Error> {
    let mut ticks = Timer::interval((after / 4).max(Duration::from_millis(1)));
    let mut seen = Vec::new();
    loop {
        let tick = async {
            ticks.next().await;
            true
        };
        let over = async {
            run.ended_or_cancelled().await;
            false
        };
        if !tick.or(over).await {
            return Ok(());
        }
        look_for_stalls(&run, after, &mut seen);
    }
}

/// One look at every stage of `run`: `seen` holds each stage's progress
/// when last seen to change, and when.
fn look_for_stalls(run: &Arc<RunState>, after: Duration, seen: &mut Vec<(u64, Instant)>) {
    let now = Instant::now();
    let root = run.root();
    let stages = root.stages();
    seen.resize(stages.len(), (u64::MAX, now));
    for (stats, (last, since)) in stages.iter().zip(seen.iter_mut()) {
        let (progress, holds) = stats.progress();
        if progress != *last || !holds {
            (*last, *since) = (progress, now);
            stats.set_stalled(false);
        } else if now.duration_since(*since) >= after && stats.set_stalled(true) {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                stage = stats.name(),
                after = ?after,
                "stage stalled: it holds input and has made no progress"
            );
        }
    }
}

/// A whole pipeline in motion: its stages and its sink, the run's deadline,
/// and any configuration error found while building it.
pub(crate) struct Supervisor<F, S, O> {
    stages: StageSet<F>,
    sink: Option<S>,
    output: Option<O>,
    run: Arc<RunState>,
    /// A configuration error, returned at once: the pipeline never starts.
    failed: Option<Error>,
    deadline: Option<Timer>,
    /// Whether the result has been given; polled again after that, the
    /// supervisor stays pending and changes nothing.
    finished: bool,
}

// The output is only ever moved out whole, never pinned.
impl<F, S, O> Unpin for Supervisor<F, S, O> {}

impl<F, S, O> Supervisor<F, S, O>
where
    F: Future<Output = Result<(), Error>> + Unpin,
    S: Future<Output = Result<O, Error>> + Unpin,
{
    pub(crate) fn new(stages: Vec<F>, sink: S, run: Arc<RunState>) -> Self {
        let deadline = run.deadline().map(Timer::after);
        Supervisor {
            stages: StageSet::new(stages),
            sink: Some(sink),
            output: None,
            run,
            failed: None,
            finished: false,
            deadline,
        }
    }

    /// A join that fails at once, for a pipeline that was badly configured.
    pub(crate) fn failed(err: Error, run: Arc<RunState>) -> Self {
        run.set_verdict(State::Failed);
        Supervisor {
            stages: StageSet::new(Vec::new()),
            sink: None,
            output: None,
            run,
            failed: Some(err),
            finished: false,
            deadline: None,
        }
    }

    /// Ready with the sink's output once every stage and the sink are done,
    /// or with the first error once every stage has stopped. A sink that
    /// finishes while a stage is still running (as after a stage panicked)
    /// waits for that stage's result, so a failure is never hidden behind a
    /// short output.
    ///
    /// Polled again once it has given its result, it stays pending: the
    /// result was given once, and the run's state is left as it ended.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, Error>> {
        if self.finished {
            return Poll::Pending;
        }
        if let Some(err) = self.failed.take() {
            self.finished = true;
            return Poll::Ready(Err(err));
        }
        if let Some(timer) = &mut self.deadline {
            if Pin::new(timer).poll(cx).is_ready() {
                self.deadline = None;
                // Only a deadline that stops the run is reported as such.
                if self.run.cancel() {
                    self.run.mark_deadline_passed();
                }
            }
        }
        let stages_done = self.stages.poll(cx, &self.run).is_ready();
        if let Some(sink) = &mut self.sink {
            if let Poll::Ready(result) = Pin::new(sink).poll(cx) {
                self.sink = None;
                match result {
                    Ok(output) => self.output = Some(output),
                    Err(err) => self.stages.record(err, &self.run),
                }
            }
        }
        if !stages_done || self.sink.is_some() {
            return Poll::Pending;
        }
        let output = self.output.take();
        self.finished = true;
        Poll::Ready(
            self.stages
                .outcome(&self.run, output.is_some())
                .and_then(|()| output.ok_or_else(stopped)),
        )
    }

    /// Whether the result has been given.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Stops an unfinished run whose stages and sink are polled here, not
    /// spawned as tasks, and lets each end under its own panic guard; see
    /// [`StageSet::wind_down`].
    pub(crate) fn wind_down(&mut self) {
        if self.finished {
            return;
        }
        self.stages.wind_down(&self.run);
        if let Some(sink) = &mut self.sink {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(sink).poll(&mut cx);
        }
    }

    /// The run's shared state.
    pub(crate) fn run(&self) -> &Arc<RunState> {
        &self.run
    }

    /// Takes the stages and the sink out, for handing them to someone else.
    pub(crate) fn into_parts(self) -> (impl Iterator<Item = F>, Option<S>) {
        (self.stages.into_inner(), self.sink)
    }
}
