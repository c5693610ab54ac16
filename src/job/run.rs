//! [`Job`]: a complete pipeline, and the ways to run it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;
use futures_lite::future;
use smol::{Executor, LocalExecutor, Timer};

use crate::control::Control;
use crate::engine::drive::{SinkFuture, StageFuture, stopped};
use crate::engine::run::RunState;
use crate::engine::stats::{InputHop, StageStats};
use crate::engine::supervisor::{Supervisor, watch_stalls};
use crate::error::Error;
use crate::job::handle::{JobHandle, Running, StageTask};
use crate::limits::MAX_THREADS;
use crate::pipeline::graph::Graph;

/// The stages and the sink ready to run, or the configuration error that
/// stops the run.
pub(super) type Launched<O> = Result<(Vec<StageFuture>, SinkFuture<O>), Error>;

/// Starts the sink once its stats exist.
pub(super) type StartSink<O> = Box<dyn FnOnce(Arc<StageStats>) -> SinkFuture<O> + Send>;

/// A complete pipeline, from source to sink, whose sink gives `O`.
///
/// A job is made by ending a [`Pipeline`](crate::Pipeline) in a sink, and
/// does nothing until it runs. There are three ways to run it:
///
/// - [`run`](Job::run) blocks the calling thread until the sink is done, like
///   Python's `asyncio.run`; [`run_on_threads`](Job::run_on_threads) does the
///   same on several threads.
/// - [`spawn`](Job::spawn) and its siblings start every stage as a task on an
///   executor the app already has, and give a [`JobHandle`].
/// - `.await` (through [`IntoFuture`](std::future::IntoFuture)) turns the whole pipeline into one
///   future that drives every stage itself, with nothing spawned, so it runs
///   under any executor: smol, tokio, async-std or a plain `block_on`.
///
/// Each gives the sink's output, or the first [`Error`].
///
/// # Examples
///
/// ```
/// let job = flowgate::from_iter(1..=10u64).map(|x| x * x).fold(0, |a, x| a + x);
/// assert_eq!(job.run()?, 385);
/// # Ok::<(), flowgate::Error>(())
/// ```
#[must_use = "a job does nothing until it runs"]
pub struct Job<O> {
    graph: Graph,
    sink: Sink<O>,
    deadline: Option<Duration>,
}

/// A job's sink: one to start when the job runs, or the sinks of a fan-out's
/// branches, started already and joined into one future.
enum Sink<O> {
    Unstarted {
        name: String,
        kind: &'static str,
        inputs: Vec<InputHop>,
        /// The fused segments that run in the sink's task.
        segments: Vec<Arc<StageStats>>,
        start: StartSink<O>,
    },
    Branches(SinkFuture<O>),
}

impl<O: Send + 'static> Job<O> {
    /// A job of `graph`'s stages and the sink that `start` makes, named
    /// `name`, fed by `inputs`, with the fused segments whose stats are
    /// `segments` in its task.
    pub(crate) fn new(
        graph: Graph,
        name: String,
        kind: &'static str,
        (inputs, segments): (Vec<InputHop>, Vec<Arc<StageStats>>),
        start: StartSink<O>,
    ) -> Self {
        Job {
            graph,
            sink: Sink::Unstarted {
                name,
                kind,
                inputs,
                segments,
                start,
            },
            deadline: None,
        }
    }

    /// A job of `graph`'s stages whose sink is the joined sinks of a
    /// fan-out's branches, each registered already.
    pub(crate) fn from_branches(
        graph: Graph,
        sinks: SinkFuture<O>,
        deadline: Option<Duration>,
    ) -> Self {
        Job {
            graph,
            sink: Sink::Branches(sinks),
            deadline,
        }
    }

    /// Registers the sink in the graph and gives the parts apart, for
    /// joining this job, as a branch of a fan-out, into a larger one.
    pub(crate) fn into_branch(self) -> (Graph, SinkFuture<O>, Option<Duration>) {
        let Job {
            mut graph,
            sink,
            deadline,
        } = self;
        let sink = match sink {
            Sink::Branches(sinks) => sinks,
            Sink::Unstarted {
                name,
                kind,
                inputs,
                segments,
                start,
            } => {
                let stats = StageStats::new(name, kind, false, inputs);
                graph.add_sink(Arc::clone(&stats), segments, start(stats))
            }
        };
        (graph, sink, deadline)
    }

    /// A [`Control`] for this job's run: its state, its report, and cancel
    /// and shutdown, usable from any thread while the job runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..3u8).count();
    /// let control = job.control();
    /// job.run()?;
    /// println!("{}", control.report());
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(self.graph.run()))
    }

    /// Gives the whole run a deadline, like Python's `asyncio.timeout`: if
    /// it has not finished `after` the run starts, every stage is cancelled
    /// and the run fails with [`Error::DeadlineElapsed`], which carries the
    /// report of what got done.
    ///
    /// The clock runs on smol's timers. A deadline of zero lets the run
    /// start and then cancels it at once, as `asyncio.wait_for(x, 0)` does:
    /// only a pipeline that finishes in its first poll can succeed. A
    /// deadline too far away to represent never fires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let err = flowgate::from_iter(0u64..) // endless
    ///     .count()
    ///     .deadline(Duration::from_millis(20))
    ///     .run()
    ///     .unwrap_err();
    /// let report = err.report().expect("a deadline error carries the report");
    /// assert!(report.is_balanced());
    /// assert_eq!(err.to_string(), "the pipeline did not finish within its deadline of 20ms");
    /// ```
    pub fn deadline(mut self, after: Duration) -> Self {
        self.deadline = Some(after);
        self
    }

    /// Watches the run for stalls: a stage that has held input without
    /// any progress (nothing received, handed on, filtered, failed or
    /// dead-lettered) for `after` is marked
    /// [`stalled`](crate::StageReport::stalled) in the report, and the
    /// `tracing` feature warns of it. A stage stuck on a full dead-letter
    /// output, or on work that never ends, shows up so; a stage waiting
    /// for input does not, and a merely slow one does not as long as an
    /// item gets through within `after`. A stage held up by a stalled
    /// stage after it is stalled too, as it holds input and cannot move.
    ///
    /// The watch runs with the run's handle or future ([`run`](Job::run),
    /// [`spawn`](Job::spawn) and the rest, `.await`), looking a few times
    /// per `after`. A zero `after` makes the run fail with
    /// [`Error::ZeroInterval`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = smol::Executor::new();
    /// let job = flowgate::from_iter(0..10u32)
    ///     .then(|x| async move {
    ///         if x == 3 {
    ///             std::future::pending::<()>().await; // stuck for ever
    ///         }
    ///         x
    ///     })
    ///     .name("stuck")
    ///     .count()
    ///     .stall_after(Duration::from_millis(20));
    /// let control = job.control();
    /// let handle = job.spawn(&ex);
    /// let err = smol::block_on(ex.run(async {
    ///     while !control.report().stage("stuck").is_some_and(|s| s.stalled) {
    ///         smol::Timer::after(Duration::from_millis(5)).await;
    ///     }
    ///     control.cancel();
    ///     handle.await.unwrap_err()
    /// }));
    /// assert!(matches!(err, flowgate::Error::Cancelled { .. }));
    /// ```
    pub fn stall_after(mut self, after: Duration) -> Self {
        if after.is_zero() {
            self.graph.fail(Error::ZeroInterval);
        } else {
            self.graph.run().set_stall_after(after);
        }
        self
    }

    /// Registers the sink, and gives the stages and the sink ready to run,
    /// or the configuration error that stops the run.
    pub(super) fn launch(self) -> (Launched<O>, Arc<RunState>) {
        let (graph, sink, deadline) = self.into_branch();
        let (stages, run) = graph.finish();
        if let Some(after) = deadline {
            run.set_deadline(after);
        }
        let launched = stages.map(|mut stages| match run.stall_after() {
            None => (stages, sink),
            Some(after) => {
                // A task of the run's own watches for stalls, until the
                // sink has ended.
                stages.push(Box::pin(watch_stalls(Arc::clone(&run), after)));
                let ended = Arc::clone(&run);
                let sink: SinkFuture<O> = Box::pin(async move {
                    let output = sink.await;
                    ended.mark_ended();
                    output
                });
                (stages, sink)
            }
        });
        (launched, run)
    }

    /// Names the sink stage. Names appear in errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flowgate::from_iter([1u8])
    ///     .for_each(|_| panic!("full"))
    ///     .name("writer")
    ///     .run()
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "stage `writer` panicked: full");
    /// ```
    ///
    /// A job whose fan-out branches end in sinks of their own has no single
    /// sink to name; this does nothing to it. Name each branch's sink
    /// instead.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        if let Sink::Unstarted { name: old, .. } = &mut self.sink {
            *old = name.into();
        }
        self
    }

    /// Runs the pipeline on the calling thread and blocks until the sink is
    /// done, like Python's `asyncio.run`.
    ///
    /// The stages are tasks on a fresh single-threaded executor, driven
    /// without polling for I/O on every wake-up. Timers and sockets used by
    /// async stages still work: smol drives them from its own thread. They
    /// must be smol's (async-io's): a stage that uses tokio's timers or I/O
    /// fails here with "there is no reactor running"; run such a pipeline
    /// with [`spawn_with`](Job::spawn_with) on a tokio runtime, or await
    /// it inside one.
    ///
    /// # Examples
    ///
    /// ```
    /// let v: Vec<u32> = flowgate::from_iter(0..3u32).collect().run()?;
    /// assert_eq!(v, [0, 1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn run(self) -> Result<O, Error> {
        let ex = LocalExecutor::new();
        let handle = self.spawn_local(&ex);
        future::block_on(ex.run(handle))
    }

    /// Runs the pipeline on `threads` threads of a multi-threaded executor:
    /// the calling thread and `threads - 1` new ones. Blocks until the sink
    /// is done.
    ///
    /// Useful when stages do CPU-heavy work; for light stages one thread is
    /// faster, as items then never cross between cores. Stages fused into
    /// one task run on one thread: put a [`boundary`](crate::Pipeline::boundary)
    /// after a CPU-heavy stage to let the stages on either side of it run
    /// on different threads. `threads == 0` gives
    /// [`Error::ZeroThreads`], and more than [`MAX_THREADS`] gives
    /// [`Error::TooManyThreads`].
    ///
    /// # Examples
    ///
    /// ```
    /// let n = flowgate::from_iter(0..10_000u64).map(|x| x % 3).count().run_on_threads(2)?;
    /// assert_eq!(n, 10_000);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn run_on_threads(self, threads: usize) -> Result<O, Error> {
        if threads == 0 {
            return Err(Error::ZeroThreads);
        }
        if threads > MAX_THREADS {
            return Err(Error::TooManyThreads {
                threads,
                max: MAX_THREADS,
            });
        }
        let ex = Executor::new();
        // Closing `stop` ends the helper threads' `run`.
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            for i in 1..threads {
                let (ex, stopped) = (&ex, stopped.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("flowgate-{i}"))
                    .spawn_scoped(scope, move || future::block_on(ex.run(stopped.recv())));
                if let Err(source) = spawned {
                    drop(stop);
                    return Err(Error::ThreadSpawn { source });
                }
            }
            let result = future::block_on(ex.run(self.spawn(&ex)));
            drop(stop);
            result
        })
    }

    /// Starts every stage as a task on `ex` and gives a handle that is a
    /// future of the result. Stages may use smol's timers and I/O, not
    /// tokio's (see [`spawn_with`](Job::spawn_with) for that).
    ///
    /// Dropping the handle cancels the pipeline; call
    /// [`JobHandle::detach`] to let it run on.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    ///
    /// let ex = Executor::new();
    /// let handle = flowgate::from_iter(0..100u32).count().spawn(&ex);
    /// let n = smol::block_on(ex.run(handle))?;
    /// assert_eq!(n, 100);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn spawn(self, ex: &Executor<'_>) -> JobHandle<O> {
        self.start(
            |fut| Running::Smol(ex.spawn(fut)),
            |fut| Running::Smol(ex.spawn(fut)),
        )
    }

    /// Starts every stage as a task on a single-threaded `ex` and gives a
    /// handle that is a future of the result.
    ///
    /// Dropping the handle cancels the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::LocalExecutor;
    ///
    /// let ex = LocalExecutor::new();
    /// let handle = flowgate::from_iter("abc".chars()).collect::<String>().spawn_local(&ex);
    /// assert_eq!(smol::block_on(ex.run(handle))?, "abc");
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn spawn_local(self, ex: &LocalExecutor<'_>) -> JobHandle<O> {
        self.start(
            |fut| Running::Smol(ex.spawn(fut)),
            |fut| Running::Smol(ex.spawn(fut)),
        )
    }

    /// Starts every stage as a task on smol's global executor and gives a
    /// handle that is a future of the result.
    ///
    /// Dropping the handle cancels the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// let total = smol::block_on(flowgate::from_iter(1..=3u8).fold(0, |a, x| a + x).spawn_global())?;
    /// assert_eq!(total, 6);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn spawn_global(self) -> JobHandle<O> {
        self.start(
            |fut| Running::Smol(smol::spawn(fut)),
            |fut| Running::Smol(smol::spawn(fut)),
        )
    }

    /// Starts every stage as a task of its own on any runtime: `spawn` is
    /// given each stage's future and spawns it, as `tokio::spawn` does.
    /// Gives a handle that is a future of the result, to await on any
    /// executor.
    ///
    /// Under tokio, this is how the stages spread over its worker threads;
    /// `.await` and [`run`](Job::run) drive every stage from one future or
    /// on smol. Stage code then runs on tokio's threads, so a stage may use
    /// tokio's timers and I/O (it may not under `run`, which has no tokio
    /// reactor); flowgate's own timers (`timeout`, `deadline`, batches by
    /// time) run on smol's, which need no setup.
    ///
    /// Dropping the handle cancels the pipeline: the stages end on the
    /// runtime, as on [`Control::cancel`]. If the runtime drops a stage's
    /// task (when it shuts down), the run ends as stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    /// let handle = flowgate::from_iter(0..1000u64)
    ///     .par_map(2, |x| x * x)
    ///     .fold(0u64, |sum, x| sum + x)
    ///     .spawn_with(|stage| {
    ///         rt.spawn(stage);
    ///     });
    /// let sum = rt.block_on(handle)?;
    /// assert_eq!(sum, (0..1000u64).map(|x| x * x).sum::<u64>());
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn spawn_with<S>(self, spawn: S) -> JobHandle<O>
    where
        S: FnMut(Pin<Box<dyn Future<Output = ()> + Send + 'static>>),
    {
        // The stages are spawned first, then the sink, one at a time.
        let spawn = std::cell::RefCell::new(spawn);
        self.start(
            |fut| Running::Elsewhere(elsewhere(fut, &mut *spawn.borrow_mut())),
            |fut| Running::Elsewhere(elsewhere(fut, &mut *spawn.borrow_mut())),
        )
    }

    fn start(
        self,
        mut spawn_stage: impl FnMut(StageFuture) -> StageTask,
        spawn_sink: impl FnOnce(SinkFuture<O>) -> Running<Result<O, Error>>,
    ) -> JobHandle<O> {
        let supervisor = match self.launch() {
            (Err(err), run) => Supervisor::failed(err, run),
            (Ok((mut stages, mut sink)), run) => {
                if let Some(after) = run.deadline() {
                    // The handle may be detached, and its timer with it: a
                    // task of the run's own keeps the deadline too.
                    stages.push(Box::pin(keep_deadline(Arc::clone(&run), after)));
                    let ended = Arc::clone(&run);
                    sink = Box::pin(async move {
                        let output = sink.await;
                        ended.mark_ended();
                        output
                    });
                }
                let tasks = stages.into_iter().map(&mut spawn_stage).collect();
                Supervisor::new(tasks, spawn_sink(sink), run)
            }
        };
        JobHandle::new(supervisor)
    }
}

/// Hands `fut` to `spawn` to run as a task, and gives the wait for its
/// result: a stop, if the task is dropped before it ends.
fn elsewhere<T, S>(
    fut: Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>,
    spawn: &mut S,
) -> Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>
where
    T: Send + 'static,
    S: FnMut(Pin<Box<dyn Future<Output = ()> + Send + 'static>>),
{
    let (result_tx, result) = async_channel::bounded(1);
    spawn(Box::pin(async move {
        let _ = result_tx.try_send(fut.await);
    }));
    Box::pin(async move { result.recv().await.unwrap_or_else(|_| Err(stopped())) })
}

impl<O> fmt::Debug for Job<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("stages", &(self.graph.len() + 1))
            .field(
                "sink",
                &match &self.sink {
                    Sink::Unstarted { name, .. } => name.as_str(),
                    Sink::Branches(_) => "(branches)",
                },
            )
            .field("deadline", &self.deadline)
            .field("graph", &self.graph)
            .finish()
    }
}

/// Cancels `run` once `after` has passed, unless it has ended or is being
/// cancelled by then. The timer starts now, with the supervisor's.
fn keep_deadline(
    run: Arc<RunState>,
    after: Duration,
) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    let timer = Timer::after(after);
    async move {
        let passed = async {
            timer.await;
            true
        };
        let over = async {
            run.ended_or_cancelled().await;
            false
        };
        if passed.or(over).await && run.cancel() {
            run.mark_deadline_passed();
        }
        Ok(())
    }
}
