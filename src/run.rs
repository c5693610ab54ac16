//! The shared state of one run: each stage's cell of counters and state, the
//! stop signals, and the driver that runs a stage and keeps its cell true.
//!
//! Everything here is an atomic or a closed-or-open channel, so a stage never
//! takes a lock to record what it did, and a [`Control`](crate::Control) can
//! read it from any thread while the run goes on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::error::panic_message;
use crate::join::BoxFuture;
use crate::report::{Report, State};
use crate::Error;

/// A one-way flag that tasks can wait on: raising it closes a channel, which
/// wakes every waiter at once.
pub(crate) struct Signal {
    tx: Sender<()>,
    /// Kept so that the channel only closes when the signal is raised.
    _rx: Receiver<()>,
}

impl Signal {
    fn new() -> Self {
        let (tx, _rx) = async_channel::bounded(1);
        Signal { tx, _rx }
    }

    /// Raises the signal; `true` if this call raised it.
    pub(crate) fn raise(&self) -> bool {
        self.tx.close()
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.tx.is_closed()
    }

    /// Completes once the signal is raised.
    pub(crate) async fn wait(&self) {
        self.tx.closed().await;
    }
}

/// What every stage of one run shares: the stop signals and the run's
/// verdict.
pub(crate) struct Ctx {
    epoch: Instant,
    /// Raised to stop every stage promptly.
    pub(crate) cancel: Signal,
    /// Raised to make the source stop taking input; the rest drains.
    pub(crate) shutdown: Signal,
    /// Whether the run's deadline is what raised `cancel`.
    pub(crate) deadline_passed: AtomicBool,
    /// The pipeline's final state once the run has ended, as a `State`.
    verdict: AtomicU8,
    /// Every stage's cell, set once the pipeline ends in its sink.
    cells: OnceLock<Box<[Arc<Cell>]>>,
    /// The run's deadline, if it has one.
    deadline: OnceLock<Duration>,
}

/// No verdict yet.
const NO_VERDICT: u8 = u8::MAX;

impl Ctx {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Ctx {
            epoch: Instant::now(),
            cancel: Signal::new(),
            shutdown: Signal::new(),
            deadline_passed: AtomicBool::new(false),
            verdict: AtomicU8::new(NO_VERDICT),
            cells: OnceLock::new(),
            deadline: OnceLock::new(),
        })
    }

    /// Nanoseconds since the pipeline was built, plus one, so 0 means unset.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    pub(crate) fn set_verdict(&self, state: State) {
        self.verdict.store(state as u8, Relaxed);
    }

    pub(crate) fn verdict(&self) -> Option<State> {
        State::from_u8(self.verdict.load(Relaxed))
    }

    /// Records the finished pipeline's stages, in order.
    pub(crate) fn set_cells(&self, cells: Vec<Arc<Cell>>) {
        let _ = self.cells.set(cells.into_boxed_slice());
    }

    pub(crate) fn set_deadline(&self, after: Duration) {
        let _ = self.deadline.set(after);
    }

    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline.get().copied()
    }

    fn cells(&self) -> &[Arc<Cell>] {
        self.cells.get().map_or(&[], |cells| cells)
    }
}

/// One stage's counters and state.
pub(crate) struct Cell {
    pub(crate) name: String,
    state: AtomicU8,
    pub(crate) received: AtomicU64,
    pub(crate) emitted: AtomicU64,
    /// Inputs whose outputs were all handed on; kept apart from `emitted`
    /// only for stages that expand one input into many.
    pub(crate) passed: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    started: AtomicU64,
    ended: AtomicU64,
    pub(crate) expands: bool,
    /// Set when the stage found the stage after it gone.
    pub(crate) cut_off: AtomicBool,
}

impl Cell {
    pub(crate) fn new(name: String, expands: bool) -> Arc<Self> {
        Arc::new(Cell {
            name,
            state: AtomicU8::new(State::Pending as u8),
            received: AtomicU64::new(0),
            emitted: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            expands,
            cut_off: AtomicBool::new(false),
        })
    }

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed)).unwrap_or(State::Pending)
    }

    /// How long the stage has run: from its first poll to its end, or to
    /// now if it is still running.
    pub(crate) fn wall_time(&self, ctx: &Ctx) -> Duration {
        let started = self.started.load(Relaxed);
        if started == 0 {
            return Duration::ZERO;
        }
        let ended = match self.ended.load(Relaxed) {
            0 => ctx.now(),
            ended => ended,
        };
        Duration::from_nanos(ended.saturating_sub(started))
    }

    /// Adds `n` to a counter; a chunk's worth at a time on the hot path.
    #[inline]
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }
}

/// Marks a stage's end in its cell however the stage's future ends, even if
/// it is dropped unfinished, as when its task is cancelled.
struct Mark<'a> {
    cell: &'a Cell,
    ctx: &'a Ctx,
    ended: bool,
}

impl Cell {
    /// Marks the stage as running from now.
    pub(crate) fn begin(&self, ctx: &Ctx) {
        self.started.store(ctx.now(), Relaxed);
        self.state.store(State::Running as u8, Relaxed);
    }

    /// Marks the stage as ended now, in `state`.
    pub(crate) fn end(&self, ctx: &Ctx, state: State) {
        if self.started.load(Relaxed) == 0 {
            self.started.store(ctx.now(), Relaxed);
        }
        self.ended.store(ctx.now(), Relaxed);
        self.state.store(state as u8, Relaxed);
    }
}

impl Mark<'_> {
    fn start(&self) {
        self.cell.begin(self.ctx);
    }

    fn end(&mut self, state: State) {
        self.cell.end(self.ctx, state);
        self.ended = true;
    }
}

impl Drop for Mark<'_> {
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
pub(crate) fn is_stopped(err: &Error) -> bool {
    matches!(err, Error::Cancelled { .. })
}

/// Runs `fut` as the stage whose counters live in `cell`.
///
/// The stage's state goes from `Pending` to `Running` on its first poll, and
/// to `Done`, `Failed` or `Cancelled` at its end. A panic becomes
/// [`Error::StagePanicked`]. Once the run's cancel signal is raised the
/// stage's future is dropped at once, whatever it is waiting on; the items
/// it held are then counted as dropped by the report.
pub(crate) fn drive<T: 'static>(
    cell: Arc<Cell>,
    ctx: Arc<Ctx>,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> BoxFuture<Result<T, Error>> {
    Box::pin(async move {
        let mut mark = Mark {
            cell: &cell,
            ctx: &ctx,
            ended: false,
        };
        if ctx.cancel.is_raised() {
            drop(fut);
            mark.end(State::Cancelled);
            return Err(stopped());
        }
        mark.start();
        let work = async { Some(AssertUnwindSafe(fut).catch_unwind().await) };
        let stop = async {
            ctx.cancel.wait().await;
            None
        };
        let (state, result) = match work.or(stop).await {
            None => (State::Cancelled, Err(stopped())),
            // Its input ended or its output closed because the run is
            // being stopped: the stage did not finish its real input.
            Some(Ok(Ok(_))) if cell.cut_off.load(Relaxed) || ctx.cancel.is_raised() => {
                (State::Cancelled, Err(stopped()))
            }
            Some(Ok(Ok(value))) => (State::Done, Ok(value)),
            Some(Ok(Err(err))) if is_stopped(&err) => (State::Cancelled, Err(err)),
            Some(Ok(Err(err))) => (State::Failed, Err(err)),
            Some(Err(payload)) => (
                State::Failed,
                Err(Error::StagePanicked {
                    stage: cell.name.clone(),
                    message: panic_message(payload),
                }),
            ),
        };
        mark.end(state);
        result
    })
}

/// Watches and steers a pipeline from anywhere: its state, a live report,
/// and the two ways to stop it.
///
/// Get one from the [`Pipeline`](crate::Pipeline) while building it (so a
/// stage can hold one), from the [`Job`](crate::Job) before the run, or from
/// a [`JobHandle`](crate::JobHandle) while it runs. It is cheap to clone,
/// `Send` and `Sync`, and stays valid after the run, when
/// [`report`](Control::report) gives the final account. Its report lists
/// the stages once the pipeline has ended in a sink.
///
/// # Examples
///
/// ```
/// use flowgate::State;
///
/// let job = flowgate::from_iter(0..100u32).filter(|x| x % 2 == 0).count();
/// let control = job.control();
/// assert_eq!(control.state(), State::Pending);
/// assert_eq!(job.run()?, 50);
/// assert_eq!(control.state(), State::Done);
/// let report = control.report();
/// assert_eq!(report.stages[1].filtered, 50);
/// assert!(report.is_balanced());
/// # Ok::<(), flowgate::Error>(())
/// ```
#[derive(Clone)]
pub struct Control {
    ctx: Arc<Ctx>,
}

impl Control {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Control { ctx }
    }

    /// The pipeline's state: `Pending` until a stage starts, `Running`
    /// while any runs, then `Done`, `Failed` or `Cancelled`.
    pub fn state(&self) -> State {
        if let Some(verdict) = self.ctx.verdict() {
            return verdict;
        }
        let states = self.ctx.cells().iter().map(|cell| cell.state());
        State::of_pipeline(states)
    }

    /// A report of every stage's counts and state: live while the pipeline
    /// runs, final once it has ended.
    pub fn report(&self) -> Report {
        Report::collect(self.state(), &self.ctx, self.ctx.cells())
    }

    /// Stops the pipeline promptly: every stage drops the item it holds and
    /// ends, without waiting for its input to end. The run then fails with
    /// [`Error::Cancelled`], carrying the report. Returns `false` if the
    /// pipeline was already stopping.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Error, State};
    ///
    /// // An endless source, cancelled from inside a stage.
    /// let source = flowgate::from_iter(0u64..);
    /// let control = source.control();
    /// let stop = control.clone();
    /// let err = source
    ///     .inspect(move |x| if *x == 1000 { stop.cancel(); })
    ///     .count()
    ///     .run()
    ///     .unwrap_err();
    /// let Error::Cancelled { report } = err else { panic!("{err}") };
    /// assert_eq!(report.state, State::Cancelled);
    /// assert!(report.is_balanced());
    /// assert_eq!(control.state(), State::Cancelled);
    /// ```
    pub fn cancel(&self) -> bool {
        self.ctx.cancel.raise()
    }

    /// Closes the pipeline's input: the source stops taking new items, and
    /// every item already in flight is processed through to the sink. The
    /// run then ends as it would have at the end of its input. Returns
    /// `false` if shutdown was already asked for.
    pub fn shutdown(&self) -> bool {
        self.ctx.shutdown.raise()
    }

    /// Whether the pipeline has ended, for whatever reason.
    pub fn is_finished(&self) -> bool {
        self.state().is_finished()
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("state", &self.state())
            .field("stages", &self.ctx.cells().len())
            .finish()
    }
}
