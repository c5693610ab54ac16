//! The driver of a stage: it runs the stage's future, stops it when the
//! run is cancelled, turns a panic into an error naming the stage, and keeps
//! the stage's stats true however it ends.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;

use futures_lite::FutureExt;

use crate::engine::run::RunState;
use crate::engine::stats::StageStats;
use crate::error::{Error, panic_message};
use crate::report::state::State;

/// A boxed future, as every stage is stored once built.
pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A built stage: it ends with `Ok` or with the error that stopped it.
pub(crate) type StageFuture = BoxFuture<Result<(), Error>>;

/// A built sink: it ends with the pipeline's output.
pub(crate) type SinkFuture<O> = BoxFuture<Result<O, Error>>;

/// The panic of a fused segment, as it unwinds through its host's task: it
/// names the segment, whose error it is.
pub(crate) struct SegmentPanic {
    pub(crate) stage: String,
    pub(crate) message: String,
}

/// Ends the stats of a fused segment with its host's `state`, unless the
/// segment failed by itself first.
fn end_segment(stats: &StageStats, state: State) {
    if stats.state() != State::Failed {
        stats.end(state);
    }
}

/// Marks a stage's end in its stats however the stage's future ends, even
/// if it is dropped unfinished, as when its task is cancelled, or dropped
/// before it was ever polled, as when a handle is dropped at once.
struct EndMark {
    stats: Arc<StageStats>,
    /// The fused segments that run in the stage's task: they start and
    /// end with it.
    segments: Vec<Arc<StageStats>>,
    ended: bool,
}

impl EndMark {
    fn start(&self, run: &RunState) {
        let timed = run.is_timed();
        self.stats.begin(timed);
        self.segments.iter().for_each(|stats| stats.begin(timed));
    }

    fn end(&mut self, state: State) {
        self.stats.end(state);
        self.segments
            .iter()
            .for_each(|stats| end_segment(stats, state));
        self.ended = true;
    }
}

impl Drop for EndMark {
    fn drop(&mut self) {
        if !self.ended {
            self.end(State::Cancelled);
        }
    }
}

/// The error a stage returns when it was stopped rather than failing. The
/// join never reports it as the run's cause; it builds its own.
pub(crate) fn stopped() -> Error {
    Error::Cancelled {
        report: Box::default(),
    }
}

/// Whether `err` only says that a stage was stopped.
pub(super) fn is_stopped(err: &Error) -> bool {
    matches!(err, Error::Cancelled { .. })
}

/// Runs `fut` as the stage whose stats are `stats`, with the fused
/// segments whose stats are `segments` in its task.
///
/// The stage's state goes from `Pending` to `Running` on its first poll, and
/// to `Done`, `Failed` or `Cancelled` at its end. A panic becomes
/// [`Error::StagePanicked`]. Once the run's cancel signal is raised the
/// stage's future is dropped at once, whatever it is waiting on; the items
/// it held are then counted as dropped by the report.
///
/// A stage that stopped because the stages after it needed nothing more
/// (a `take` had its items) has done its work: it ends `Done`, with the
/// value `released` gives, if it gives one (a sink, which has no stage
/// after it, gives none).
///
/// The segments take the stage's state at its end, except one that
/// panicked: that one has failed, the run's error names it, and the stage
/// that ran it is cancelled.
pub(crate) fn drive<T: 'static>(
    stats: Arc<StageStats>,
    segments: Vec<Arc<StageStats>>,
    run: Arc<RunState>,
    released: fn() -> Option<T>,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> BoxFuture<Result<T, Error>> {
    // Made before the future, so that even a future dropped unpolled marks
    // its stage as cancelled.
    #[cfg(feature = "tracing")]
    let span = stats.span().clone();
    let mut mark = EndMark {
        stats,
        segments,
        ended: false,
    };
    let stage = async move {
        // Resolved now, once the graph is built: a merge may have joined
        // this stage's run to another.
        let run = run.root();
        if !run.is_cancelled() {
            mark.start(&run);
            #[cfg(feature = "tracing")]
            for stats in mark.segments.iter().chain([&mark.stats]) {
                stats.span().in_scope(|| tracing::debug!("stage started"));
            }
        }
        let (state, result) = match guarded(&run, fut).await {
            Err(payload) if payload.is::<SegmentPanic>() => {
                let SegmentPanic { stage, message } = *payload
                    .downcast::<SegmentPanic>()
                    .expect("checked to be a segment's panic");
                run.cancel();
                (
                    State::Cancelled,
                    Err(Error::StagePanicked { stage, message }),
                )
            }
            Err(payload) => (
                State::Failed,
                Err(Error::StagePanicked {
                    stage: mark.stats.name().to_owned(),
                    message: panic_message(payload),
                }),
            ),
            Ok(None) => (State::Cancelled, Err(stopped())),
            // Its input ended or its output closed because the run is
            // being stopped: the stage did not finish its real input.
            Ok(Some(Ok(_))) if mark.stats.is_cut_off() || run.is_cancelled() => {
                (State::Cancelled, Err(stopped()))
            }
            Ok(Some(Ok(value))) => (State::Done, Ok(value)),
            Ok(Some(Err(err))) if is_stopped(&err) => {
                match released().filter(|_| mark.stats.is_released()) {
                    Some(value) => (State::Done, Ok(value)),
                    None => (State::Cancelled, Err(err)),
                }
            }
            Ok(Some(Err(err))) => (State::Failed, Err(err)),
        };
        mark.end(state);
        #[cfg(feature = "tracing")]
        trace_ends(&mark, state, &result);
        if state == State::Failed {
            // A failure stops the whole run from here, so that it stops even
            // when nobody supervises it any more (a detached handle).
            run.cancel();
        }
        result
    };
    #[cfg(feature = "tracing")]
    let stage = tracing::Instrument::instrument(stage, span);
    Box::pin(stage)
}

/// The events of the ends of a stage and of the fused segments in its task,
/// each in its own span: a segment that panicked has the panic, and the
/// others the state of the stage.
#[cfg(feature = "tracing")]
fn trace_ends<T>(mark: &EndMark, state: State, result: &Result<T, Error>) {
    let panicked = match result {
        Err(Error::StagePanicked { stage, .. }) => Some(stage.as_str()),
        _ => None,
    };
    let stopped: Result<(), Error> = Err(stopped());
    for stats in mark.segments.iter().chain([&mark.stats]) {
        let _in = stats.span().enter();
        if panicked == Some(stats.name()) {
            trace_end(State::Failed, result);
        } else if panicked.is_some() && state != State::Failed {
            // A segment's panic stopped this one.
            trace_end(state, &stopped);
        } else {
            trace_end(state, result);
        }
    }
}

/// The event of a stage's end, in the stage's span.
#[cfg(feature = "tracing")]
fn trace_end<T>(state: State, result: &Result<T, Error>) {
    match result {
        Err(Error::StagePanicked { message, .. }) => {
            tracing::error!(%state, panic = %message, "stage panicked");
        }
        Err(err) if state == State::Failed => {
            let error = crate::error::chain(err);
            tracing::error!(%state, %error, "stage failed");
        }
        _ => tracing::info!(%state, "stage ended"),
    }
}

/// Runs `fut` until it ends or the run is cancelled, whichever comes first:
/// `Some` output, or `None` if cancelled (or cancelled before it began).
///
/// Either way the future is gone when this returns. Whatever it still held
/// (items in hand, its hops) is dropped here, under the same panic guard as
/// its work, so a panic in an item's `Drop` is an `Err` like any other.
async fn guarded<T>(
    run: &RunState,
    fut: impl Future<Output = T>,
) -> std::thread::Result<Option<T>> {
    let teardown = |drop: &mut dyn FnMut()| std::panic::catch_unwind(AssertUnwindSafe(drop));
    let mut work = pin!(Some(AssertUnwindSafe(fut).catch_unwind()));
    if run.is_cancelled() {
        teardown(&mut || work.set(None))?;
        return Ok(None);
    }
    let running = async { Some(work.as_mut().as_pin_mut()?.await) };
    let stop = async {
        run.cancelled().await;
        None
    };
    let outcome = running.or(stop).await;
    let dropped = teardown(&mut || work.set(None));
    match outcome {
        Some(Err(payload)) => Err(payload),
        Some(Ok(value)) => dropped.map(|()| Some(value)),
        None => dropped.map(|()| None),
    }
}

/// Runs `fut` as a worker of the stage called `stage`, a task beside the
/// stage's own, as the workers of a parallel stage are. Like [`drive`], it
/// stops on cancel and turns a panic into [`Error::StagePanicked`]; the
/// stage's state is left to the future that owns it.
pub(crate) fn drive_worker(
    stage: String,
    run: Arc<RunState>,
    fut: impl Future<Output = ()> + Send + 'static,
) -> StageFuture {
    #[cfg(feature = "tracing")]
    let span = tracing::info_span!("stage", name = %stage, worker = true);
    let worker = async move {
        let run = run.root();
        match guarded(&run, fut).await {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(stopped()),
            Err(payload) => {
                run.cancel();
                let message = panic_message(payload);
                #[cfg(feature = "tracing")]
                tracing::error!(panic = %message, "worker panicked");
                Err(Error::StagePanicked { stage, message })
            }
        }
    };
    #[cfg(feature = "tracing")]
    let worker = tracing::Instrument::instrument(worker, span);
    Box::pin(worker)
}
