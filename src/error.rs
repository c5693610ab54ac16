//! The errors flowgate returns.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::report::run::Report;

/// Why a pipeline could not be built or did not finish.
///
/// Every message is lowercase and names the stage it concerns, so a log line
/// says where to look.
///
/// # Examples
///
/// ```
/// use flowgate::Error;
///
/// let err = flowgate::from_iter(0..3u32)
///     .capacity(0)
///     .count()
///     .run()
///     .unwrap_err();
/// assert!(matches!(err, Error::ZeroCapacity { ref stage } if stage == "source"));
/// assert_eq!(err.to_string(), "stage `source` has capacity 0; a hop must hold at least 1 item");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hop was given capacity 0. A hop must hold at least one item, or
    /// nothing could ever cross it.
    #[error("stage `{stage}` has capacity 0; a hop must hold at least 1 item")]
    ZeroCapacity {
        /// The stage whose output hop was configured.
        stage: String,
    },

    /// A stage was given a chunk limit of 0.
    #[error("stage `{stage}` has chunk limit 0; a chunk must hold at least 1 item")]
    ZeroChunkLimit {
        /// The stage that was configured.
        stage: String,
    },

    /// A pipelined sender was asked for a window of 0 items.
    #[error("a pipelined sender's window is 0; it must allow at least 1 item in flight")]
    ZeroWindow,

    /// A watch was asked for reports every 0 seconds, a run to count a
    /// stage as stalled after 0 seconds, or a shutdown to drain within 0
    /// seconds.
    #[error("an interval is 0; it must be at least 1 ns")]
    ZeroInterval,

    /// A stage was given windows of time of length 0.
    #[error("stage `{stage}` has windows of length 0; a window must last at least 1 ns")]
    ZeroWindowLength {
        /// The stage that was configured.
        stage: String,
    },

    /// A stage that cannot go on after a panic was set to restart after one.
    #[error(
        "stage `{stage}` (a `{kind}`) cannot restart after a panic; map, filter, filter_map, inspect, then, try_map and try_then can"
    )]
    CannotRestart {
        /// The stage that was configured.
        stage: String,
        /// What the stage does.
        kind: &'static str,
    },

    /// A rate limit lets 0 items through, or counts them over 0 seconds.
    #[error("a rate of {items} items per {per:?}; both must be above 0")]
    ZeroRate {
        /// The items let through per period.
        items: u64,
        /// The period.
        per: Duration,
    },

    /// A pipeline was asked to run on 0 threads.
    #[error("cannot run on 0 threads; at least 1 is needed")]
    ZeroThreads,

    /// A pipeline was asked to run on more than
    /// [`MAX_THREADS`](crate::MAX_THREADS) threads. Each is an OS thread,
    /// started before the run begins.
    #[error("cannot run on {threads} threads; at most {max} are allowed")]
    TooManyThreads {
        /// The number asked for.
        threads: usize,
        /// The most allowed.
        max: usize,
    },

    /// A thread for [`Job::run_on_threads`](crate::Job::run_on_threads)
    /// could not be started.
    #[error("could not start a worker thread")]
    ThreadSpawn {
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A stage, the source or the sink panicked. The other stages were
    /// stopped.
    #[error("stage `{stage}` panicked: {message}")]
    StagePanicked {
        /// The stage that panicked.
        stage: String,
        /// The panic's message, when it was a string.
        message: String,
    },

    /// An item failed in a fallible stage whose policy is to fail fast (the
    /// default), or whose retries ran out. The other stages were stopped.
    #[error("stage `{stage}` failed")]
    Stage {
        /// The stage whose item failed.
        stage: String,
        /// The item's error: the stage's own error type, or
        /// [`TimedOut`](crate::TimedOut).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The pipeline was cancelled through its [`Control`](crate::Control) or
    /// handle. The report says what became of every item.
    #[error("the pipeline was cancelled")]
    Cancelled {
        /// The account of the run up to the cancel.
        report: Box<Report>,
    },

    /// The run's deadline passed before it finished, so it was cancelled.
    /// The report says what became of every item.
    #[error("the pipeline did not finish within its deadline of {after:?}")]
    DeadlineElapsed {
        /// The deadline that was set.
        after: Duration,
        /// The account of the run up to the deadline.
        report: Box<Report>,
    },

    /// A retry policy was given 0 attempts. An item gets at least one.
    #[error("stage `{stage}` has a retry policy of 0 attempts; at least 1 is needed")]
    ZeroAttempts {
        /// The stage whose policy was set.
        stage: String,
    },

    /// A backoff's growth factor was below 1, not a number, or infinite,
    /// which would make the waits shrink, or be undefined.
    #[error(
        "stage `{stage}` has a backoff factor of {factor}; it must be a finite number of at least 1"
    )]
    BadBackoff {
        /// The stage whose policy was set.
        stage: String,
        /// The factor that was given.
        factor: f64,
    },

    /// A parallel stage was given 0 workers, so no item could ever be
    /// processed.
    #[error("stage `{stage}` has 0 workers; a parallel stage needs at least 1")]
    ZeroWorkers {
        /// The parallel stage.
        stage: String,
    },

    /// A parallel stage was given more workers than
    /// [`MAX_WORKERS`](crate::MAX_WORKERS). Each worker is a task, built
    /// before the run starts.
    #[error("stage `{stage}` has {workers} workers; at most {max} are allowed")]
    TooManyWorkers {
        /// The parallel stage.
        stage: String,
        /// The number asked for.
        workers: usize,
        /// The most allowed.
        max: usize,
    },

    /// A batching stage was asked for batches of 0 items.
    #[error("stage `{stage}` has a batch size of 0; a batch holds at least 1 item")]
    ZeroBatchSize {
        /// The batching stage.
        stage: String,
    },

    /// A fan-out's builder did not return one of the branches it was given
    /// (it returned some other pipeline instead), so that branch's items
    /// would have nowhere to go.
    #[error("branch {branch} of stage `{stage}` was not returned by the builder")]
    LostBranch {
        /// The fan-out stage.
        stage: String,
        /// The branch's index.
        branch: usize,
    },

    /// A fan-out was asked for 0 branches.
    #[error("stage `{stage}` has 0 branches; a fan-out needs at least 1")]
    ZeroBranches {
        /// The fan-out stage.
        stage: String,
    },
}

impl Error {
    /// The report carried by a cancelled or timed-out run.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flowgate::Error::ZeroThreads;
    /// assert!(err.report().is_none());
    /// ```
    pub fn report(&self) -> Option<&Report> {
        match self {
            Error::Cancelled { report } | Error::DeadlineElapsed { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// An item took longer than its stage's timeout. It goes to the stage's
/// error policy like any other failure.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let err = flowgate::TimedOut { after: Duration::from_millis(5) };
/// assert_eq!(err.to_string(), "an item took longer than its timeout of 5ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an item took longer than its timeout of {after:?}")]
pub struct TimedOut {
    /// The timeout that was set.
    pub after: Duration,
}

/// Turns a caught panic payload into the text it carried.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic with a non-string payload".to_owned(),
        },
    }
}

/// Why a send got no reply.
///
/// A send either gives the item back, when the consumer never took it, or
/// says that the consumer failed while it held the item. No item vanishes
/// without one or the other.
///
/// # Examples
///
/// ```
/// use flowgate::{Consumer, SendError};
///
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (mut producer, consumer) = Consumer::new((), |_: &mut (), n: u32| n + 1).spawn_local(&ex);
/// producer.close();
/// let err = ex.run(producer.send(7)).await.unwrap_err();
/// assert!(matches!(err, SendError::Closed(7)));
/// assert_eq!(err.into_inner(), Some(7));
/// # drop(consumer);
/// # });
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The consumer had ended, or was closed, before it took the item. The
    /// item is given back.
    #[error("sending into a closed consumer")]
    Closed(T),

    /// The consumer panicked while it handled this item, so the item was
    /// used up and has no reply.
    #[error("consumer `{stage}` panicked: {message}")]
    Panicked {
        /// The consumer's name.
        stage: String,
        /// The panic's message, when it was a string.
        message: String,
    },

    /// The consumer was stopped (its task cancelled) while it held the
    /// item, so the item was used up and has no reply.
    #[error("the consumer stopped before it replied")]
    Cancelled,

    /// A stage of a [`service`](crate::service) failed on the item, and its
    /// error policy skipped it: the item has no reply.
    #[error("the item was skipped after an error")]
    Skipped,

    /// A stage of a [`service`](crate::service) failed on the item, and its
    /// error policy sent it to the dead-letter output: the item has no
    /// reply.
    #[error("the item was sent to a dead-letter output")]
    DeadLettered,

    /// A stage of a [`service`](crate::service) failed on the item, which
    /// failed the service's run.
    #[error("the item failed: {message}")]
    Failed {
        /// The run's error message.
        message: String,
    },
}

impl<T> SendError<T> {
    /// Gives back the item, if the consumer never took it.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = flowgate::SendError::Closed("job");
    /// assert_eq!(err.into_inner(), Some("job"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        match self {
            SendError::Closed(item) => Some(item),
            SendError::Panicked { .. }
            | SendError::Cancelled
            | SendError::Skipped
            | SendError::DeadLettered
            | SendError::Failed { .. } => None,
        }
    }
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Panicked { stage, message } => f
                .debug_struct("Panicked")
                .field("stage", stage)
                .field("message", message)
                .finish(),
            SendError::Cancelled => f.write_str("Cancelled"),
            SendError::Skipped => f.write_str("Skipped"),
            SendError::DeadLettered => f.write_str("DeadLettered"),
            SendError::Failed { message } => {
                f.debug_struct("Failed").field("message", message).finish()
            }
        }
    }
}

/// Why [`Producer::try_send`](crate::Producer::try_send) did not send.
///
/// # Examples
///
/// ```
/// let err = flowgate::TrySendError::Full(3u8);
/// assert_eq!(err.into_inner(), Some(3));
/// assert_eq!(err_text(), "the consumer's queue is full");
/// # fn err_text() -> String { flowgate::TrySendError::Full(0u8).to_string() }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The consumer's queue had no room; the item is given back.
    #[error("the consumer's queue is full")]
    Full(T),

    /// The send failed as a waiting send would have.
    #[error(transparent)]
    Send(#[from] SendError<T>),
}

impl<T> TrySendError<T> {
    /// Gives back the item, if the consumer never took it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{SendError, TrySendError};
    ///
    /// assert_eq!(TrySendError::Send(SendError::Closed(1)).into_inner(), Some(1));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        match self {
            TrySendError::Full(item) => Some(item),
            TrySendError::Send(err) => err.into_inner(),
        }
    }
}

impl<T> std::fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Send(err) => f.debug_tuple("Send").field(err).finish(),
        }
    }
}

/// A stage's function panicked on an item, and the stage went on: it was
/// set to [restart](crate::Pipeline::restart_on_panic) after a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stage's work panicked on an item: {message}")]
#[non_exhaustive]
pub struct Panicked {
    /// The panic's message.
    pub message: String,
}

/// Why one item failed in a fallible stage: its own error, its timeout, or
/// a panic in a stage that restarts after one.
///
/// # Examples
///
/// ```
/// use flowgate::{ItemError, TimedOut};
/// use std::time::Duration;
///
/// let err: ItemError<std::num::ParseIntError> = ItemError::TimedOut(TimedOut { after: Duration::ZERO });
/// assert!(err.is_timeout());
/// assert_eq!(err.to_string(), "an item took longer than its timeout of 0ns");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemError<E> {
    /// The stage's function returned this error.
    Failed(E),
    /// The item took longer than the stage's timeout.
    TimedOut(TimedOut),
    /// The stage's function panicked on the item, in a stage set to
    /// [restart](crate::Pipeline::restart_on_panic) after a panic.
    Panicked(Panicked),
}

impl<E> ItemError<E> {
    /// Whether the item timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ItemError::TimedOut(_))
    }
}

impl<E: fmt::Display> fmt::Display for ItemError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemError::Failed(err) => err.fmt(f),
            ItemError::TimedOut(err) => err.fmt(f),
            ItemError::Panicked(err) => err.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ItemError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ItemError::Failed(err) => Some(err),
            ItemError::TimedOut(err) => Some(err),
            ItemError::Panicked(err) => Some(err),
        }
    }
}

/// What a fallible stage's function may fail with: any error that turns
/// into a `Box<dyn Error + Send + Sync>` and prints, so a
/// `std::error::Error` of yours, a `Box<dyn Error + Send + Sync>`, or an
/// `anyhow::Error`. The run's [`Error::Stage`] then carries it, with the
/// chain of errors under it.
///
/// It is implemented for every such type; there is nothing to implement.
///
/// # Examples
///
/// ```
/// type Boxed = Box<dyn std::error::Error + Send + Sync>;
///
/// let err = flowgate::from_iter(["1", "x"])
///     .try_map(|s| s.parse::<u32>().map_err(|e| Boxed::from(format!("{s:?}: {e}"))))
///     .count()
///     .run()
///     .unwrap_err();
/// let flowgate::Error::Stage { source, .. } = err else { panic!("{err}") };
/// assert_eq!(source.to_string(), r#""x": invalid digit found in string"#);
/// ```
pub trait StageError:
    Into<Box<dyn std::error::Error + Send + Sync>> + fmt::Debug + fmt::Display + Send + Sync + 'static
{
}

impl<E> StageError for E where
    E: Into<Box<dyn std::error::Error + Send + Sync>>
        + fmt::Debug
        + fmt::Display
        + Send
        + Sync
        + 'static
{
}

impl<E: StageError> ItemError<E> {
    /// The error as the source of [`Error::Stage`]: the stage's own error,
    /// or [`TimedOut`], so that callers can downcast to either.
    pub(crate) fn into_source(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            ItemError::Failed(err) => err.into(),
            ItemError::TimedOut(err) => Box::new(err),
            ItemError::Panicked(err) => Box::new(err),
        }
    }
}

/// Why [`Producer::send_timeout`](crate::Producer::send_timeout) gave no reply.
///
/// # Examples
///
/// ```
/// let err = flowgate::SendTimeoutError::Timeout(5u8);
/// assert_eq!(err.into_inner(), Some(5));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendTimeoutError<T> {
    /// The consumer's queue had no room before the time ran out. The item
    /// was never handed over, and is given back.
    #[error("timed out waiting for room in the consumer's queue")]
    Timeout(T),

    /// The item was handed over, but its reply did not come in time. The
    /// consumer still handles the item; its reply is discarded.
    #[error("timed out waiting for the consumer's reply")]
    Unanswered,

    /// The send failed as a send without a time limit would have.
    #[error(transparent)]
    Send(#[from] SendError<T>),
}

impl<T> SendTimeoutError<T> {
    /// Gives back the item, if the consumer never took it.
    pub fn into_inner(self) -> Option<T> {
        match self {
            SendTimeoutError::Timeout(item) => Some(item),
            SendTimeoutError::Unanswered => None,
            SendTimeoutError::Send(err) => err.into_inner(),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Unanswered => f.write_str("Unanswered"),
            SendTimeoutError::Send(err) => f.debug_tuple("Send").field(err).finish(),
        }
    }
}

/// An error and every error under it, as one message, each after a `: `:
/// `stage `x` failed: <the item's error>`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
