//! The errors flowgate returns.

use std::any::Any;

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

    /// A pipeline was asked to run on 0 threads.
    #[error("cannot run on 0 threads; at least 1 is needed")]
    ZeroThreads,

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
            SendError::Panicked { .. } | SendError::Cancelled => None,
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
