//! The typed pipeline builder, and how it wires each stage to the next.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::control::Control;
use crate::engine::feed::Feed;
use crate::engine::hop::{Inlet, Outlet, Overflow};
use crate::engine::run::RunState;
use crate::engine::stats::{InputHop, StageStats};
use crate::error::Error;
use crate::pipeline::graph::{Graph, StageTasks};
use crate::pipeline::head::{Fusable, Head, Invalid, OutputHop, StageSetup};

/// A pipeline under construction, whose last stage gives items of type `T`.
///
/// Start one with [`from_iter`](crate::from_iter) or [`from_stream`](crate::from_stream), chain stages, and end it
/// in a sink such as [`collect`](Pipeline::collect), which gives a [`Job`](crate::Job)
/// to run. Stages are joined by bounded hops, and items cross hops in
/// chunks of up to [`chunk_limit`](Pipeline::chunk_limit) items. Each stage
/// runs as a task of its own, except the cheap synchronous ones (`map`,
/// `filter`, ...), which by default run fused into the task of the stage
/// after them, with no hop between: see [`fusion`](Pipeline::fusion).
///
/// The builder chains by value, and order matters: [`capacity`],
/// [`chunk_limit`] and [`name`] configure the stage added most recently (or
/// the source, if none has been added yet).
///
/// [`capacity`]: Pipeline::capacity
/// [`chunk_limit`]: Pipeline::chunk_limit
/// [`name`]: Pipeline::name
///
/// # Examples
///
/// ```
/// let words = flowgate::from_iter(["a b", "c", "d e f"])
///     .name("lines")
///     .flat_map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
///     .name("split")
///     .capacity(64)
///     .count()
///     .run()?;
/// assert_eq!(words, 6);
/// # Ok::<(), flowgate::Error>(())
/// ```
///
/// The second type parameter is `()` except right after a fallible stage
/// such as [`try_map`](Pipeline::try_map), when it records that stage's input
/// and error types so that [`on_error`](Pipeline::on_error) can be typed.
#[must_use = "a pipeline does nothing until it ends in a sink and runs"]
pub struct Pipeline<T, S = ()> {
    /// Every stage already wired to its output hop.
    graph: Graph,
    /// The newest stage, waiting for its output hop.
    head: Head<T>,
    _newest: PhantomData<fn() -> S>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose source is the stage `start` makes: it gets the
    /// source's output hop and the run's state.
    pub(crate) fn source<F, Fut>(start: F) -> Self
    where
        F: FnOnce(Outlet<T>, Arc<RunState>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let output = OutputHop::New(Box::new(move |setup: StageSetup<T>| {
            StageTasks::single(Box::pin(start(setup.out, setup.run)))
        }));
        Pipeline::headed(
            Graph::new(),
            Head::new("source".to_owned(), "source", Vec::new(), output),
        )
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose source is `stage`, which can run fused into the
    /// task of the stage after it.
    pub(crate) fn fusable_source(stage: Box<dyn Fusable<T>>) -> Self {
        Pipeline::headed(
            Graph::new(),
            Head::new(
                "source".to_owned(),
                "source",
                Vec::new(),
                OutputHop::Fusable(stage),
            ),
        )
    }
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// A [`Control`] for the run this pipeline will make: its state, its
    /// report, and cancel and shutdown. A stage may hold one, to stop its
    /// own pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// let source = flowgate::from_iter(0u32..);
    /// let control = source.control();
    /// let stop = control.clone();
    /// // An endless source, shut down by the sink: items in flight drain.
    /// let seen = source
    ///     .map(|x| x * 2)
    ///     .fold(0u32, move |n, _| { if n == 99 { stop.shutdown(); } n + 1 })
    ///     .run()?;
    /// assert!(seen >= 100);
    /// let report = control.report();
    /// assert_eq!(report.dropped(), 0);
    /// assert_eq!(report.delivered(), u64::from(seen));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(self.graph.run()))
    }

    /// Names the newest stage. Names appear in errors.
    ///
    /// Unnamed stages are called `source`, then by kind and position:
    /// `map#1`, `filter#2`, and so on.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flowgate::from_iter(0..10u32)
    ///     .map(|x| if x == 7 { panic!("seven") } else { x })
    ///     .name("picky")
    ///     .count()
    ///     .run()
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "stage `picky` panicked: seven");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.head.set_name(name.into());
        self
    }

    /// Sets how many items the hop after the newest stage holds.
    ///
    /// When the hop is full the stage waits: that wait is the pipeline's
    /// only flow control. The default is [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY). Capacity 0
    /// makes the run fail with [`Error::ZeroCapacity`].
    ///
    /// # Examples
    ///
    /// ```
    /// // Capacity 1 moves one item at a time, in lock step.
    /// let out: Vec<u8> = flowgate::from_iter(0..5u8).capacity(1).collect().run()?;
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.head.set_capacity(capacity);
        self
    }

    /// Sets what the newest stage does when its output hop is full: wait
    /// for room (the default), or let items go (see [`Overflow`]).
    ///
    /// Letting items go gives up the promise that no item is lost, for this
    /// hop only: use it where the newest items matter more than every item,
    /// as with telemetry. Each item let go counts as
    /// [`shed`](crate::StageReport::shed) in the report of the stage that
    /// sent it, and the hop still never holds more than its
    /// [`capacity`](Pipeline::capacity). A source that reads by the room
    /// its hop has ([`from_reads_acked`](crate::from_reads_acked)) reads
    /// only what fits, so it never sheds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowgate::Overflow;
    ///
    /// // Readings come fast; a slow consumer sees the newest of them.
    /// let job = flowgate::from_iter(0..1_000u32)
    ///     .name("readings")
    ///     .capacity(8)
    ///     .overflow(Overflow::DropOldest)
    ///     .for_each(|_| std::thread::sleep(Duration::from_micros(50)));
    /// let control = job.control();
    /// job.run()?;
    /// let report = control.report();
    /// let readings = report.stage("readings").unwrap();
    /// assert_eq!(readings.emitted, 1_000);
    /// assert_eq!(report.delivered() + report.shed(), 1_000);
    /// assert!(report.is_balanced());
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    ///
    /// [`Overflow`]: crate::Overflow
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.head.set_overflow(overflow);
        self
    }

    /// Sets the most items the newest stage sends downstream in one chunk.
    ///
    /// A stage sends a chunk when it is full, or as soon as its input has
    /// nothing more ready, so a larger limit costs no latency. A limit above
    /// the hop's capacity is lowered to it. The default is
    /// [`DEFAULT_CHUNK_LIMIT`](crate::DEFAULT_CHUNK_LIMIT); 0 makes the run fail with
    /// [`Error::ZeroChunkLimit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sum = flowgate::from_iter(1..=100u32).chunk_limit(8).fold(0, |a, x| a + x).run()?;
    /// assert_eq!(sum, 5050);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn chunk_limit(mut self, chunk_limit: usize) -> Self {
        self.head.set_chunk_limit(chunk_limit);
        self
    }

    /// Turns the timing of waits on or off for the whole run. It is on by
    /// default.
    ///
    /// With it off, the report's `blocked_send` and `blocked_recv` stay at
    /// zero, `busy` is the whole wall time, and
    /// [`Report::bottleneck`](crate::Report::bottleneck) finds none. Counts
    /// and queue depths are kept either way: they are what makes the report
    /// account for every item. Timing costs two clock reads per wait and
    /// nothing while items flow, so turn it off only to measure that cost.
    /// When pipelines are merged, turning it off on any of them turns it
    /// off for the graph.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..1000u32).metrics(false).count();
    /// let control = job.control();
    /// assert_eq!(job.run()?, 1000);
    /// let report = control.report();
    /// assert!(report.stages.iter().all(|s| s.blocked_send.is_zero() && s.blocked_recv.is_zero()));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn metrics(self, on: bool) -> Self {
        self.graph.run().root().set_timed(on);
        self
    }

    /// Turns stage fusion on or off for the stages added after this call.
    /// It is on by default.
    ///
    /// With fusion on, a cheap synchronous stage ([`map`](Pipeline::map),
    /// [`filter`](Pipeline::filter), [`filter_map`](Pipeline::filter_map),
    /// [`flat_map`](Pipeline::flat_map), [`inspect`](Pipeline::inspect),
    /// [`enumerate`](Pipeline::enumerate),
    /// [`skip`](Pipeline::skip), [`skip_while`](Pipeline::skip_while),
    /// [`dedup_by_key`](Pipeline::dedup_by_key)) runs inside the task of
    /// the stage after it, one loop over each chunk, with no hop between
    /// them. The report is still exact per stage: each fused stage keeps
    /// its own name, counts and state, and shows no hop (`-` in the queue
    /// column); a panic still names the stage. Fused stages share their
    /// task's time, so their time columns are the task's, and with the
    /// `tracing` feature they run in the span of the stage whose task runs
    /// them.
    ///
    /// A stage keeps its own task and output hop when fusion is off, when
    /// its hop is configured ([`capacity`](Pipeline::capacity),
    /// [`chunk_limit`](Pipeline::chunk_limit),
    /// [`overflow`](Pipeline::overflow)), when it restarts on panic, when
    /// [`boundary`](Pipeline::boundary) follows it, and when the stage
    /// after it needs a hop (a parallel stage, a merge, a fan-out,
    /// [`take`](Pipeline::take) and the other stages that end the input,
    /// [`into_stream`](Pipeline::into_stream)).
    ///
    /// Turn it off to run every stage on a task of its own, as a slow
    /// stage on each of several threads may want; [`boundary`](Pipeline::boundary)
    /// does that for one stage.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..100u32)
    ///     .fusion(false)
    ///     .map(|x| x + 1)
    ///     .filter(|x| x % 2 == 0)
    ///     .count();
    /// let control = job.control();
    /// assert_eq!(job.run()?, 50);
    /// // Every stage had a hop before it: no queue column shows `-`.
    /// assert!(control.report().stages.iter().skip(1).all(|s| s.queue_capacity > 0));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn fusion(self, on: bool) -> Self {
        self.graph.run().root().set_fusing(on);
        self
    }

    /// Keeps the newest stage's output hop: the stage runs on a task of its
    /// own (with any fused stages before it), never fused into the stage
    /// after it.
    ///
    /// Fused stages run one after the other on one task; a boundary lets
    /// the stages on either side of it run at the same time, on different
    /// threads, which pays when both are slow.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = flowgate::from_iter(0..1_000u64)
    ///     .map(|x| x * 3)
    ///     .name("heavy")
    ///     .boundary()
    ///     .map(|x| x + 1)
    ///     .name("light")
    ///     .fold(0, |a, x| a + x);
    /// let control = job.control();
    /// assert_eq!(job.run()?, 3 * 499_500 + 1_000);
    /// let report = control.report();
    /// // `light` has a hop before it; it is fused into the sink, with none after it.
    /// assert!(report.stage("light").unwrap().queue_capacity > 0);
    /// assert_eq!(report.stages.last().unwrap().queue_capacity, 0);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn boundary(mut self) -> Self {
        self.head.pin();
        self
    }

    /// Records a configuration error, to be reported when the pipeline
    /// runs; the first one wins.
    pub(crate) fn fail(mut self, err: Error) -> Self {
        self.graph.fail(err);
        self
    }

    /// Records that the newest stage was set up badly; `invalid` makes the
    /// error from the stage's name, which may still change.
    pub(crate) fn reject_newest(
        mut self,
        invalid: impl FnOnce(String) -> Error + Send + 'static,
    ) -> Self {
        let invalid: Invalid = Box::new(invalid);
        self.head.reject(invalid);
        self
    }

    /// The newest stage's name.
    pub(crate) fn newest_name(&self) -> &str {
        self.head.name()
    }

    /// What the newest stage does.
    pub(crate) fn newest_kind(&self) -> &'static str {
        self.head.kind()
    }

    /// Sets how the newest stage restarts after a panic.
    pub(crate) fn set_restart(mut self, restart: Box<dyn Any + Send>) -> Self {
        self.head.set_restart(restart);
        self
    }

    /// Sets the newest stage's error policy and item timeout.
    pub(crate) fn configure(
        mut self,
        policy: Option<Box<dyn Any + Send>>,
        timeout: Option<Duration>,
    ) -> Self {
        self.head.configure(policy, timeout);
        self
    }
}

impl<T, S> fmt::Debug for Pipeline<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &(self.graph.len() + 1))
            .field("newest", &self.head.name())
            .field("capacity", &self.head.capacity())
            .field("chunk_limit", &self.head.chunk_limit())
            .field("graph", &self.graph)
            .finish()
    }
}

/// Wiring: how each stage gets its output hop and starts on it.
impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds the stage that `make` builds after the newest stage, which may
    /// run fused in the new stage's task (then `make` gets an input of
    /// fused segments) or else gets a new hop. `expands` says whether the
    /// stage's outputs may outnumber, or be fewer than, the inputs it
    /// passed on.
    pub(crate) fn chain<U, S2, F, Fut>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Feed<T>, StageSetup<U>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (graph, feed) = self.wire_feed();
        let inputs = vec![feed.input_hop()];
        Pipeline::assemble(graph, kind, expands, inputs, move |setup: StageSetup<U>| {
            let stats = Arc::clone(&setup.stats);
            StageTasks::fed(feed, &stats, |feed| make(feed, setup))
        })
    }

    /// Like [`chain`](Pipeline::chain), for a stage that needs a hop before
    /// it: the newest stage is never fused into it.
    pub(crate) fn chain_hop<U, S2, F, Fut>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, StageSetup<U>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.chain_tasks(kind, expands, move |input, setup| {
            StageTasks::single(Box::pin(make(input, setup)))
        })
    }

    /// Adds a stage that can run fused: `make` builds it on its input,
    /// which may be fused segments in turn. Whether it runs fused, in the
    /// task of the stage after it, is decided when that stage is added.
    /// `expands` says whether the stage's outputs may outnumber, or be
    /// fewer than, the inputs it passed on.
    pub(crate) fn fusable<U>(
        self,
        kind: &'static str,
        expands: bool,
        make: impl FnOnce(Feed<T>) -> Box<dyn Fusable<U>>,
    ) -> Pipeline<U>
    where
        U: Send + 'static,
    {
        let (graph, feed) = self.wire_feed();
        let inputs = vec![feed.input_hop()];
        let name = graph.name_for(kind);
        let head = Head::new(name, kind, inputs, OutputHop::Fusable(make(feed)));
        let head = if expands { head.expanding() } else { head };
        Pipeline::headed(graph, head)
    }

    /// Like [`chain`](Pipeline::chain), for a stage with workers.
    pub(crate) fn chain_tasks<U, S2, F>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, StageSetup<U>) -> StageTasks + Send + 'static,
    {
        let (graph, mut inlet) = self.wire();
        let inputs = vec![inlet.input_hop()];
        Pipeline::assemble(graph, kind, expands, inputs, move |setup: StageSetup<U>| {
            inlet.attach(&setup.stats);
            make(inlet, setup)
        })
    }

    /// Gives the newest stage's output as the input of a stage that can
    /// run fused segments: the newest stage, fused, or its output hop.
    pub(crate) fn wire_feed(self) -> (Graph, Feed<T>) {
        let Pipeline {
            mut graph,
            head,
            _newest,
        } = self;
        let feed = head.wire_feed(&mut graph);
        (graph, feed)
    }

    /// Creates the newest stage's output hop and starts the stage on it.
    /// Gives the graph so far and the hop's receiving side.
    pub(crate) fn wire(self) -> (Graph, Inlet<T>) {
        let Pipeline {
            mut graph,
            head,
            _newest,
        } = self;
        let inlet = head.wire(&mut graph);
        (graph, inlet)
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose newest stage is the one `start` makes, after the
    /// stages of `graph`. The stage is named `kind#N` and fed by `inputs`.
    pub(crate) fn assemble<S, F>(
        graph: Graph,
        kind: &'static str,
        expands: bool,
        inputs: Vec<InputHop>,
        start: F,
    ) -> Pipeline<T, S>
    where
        F: FnOnce(StageSetup<T>) -> StageTasks + Send + 'static,
    {
        let name = graph.name_for(kind);
        let head = Head::new(name, kind, inputs, OutputHop::New(Box::new(start)));
        let head = if expands { head.expanding() } else { head };
        Pipeline::headed(graph, head)
    }

    /// A branch of a balance: a pipeline with no stages of its own yet,
    /// whose items come through `inlet`, a hop that already exists.
    pub(crate) fn shared(inlet: Inlet<T>, run: &Arc<RunState>) -> Self {
        let name = inlet.from().name().to_owned();
        let head = Head::new(name, "branch", Vec::new(), OutputHop::Shared(inlet));
        Pipeline::headed(Graph::joining(run), head)
    }

    /// Branch `name` of the fan-out stage whose stats are `from`: a pipeline
    /// with no stages of its own yet, whose hop goes to the fan-out stage
    /// through `slot` once it is made.
    pub(crate) fn fan_branch(
        name: String,
        slot: async_channel::Sender<Outlet<T>>,
        from: Arc<StageStats>,
        run: &Arc<RunState>,
    ) -> Self {
        let head = Head::new(name, "branch", Vec::new(), OutputHop::FanOut { slot, from });
        Pipeline::headed(Graph::joining(run), head)
    }
}

impl<T, S> Pipeline<T, S> {
    fn headed(graph: Graph, head: Head<T>) -> Self {
        Pipeline {
            graph,
            head,
            _newest: PhantomData,
        }
    }
}
