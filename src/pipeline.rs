//! The typed pipeline builder.

use std::fmt;
use std::future::Future;

use futures_lite::Stream;

use crate::hop::{hop, Inlet, Outlet};
use crate::join::{guard, BoxFuture, StageFuture};
use crate::{stage, Error};

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

/// Starts a pipeline whose source drains an iterator.
///
/// The iterator runs in the source stage's task, so it may be long or
/// endless: backpressure stops it from running ahead of the stages after it.
///
/// # Examples
///
/// ```
/// let evens: Vec<u32> = flowgate::from_iter(1..=6u32)
///     .filter(|x| x % 2 == 0)
///     .collect()
///     .run()?;
/// assert_eq!(evens, [2, 4, 6]);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_iter<I>(iter: I) -> Pipeline<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    let iter = iter.into_iter();
    Pipeline::source(move |out| stage::from_iter(iter, out))
}

/// Starts a pipeline whose source drains a [`Stream`].
///
/// Every item the stream has ready is taken before the source sends, so a
/// burst crosses the first hop as one chunk.
///
/// # Examples
///
/// ```
/// use futures_lite::stream;
///
/// let total = flowgate::from_stream(stream::iter(vec![1u64, 2, 3]))
///     .map(|x| x * 10)
///     .fold(0, |sum, x| sum + x)
///     .run()?;
/// assert_eq!(total, 60);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_stream<S>(stream: S) -> Pipeline<S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    Pipeline::source(move |out| stage::from_stream(stream, out))
}

/// A pipeline under construction, whose last stage gives items of type `T`.
///
/// Start one with [`from_iter`] or [`from_stream`], chain stages, and end it
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
#[must_use = "a pipeline does nothing until it ends in a sink and runs"]
pub struct Pipeline<T> {
    /// Stages already wired to their output hop.
    stages: Vec<StageFuture>,
    /// The newest stage, waiting for its output hop.
    head: Head<T>,
    /// The first configuration error, reported when the pipeline runs.
    error: Option<Error>,
}

/// Starts a stage once its output hop exists.
type Start<T> = Box<dyn FnOnce(Outlet<T>) -> BoxFuture<()> + Send>;

/// The newest stage and the settings of its output hop.
struct Head<T> {
    name: String,
    capacity: usize,
    chunk_limit: usize,
    start: Start<T>,
}

impl<T: Send + 'static> Pipeline<T> {
    pub(crate) fn source<F, Fut>(start: F) -> Self
    where
        F: FnOnce(Outlet<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Pipeline {
            stages: Vec::new(),
            head: Head::new(
                "source".to_owned(),
                Box::new(move |out| Box::pin(start(out))),
            ),
            error: None,
        }
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

    /// Adds a stage that transforms each item with `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<String> = flowgate::from_iter(1..=3).map(|x: i32| x.to_string()).collect().run()?;
    /// assert_eq!(out, ["1", "2", "3"]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn map<U, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        self.each("map", move |items, out| out.extend(items.map(&mut f)))
    }

    /// Adds a stage that keeps only the items for which `f` returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let odd: Vec<u32> = flowgate::from_iter(0..6u32).filter(|x| x % 2 == 1).collect().run()?;
    /// assert_eq!(odd, [1, 3, 5]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.each("filter", move |items, out| out.extend(items.filter(&mut f)))
    }

    /// Adds a stage that maps each item to an `Option`, keeping the `Some`s.
    ///
    /// # Examples
    ///
    /// ```
    /// let nums: Vec<i32> = flowgate::from_iter(["1", "x", "3"])
    ///     .filter_map(|s| s.parse::<i32>().ok())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(nums, [1, 3]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter_map<U, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Send + 'static,
    {
        self.each("filter_map", move |items, out| {
            out.extend(items.filter_map(&mut f))
        })
    }

    /// Adds a stage that turns each item into any number of items.
    ///
    /// The outputs are sent in chunks as they are made, so one item that
    /// expands into millions still respects the next hop's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32).flat_map(|n| 0..n).collect().run()?;
    /// assert_eq!(out, [0, 0, 1, 0, 1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn flat_map<U, I, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: Send,
        F: FnMut(T) -> I + Send + 'static,
    {
        self.chain("flat_map", move |input, out| stage::flat_map(input, out, f))
    }

    /// Adds a stage that calls `f` on a reference to each item and passes
    /// the item on unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&seen);
    /// let n = flowgate::from_iter(0..4u8)
    ///     .inspect(move |_| { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .count()
    ///     .run()?;
    /// assert_eq!((n, seen.load(Ordering::Relaxed)), (4, 4));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn inspect<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        self.each("inspect", move |items, out| {
            out.extend(items.inspect(&mut f))
        })
    }

    /// Adds a stage that maps each item with an async function, one item at
    /// a time, in order.
    ///
    /// While a call waits (on a timer, a socket), the outputs already made
    /// are sent on, so waiting never holds finished items back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32)
    ///     .then(|x| async move {
    ///         smol::Timer::after(Duration::from_millis(1)).await;
    ///         x * 2
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn then<U, Fut, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.chain("then", move |input, out| stage::then(input, out, f))
    }

    /// Adds a stage that gives at most one output per input; `apply` moves
    /// a run of inputs into the output chunk.
    fn each<U, F>(self, kind: &'static str, apply: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(std::vec::Drain<'_, T>, &mut Outlet<U>) + Send + 'static,
    {
        self.chain(kind, move |input, out| stage::each(input, out, apply))
    }

    /// Wires the newest stage to a new hop and adds the stage that `make`
    /// builds on the far side of it.
    fn chain<U, F, Fut>(self, kind: &'static str, make: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, Outlet<U>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stages, inlet, error) = self.wire();
        let name = format!("{kind}#{}", stages.len());
        let start: Start<U> = Box::new(move |out| Box::pin(make(inlet, out)));
        Pipeline {
            stages,
            head: Head::new(name, start),
            error,
        }
    }

    /// Creates the newest stage's output hop and starts the stage on it.
    /// Returns the finished stages, the far end of the hop, and the first
    /// configuration error.
    pub(crate) fn wire(self) -> (Vec<StageFuture>, Inlet<T>, Option<Error>) {
        let Pipeline {
            mut stages,
            head,
            error,
        } = self;
        let error = error.or_else(|| head.check().err());
        // A bad setting has been recorded above; the hop is still made, with
        // a valid size, so the types line up, but the pipeline never runs.
        let (outlet, inlet) = hop(head.capacity.max(1), head.chunk_limit.max(1));
        stages.push(guard(head.name, (head.start)(outlet)));
        (stages, inlet, error)
    }
}

impl<T> Head<T> {
    fn new(name: String, start: Start<T>) -> Self {
        Head {
            name,
            capacity: DEFAULT_CAPACITY,
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            start,
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

impl<T> fmt::Debug for Pipeline<T> {
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
