//! The typed pipeline builder.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::hop::Outlet;
use crate::join::StageFuture;
use crate::run::{Cell, Ctx};
use crate::wiring::{Begin, Head, Parts, Wired};
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
    pub(crate) stages: Vec<StageFuture>,
    /// The counters of every stage wired so far.
    pub(crate) cells: Vec<Arc<Cell>>,
    /// The newest stage, waiting for its output hop.
    pub(crate) head: Head<T>,
    /// The first configuration error, reported when the pipeline runs.
    pub(crate) error: Option<Error>,
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) _newest: PhantomData<fn() -> S>,
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
        self.ctx.root().timed.store(on, Relaxed);
        self
    }

    /// Records a configuration error, to be reported when the pipeline
    /// runs; the first one wins.
    pub(crate) fn fail(mut self, err: Error) -> Self {
        self.error.get_or_insert(err);
        self
    }

    /// Records that the newest stage was set up badly; `invalid` makes the
    /// error from the stage's name, which may still change.
    pub(crate) fn reject_newest(
        mut self,
        invalid: impl FnOnce(String) -> Error + Send + 'static,
    ) -> Self {
        self.head.invalid = Some(Box::new(invalid));
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
