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
