//! The default and the largest settings: how many items a hop holds and
//! sends at once, how many workers and threads a run may start, and how many
//! sends may wait for a consumer.
//!
//! Each setting's documentation says what becomes of a value out of range:
//! a typed error for most, the nearest allowed value for a few.

/// The capacity of a hop, in items, unless set with [`Pipeline::capacity`](crate::Pipeline::capacity).
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
/// [`Pipeline::chunk_limit`](crate::Pipeline::chunk_limit).
///
/// # Examples
///
/// ```
/// let p = flowgate::from_iter(0..3u8);
/// assert!(format!("{p:?}").contains(&format!("chunk_limit: {}", flowgate::DEFAULT_CHUNK_LIMIT)));
/// ```
pub const DEFAULT_CHUNK_LIMIT: usize = 256;

/// The most workers one parallel stage may have. Each worker is a task,
/// built before the run starts, so a mistyped count fails with
/// [`Error::TooManyWorkers`](crate::Error::TooManyWorkers) instead of exhausting memory.
///
/// # Examples
///
/// ```
/// let err = flowgate::from_iter(0..1u8)
///     .par_map(flowgate::MAX_WORKERS + 1, |x| x)
///     .count()
///     .run()
///     .unwrap_err();
/// assert!(matches!(err, flowgate::Error::TooManyWorkers { .. }));
/// ```
pub const MAX_WORKERS: usize = 1 << 16;

/// The most threads [`Job::run_on_threads`](crate::Job::run_on_threads) will start. Each is an OS
/// thread started before the run begins, so a mistyped count gives
/// [`Error::TooManyThreads`](crate::Error::TooManyThreads) instead of thousands of threads.
pub const MAX_THREADS: usize = 1024;

/// How many sends can wait for a task consumer, unless set with
/// [`Consumer::capacity`](crate::Consumer::capacity).
///
/// # Examples
///
/// ```
/// let ex = smol::LocalExecutor::new();
/// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
/// assert_eq!(p.capacity(), Some(flowgate::DEFAULT_CONSUMER_CAPACITY));
/// ```
pub const DEFAULT_CONSUMER_CAPACITY: usize = 1024;

/// The most sends that can wait for a task consumer. The queue's room is
/// made up front, so [`Consumer::capacity`](crate::Consumer::capacity) takes a larger number as this
/// one rather than allocating for it.
///
/// ```
/// let ex = smol::LocalExecutor::new();
/// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x)
///     .capacity(usize::MAX)
///     .spawn_local(&ex);
/// assert_eq!(p.capacity(), Some(flowgate::MAX_CONSUMER_CAPACITY));
/// ```
pub const MAX_CONSUMER_CAPACITY: usize = 1 << 16;
