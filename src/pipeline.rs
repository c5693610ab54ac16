//! The typed pipeline builder.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::hop::{hop, Inlet, Outlet};
use crate::join::{BoxFuture, StageFuture};
use crate::run::{drive, Cell, Ctx};
use crate::{Control, Error};

/// The capacity of a hop, in items, unless set with [`Pipeline::capacity`].
///
/// Measured on the standard workload: with chunks of 256, a hop of 1024
/// items (four chunks) lets each stage fill one chunk while the next stage
/// drains another; smaller hops cost up to three times as much per item.
///
/// # Examples
///
/// ```
/// let p = flowgate::from_iter(0..3u8);
/// assert!(format!("{p:?}").contains(&format!("capacity: {}", flowgate::DEFAULT_CAPACITY)));
/// ```
pub const DEFAULT_CAPACITY: usize = 1024;

/// The most items a stage sends in one chunk, unless set with
/// [`Pipeline::chunk_limit`].
///
/// # Examples
///
/// ```
/// let p = flowgate::from_iter(0..3u8);
/// assert!(format!("{p:?}").contains(&format!("chunk_limit: {}", flowgate::DEFAULT_CHUNK_LIMIT)));
/// ```
pub const DEFAULT_CHUNK_LIMIT: usize = 256;

/// A pipeline under construction, whose last stage gives items of type `T`.
///
/// Start one with [`from_iter`](crate::from_iter) or [`from_stream`](crate::from_stream), chain stages, and end it
/// in a sink such as [`collect`](Pipeline::collect), which gives a [`Job`](crate::Job)
/// to run. Each stage runs as its own task, joined to the next by a bounded
/// hop; items cross hops in chunks of up to
/// [`chunk_limit`](Pipeline::chunk_limit) items.
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
    /// Stages already wired to their output hop.
    stages: Vec<StageFuture>,
    /// The counters of every stage wired so far.
    cells: Vec<Arc<Cell>>,
    /// The newest stage, waiting for its output hop.
    head: Head<T>,
    /// The first configuration error, reported when the pipeline runs.
    error: Option<Error>,
    ctx: Arc<Ctx>,
    _newest: PhantomData<fn() -> S>,
}

/// Starts a stage once its output hop exists.
type Start<T> = Box<dyn FnOnce(Wired<T>) -> Parts + Send>;

/// A started stage: the future that runs it and owns its state, and any
/// helpers that run beside it as tasks of their own, such as the workers of
/// a parallel stage (already wrapped by [`drive_helper`](crate::run::drive_helper)).
pub(crate) struct Parts {
    pub(crate) main: BoxFuture<Result<(), Error>>,
    pub(crate) helpers: Vec<StageFuture>,
}

impl Parts {
    pub(crate) fn single(main: BoxFuture<Result<(), Error>>) -> Self {
        Parts {
            main,
            helpers: Vec::new(),
        }
    }
}

/// How the newest stage gets its output hop.
enum Begin<T> {
    /// A stage to start on a new hop.
    Stage(Start<T>),
    /// The hop exists already: this is a branch of a fan-out, and the
    /// fan-out stage sends into it.
    Wired(Inlet<T>),
}

/// What a stage gets when it starts.
pub(crate) struct Wired<T> {
    pub(crate) out: Outlet<T>,
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) cell: Arc<Cell>,
    /// The stage's error policy, if one was set; its type is the stage's.
    pub(crate) policy: Option<Box<dyn Any + Send>>,
    pub(crate) timeout: Option<Duration>,
}

/// The newest stage and the settings of its output hop.
struct Head<T> {
    name: String,
    capacity: usize,
    chunk_limit: usize,
    /// Whether one input may make many outputs.
    expands: bool,
    policy: Option<Box<dyn Any + Send>>,
    timeout: Option<Duration>,
    /// The stages whose output hops feed this one.
    inputs: Vec<Arc<Cell>>,
    begin: Begin<T>,
}

/// The parts of a pipeline once its newest stage is wired to its hop.
pub(crate) struct Wiring<T> {
    pub(crate) stages: Vec<StageFuture>,
    pub(crate) cells: Vec<Arc<Cell>>,
    pub(crate) inlet: Inlet<T>,
    pub(crate) error: Option<Error>,
    pub(crate) ctx: Arc<Ctx>,
}

/// Everything wired so far, without the newest hop's far end.
pub(crate) struct Upstream {
    pub(crate) stages: Vec<StageFuture>,
    pub(crate) cells: Vec<Arc<Cell>>,
    pub(crate) error: Option<Error>,
    pub(crate) ctx: Arc<Ctx>,
}

impl<T> Wiring<T> {
    /// Splits off the newest hop's far end.
    pub(crate) fn split(self) -> (Upstream, Inlet<T>) {
        let Wiring {
            stages,
            cells,
            inlet,
            error,
            ctx,
        } = self;
        let up = Upstream {
            stages,
            cells,
            error,
            ctx,
        };
        (up, inlet)
    }
}

impl Upstream {
    /// Adds `other`'s stages after these, joining its run to this one.
    pub(crate) fn absorb(&mut self, other: Upstream) {
        other.ctx.join(&self.ctx);
        self.stages.extend(other.stages);
        self.cells.extend(other.cells);
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    pub(crate) fn source<F, Fut>(start: F) -> Self
    where
        F: FnOnce(Outlet<T>, Arc<Ctx>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        Pipeline {
            stages: Vec::new(),
            cells: Vec::new(),
            head: Head::new(
                "source".to_owned(),
                Vec::new(),
                Begin::Stage(Box::new(move |w: Wired<T>| {
                    Parts::single(Box::pin(start(w.out, w.ctx)))
                })),
            ),
            error: None,
            ctx: Ctx::new(),
            _newest: PhantomData,
        }
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
        Control::new(Arc::clone(&self.ctx))
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
        self.head.name = name.into();
        self
    }

    /// Sets how many items the hop after the newest stage holds.
    ///
    /// When the hop is full the stage waits: that wait is the pipeline's
    /// only flow control. The default is [`DEFAULT_CAPACITY`]. Capacity 0
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
        self.head.capacity = capacity;
        self
    }

    /// Sets the most items the newest stage sends downstream in one chunk.
    ///
    /// A stage sends a chunk when it is full, or as soon as its input has
    /// nothing more ready, so a larger limit costs no latency. A limit above
    /// the hop's capacity is lowered to it. The default is
    /// [`DEFAULT_CHUNK_LIMIT`]; 0 makes the run fail with
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
        self.head.chunk_limit = chunk_limit;
        self
    }

    /// Wires the newest stage to a new hop and adds the stage that `make`
    /// builds on the far side of it. `expands` says whether the stage's
    /// outputs may outnumber, or be fewer than, the inputs it passed on.
    pub(crate) fn chain<U, S2, F, Fut>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, Wired<U>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.chain_parts(kind, expands, move |input, w| {
            Parts::single(Box::pin(make(input, w)))
        })
    }

    /// Like [`chain`](Pipeline::chain), for a stage made of several parts.
    pub(crate) fn chain_parts<U, S2, F>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, Wired<U>) -> Parts + Send + 'static,
    {
        let (up, mut inlet) = self.wire().split();
        let inputs = vec![Arc::clone(inlet.from())];
        Pipeline::assemble(up, kind, expands, inputs, move |w: Wired<U>| {
            inlet.attach(&w.cell);
            make(inlet, w)
        })
    }

    /// Records a configuration error, to be reported when the pipeline
    /// runs; the first one wins.
    pub(crate) fn fail(mut self, err: Error) -> Self {
        self.error.get_or_insert(err);
        self
    }

    /// The newest stage's name.
    pub(crate) fn newest_name(&self) -> &str {
        &self.head.name
    }

    /// Sets the newest stage's error policy and item timeout.
    pub(crate) fn configure(
        mut self,
        policy: Option<Box<dyn Any + Send>>,
        timeout: Option<Duration>,
    ) -> Self {
        if policy.is_some() {
            self.head.policy = policy;
        }
        if timeout.is_some() {
            self.head.timeout = timeout;
        }
        self
    }

    /// Creates the newest stage's output hop and starts the stage on it.
    pub(crate) fn wire(self) -> Wiring<T> {
        let Pipeline {
            mut stages,
            mut cells,
            head,
            error,
            ctx,
            _newest,
        } = self;
        let error = error.or_else(|| head.check().err());
        let start = match head.begin {
            Begin::Stage(start) => start,
            Begin::Wired(inlet) => {
                return Wiring {
                    stages,
                    cells,
                    inlet,
                    error,
                    ctx,
                }
            }
        };
        // A bad setting has been recorded above; the hop is still made, with
        // a valid size, so the types line up, but the pipeline never runs.
        let cell = Cell::new(head.name, head.expands, head.inputs);
        let (out, inlet) = hop(
            head.capacity.max(1),
            head.chunk_limit.max(1),
            Arc::clone(&cell),
        );
        let wired = Wired {
            out,
            ctx: Arc::clone(&ctx),
            cell: Arc::clone(&cell),
            policy: head.policy,
            timeout: head.timeout,
        };
        let parts = start(wired);
        stages.push(drive(Arc::clone(&cell), Arc::clone(&ctx), parts.main));
        stages.extend(parts.helpers);
        cells.push(cell);
        Wiring {
            stages,
            cells,
            inlet,
            error,
            ctx,
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose newest stage is the one `start` makes, after the
    /// stages in `wiring`. The stage is named `kind#N` and fed by `inputs`.
    pub(crate) fn assemble<S, F>(
        up: Upstream,
        kind: &str,
        expands: bool,
        inputs: Vec<Arc<Cell>>,
        start: F,
    ) -> Pipeline<T, S>
    where
        F: FnOnce(Wired<T>) -> Parts + Send + 'static,
    {
        let name = format!("{kind}#{}", up.cells.len());
        let mut head = Head::new(name, inputs, Begin::Stage(Box::new(start)));
        head.expands = expands;
        Pipeline {
            stages: up.stages,
            cells: up.cells,
            head,
            error: up.error,
            ctx: up.ctx,
            _newest: PhantomData,
        }
    }

    /// A branch of a fan-out: a pipeline with no stages of its own yet,
    /// whose items come through `inlet`, a hop that already exists.
    pub(crate) fn branch(inlet: Inlet<T>, ctx: Arc<Ctx>) -> Self {
        let from = Arc::clone(inlet.from());
        let mut head = Head::new(from.name.clone(), Vec::new(), Begin::Wired(inlet));
        head.capacity = 0;
        Pipeline {
            stages: Vec::new(),
            cells: Vec::new(),
            head,
            error: None,
            ctx,
            _newest: PhantomData,
        }
    }
}

impl<T> Head<T> {
    fn new(name: String, inputs: Vec<Arc<Cell>>, begin: Begin<T>) -> Self {
        Head {
            name,
            inputs,
            capacity: DEFAULT_CAPACITY,
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            expands: false,
            policy: None,
            timeout: None,
            begin,
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.capacity == 0 {
            return Err(Error::ZeroCapacity {
                stage: self.name.clone(),
            });
        }
        if self.chunk_limit == 0 {
            return Err(Error::ZeroChunkLimit {
                stage: self.name.clone(),
            });
        }
        Ok(())
    }
}

impl<T, S> fmt::Debug for Pipeline<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &(self.stages.len() + 1))
            .field("newest", &self.head.name)
            .field("capacity", &self.head.capacity)
            .field("chunk_limit", &self.head.chunk_limit)
            .field("error", &self.error)
            .finish()
    }
}
