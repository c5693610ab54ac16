//! [`Control`]: the handle that watches and steers a run from anywhere.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{FutureExt, Stream, StreamExt};
use smol::Timer;

use crate::engine::run::RunState;
use crate::engine::snapshot;
use crate::error::Error;
use crate::report::run::Report;
use crate::report::state::State;

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
    run: Arc<RunState>,
}

impl Control {
    pub(crate) fn new(run: Arc<RunState>) -> Self {
        Control { run }
    }

    /// The pipeline's state: `Pending` until a stage starts, `Running`
    /// while any runs, then `Done`, `Failed` or `Cancelled`.
    pub fn state(&self) -> State {
        snapshot::state(&self.run.root())
    }

    /// A report of every stage's counts and state: live while the pipeline
    /// runs, final once it has ended.
    pub fn report(&self) -> Report {
        snapshot::report(&self.run)
    }

    /// Stops the pipeline promptly: every stage drops the item it holds and
    /// ends, without waiting for its input to end. The run then fails with
    /// [`Error::Cancelled`](crate::Error::Cancelled), carrying the report. Returns `false` if the
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
        self.run.root().cancel()
    }

    /// Closes the pipeline's input: the source stops taking new items, and
    /// every item already in flight is processed through to the sink. The
    /// run then ends as it would have at the end of its input. Returns
    /// `false` if shutdown was already asked for.
    pub fn shutdown(&self) -> bool {
        self.run.root().shut_down()
    }

    /// Shuts the pipeline down as [`shutdown`](Control::shutdown) does,
    /// and cancels it as [`cancel`](Control::cancel) does if the items in
    /// flight have not drained within `limit`: a shutdown with a deadline.
    /// Gives whether this call started the shutdown, or
    /// [`Error::ZeroInterval`](crate::Error::ZeroInterval) for a zero
    /// `limit` (call `cancel` to stop at once).
    ///
    /// A run that drains in time ends as it would at the end of its input.
    /// One that does not fails with
    /// [`Error::Cancelled`](crate::Error::Cancelled), whose report says how
    /// many items were delivered and how many dropped: with a hop full of
    /// slow items, the wait is bounded by `limit`, not by the items. The
    /// deadline is kept by a short-lived thread of its own, so it holds
    /// whatever executor runs the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use flowgate::Error;
    ///
    /// // 1,000 slow items queue up: draining them would take seconds.
    /// let source = flowgate::from_iter(0u32..1_000);
    /// let control = source.control();
    /// let stop = control.clone();
    /// let started = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(50));
    ///     let asked = Instant::now();
    ///     stop.shutdown_within(Duration::from_millis(100)).unwrap();
    ///     asked
    /// });
    /// let err = source
    ///     .then(|x| async move {
    ///         smol::Timer::after(Duration::from_millis(10)).await;
    ///         x
    ///     })
    ///     .count()
    ///     .run()
    ///     .unwrap_err();
    /// let took = started.join().unwrap().elapsed();
    /// assert!(took < Duration::from_secs(5), "{took:?}");
    /// let Error::Cancelled { report } = err else { panic!("{err}") };
    /// let taken = report.stages[0].received;
    /// assert_eq!(report.delivered() + report.dropped(), taken);
    /// # assert!(control.shutdown_within(Duration::ZERO).is_err());
    /// ```
    pub fn shutdown_within(&self, limit: Duration) -> Result<bool, Error> {
        if limit.is_zero() {
            return Err(Error::ZeroInterval);
        }
        let run = self.run.root();
        let first = run.shut_down();
        let watched = Arc::clone(&run);
        let keep_deadline = move || {
            smol::block_on(async {
                let late = async {
                    Timer::after(limit).await;
                    true
                };
                let over = async {
                    watched.ended_or_cancelled().await;
                    false
                };
                if over.or(late).await {
                    watched.cancel();
                }
            });
        };
        let spawned = std::thread::Builder::new()
            .name("flowgate-shutdown".to_owned())
            .spawn(keep_deadline);
        if spawned.is_err() {
            // No thread to keep the deadline: stop now rather than never.
            run.cancel();
        }
        Ok(first)
    }

    /// Whether the pipeline has ended, for whatever reason.
    pub fn is_finished(&self) -> bool {
        self.state().is_finished()
    }

    /// A live report every `every`, as a [`Stream`]: the first at once,
    /// the last once the run has ended (within `every` of its end), and
    /// then the stream ends. A progress display is a loop over it. Fails
    /// with [`Error::ZeroInterval`] for a zero `every`.
    ///
    /// The reports are made on smol's timer; poll the stream from any
    /// executor. A watch of a run that never starts never ends: drop it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures_lite::StreamExt;
    ///
    /// let job = flowgate::from_iter(0..2000u32)
    ///     .then(|x| async move {
    ///         if x % 500 == 0 {
    ///             smol::Timer::after(Duration::from_millis(5)).await;
    ///         }
    ///         x
    ///     })
    ///     .count();
    /// let control = job.control();
    /// let watching = std::thread::spawn(move || {
    ///     smol::block_on(async {
    ///         let mut seen = Vec::new();
    ///         let mut reports = control.watch(Duration::from_millis(1))?;
    ///         while let Some(report) = reports.next().await {
    ///             seen.push(report.delivered());
    ///         }
    ///         Ok::<_, flowgate::Error>(seen)
    ///     })
    /// });
    /// assert_eq!(job.run()?, 2000);
    /// let seen = watching.join().unwrap()?;
    /// assert_eq!(seen.last(), Some(&2000)); // the final report comes last
    /// assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn watch(&self, every: Duration) -> Result<Watch, Error> {
        if every.is_zero() {
            return Err(Error::ZeroInterval);
        }
        Ok(Watch {
            control: self.clone(),
            ticks: smol::Timer::interval(every),
            first: true,
            done: false,
        })
    }
}

/// A stream of live reports of a run, one per interval, ending after the
/// final report: made by [`Control::watch`].
pub struct Watch {
    control: Control,
    ticks: smol::Timer,
    first: bool,
    done: bool,
}

impl Stream for Watch {
    type Item = Report;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Report>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.first {
            self.first = false;
        } else if self.ticks.poll_next(cx).is_pending() {
            return Poll::Pending;
        }
        let report = self.control.report();
        self.done = report.state.is_finished();
        Poll::Ready(Some(report))
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("control", &self.control)
            .field("done", &self.done)
            .finish()
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("state", &self.state())
            .field("stages", &self.run.root().stages().len())
            .finish()
    }
}
