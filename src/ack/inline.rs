//! The generator-style consumer, driven in the caller's task.

use std::fmt;

use crate::ack::handler::{Handler, call};
use crate::error::SendError;

/// A generator-style consumer, driven in the caller's task: each
/// [`send`](InlineConsumer::send) runs the handler on the item at once and
/// gives its reply, with no queue and no task switch. If the handler awaits
/// something, the send waits for it.
///
/// [`close`](InlineConsumer::close) ends the consumer and gives its final
/// state, like the return value of a Python generator.
///
/// An inline consumer is resumed by one caller at a time, as a generator is;
/// to share a consumer between tasks, spawn it and clone its [`Producer`](crate::Producer).
///
/// # Examples
///
/// The producer/consumer dialog of the Python generator tutorial:
///
/// ```
/// # futures_lite::future::block_on(async {
/// let mut c = flowgate::Consumer::new((), |_: &mut (), n: u32| {
///     println!("[Consumer]Consuming {n}...");
///     "200 OK"
/// })
/// .inline();
/// for n in 1..=5 {
///     println!("[Producer]Producing {n}...");
///     let r = c.send(n).await?;
///     println!("[PRODUCER]Consumer return: {r}");
/// }
/// c.close();
/// # Ok::<(), flowgate::SendError<u32>>(())
/// # }).unwrap();
/// ```
pub struct InlineConsumer<S, H> {
    state: S,
    handler: H,
    name: String,
    /// Set once the handler panicked; later sends give their items back.
    failed: bool,
}

impl<S, H> InlineConsumer<S, H> {
    pub(crate) fn new(state: S, handler: H, name: String) -> Self {
        InlineConsumer {
            state,
            handler,
            name,
            failed: false,
        }
    }

    /// Runs the handler on `item` and gives its reply.
    ///
    /// If the handler panics, the panic becomes
    /// [`SendError::Panicked`] and the consumer is closed: later sends give
    /// their items back as [`SendError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let mut c = flowgate::Consumer::new(0, |n: &mut i32, x: i32| { *n += x; *n }).inline();
    /// assert_eq!(c.send(2).await?, 2);
    /// assert_eq!(c.send(3).await?, 5);
    /// # Ok::<(), flowgate::SendError<i32>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send<T>(&mut self, item: T) -> Result<H::Reply, SendError<T>>
    where
        H: Handler<S, T>,
    {
        if self.failed {
            return Err(SendError::Closed(item));
        }
        // Until the reply is in, a cancelled send leaves the state half
        // changed; treat that like a panic.
        self.failed = true;
        match call(&mut self.handler, &mut self.state, item).await {
            Ok(reply) => {
                self.failed = false;
                Ok(reply)
            }
            Err(message) => Err(SendError::Panicked {
                stage: self.name.clone(),
                message,
            }),
        }
    }

    /// Whether the consumer has failed (its handler panicked, or a send was
    /// dropped before its reply), so that sends give their items back.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = flowgate::Consumer::new((), |_: &mut (), x: u8| x).inline();
    /// assert!(!c.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.failed
    }

    /// Ends the consumer and gives its final state.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = flowgate::Consumer::new(vec![1, 2], |v: &mut Vec<i32>, x: i32| v.push(x)).inline();
    /// assert_eq!(c.close(), [1, 2]);
    /// ```
    pub fn close(self) -> S {
        self.state
    }
}

impl<S, H> fmt::Debug for InlineConsumer<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineConsumer")
            .field("name", &self.name)
            .field("closed", &self.failed)
            .finish_non_exhaustive()
    }
}
