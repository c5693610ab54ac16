//! What can go wrong between a pipeline and Redis.

/// An error of the Redis connector.
///
/// # Examples
///
/// ```
/// use flowgate_redis::Error;
///
/// let err = Error::Setting("`count` must be at least 1");
/// assert_eq!(err.to_string(), "bad setting: `count` must be at least 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting cannot work, such as a read of 0 entries or a zero
    /// timeout. Found before anything is sent to Redis.
    #[error("bad setting: {0}")]
    Setting(&'static str),
    /// Redis, or the connection to it, failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered in a shape the connector does not know: a server
    /// older than Redis 7.0, or a key that is not a stream.
    #[error("unexpected answer from redis to {command}: {detail}")]
    Protocol {
        /// The command that was answered.
        command: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A payload could not be decoded by the codec.
    #[error("could not decode entry {id}: {message}")]
    Decode {
        /// The stream entry's id.
        id: String,
        /// The codec's error.
        message: String,
    },
    /// The service that took a remote request could not answer it: a
    /// stage skipped it, dead-lettered it or failed on it.
    #[error("request refused by the service: {0}")]
    Refused(String),
    /// The pipeline of a [`RemoteService`](crate::RemoteService) failed;
    /// the text is its error.
    #[error("the service failed: {0}")]
    Service(String),
    /// No reply came within the client's timeout.
    #[error("no reply within {0:?}")]
    NoReply(std::time::Duration),
    /// The connector was closed, or its task has ended.
    #[error("closed")]
    Closed,
}

impl Error {
    /// Whether retrying later may help: the connection failed or timed out,
    /// or the server is loading or restarting.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!flowgate_redis::Error::Setting("x").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis(err) => transient(err),
            _ => false,
        }
    }
}

/// Whether a Redis error may pass with a retry.
pub(crate) fn transient(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN")
        )
}
