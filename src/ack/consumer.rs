//! Consumers that answer each item, like a Python generator's `send`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use smol::{Executor, LocalExecutor, Task};

use crate::ack::handler::{AsyncHandler, Handler, SyncHandler};
use crate::ack::inline::InlineConsumer;
use crate::ack::producer::Producer;
use crate::ack::protocol::{Doorbell, Inbox, serve};
use crate::error::Error;
use crate::limits::{DEFAULT_CONSUMER_CAPACITY, MAX_CONSUMER_CAPACITY};

/// A consumer not yet started: its state, its handler, and its settings.
///
/// Start it in one of two ways:
///
/// - [`spawn`](Consumer::spawn) (or `spawn_local`, `spawn_global`) runs it as
///   its own task behind a bounded queue, and gives a cloneable [`Producer`]
///   and a [`ConsumerHandle`] for its final state.
/// - [`inline`](Consumer::inline) gives an [`InlineConsumer`] that runs in
///   the caller's task, resumed by each `send`, the way `gen.send(n)`
///   resumes a Python generator.
///
/// The state plays the part of a generator's locals, and when the consumer
/// ends it is handed back like a generator's return value.
///
/// # Examples
///
/// ```
/// use flowgate::Consumer;
///
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (mut producer, consumer) = Consumer::new(0u32, |count: &mut u32, n: u32| {
///     *count += 1;
///     format!("200 OK for {n}")
/// })
/// .spawn_local(&ex);
///
/// ex.run(async {
///     assert_eq!(producer.send(1).await?, "200 OK for 1");
///     assert_eq!(producer.send(2).await?, "200 OK for 2");
///     drop(producer); // closing every producer ends the consumer
///     assert_eq!(consumer.await?, 2);
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .await
/// # }).unwrap();
/// ```
#[must_use = "a consumer does nothing until it is spawned or used inline"]
pub struct Consumer<S, H> {
    state: S,
    handler: H,
    name: String,
    capacity: usize,
}

impl<S, F> Consumer<S, SyncHandler<F>> {
    /// A consumer that handles each item with a sync closure, which gets the
    /// consumer's state and the item and gives the reply.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let mut c = flowgate::Consumer::new(Vec::new(), |log: &mut Vec<u8>, b: u8| {
    ///     log.push(b);
    ///     "200 OK"
    /// })
    /// .inline();
    /// assert_eq!(c.send(1).await?, "200 OK");
    /// assert_eq!(c.close(), [1]);
    /// # Ok::<(), flowgate::SendError<u8>>(())
    /// # }).unwrap();
    /// ```
    pub fn new<T, R>(state: S, f: F) -> Self
    where
        F: FnMut(&mut S, T) -> R,
    {
        Consumer::with_handler(state, SyncHandler::new(f))
    }
}

impl<S, F> Consumer<S, AsyncHandler<F>> {
    /// A consumer that handles each item with an async closure. The closure
    /// gets the state and the item, may change the state, and returns the
    /// future of the reply. While the future waits (on a timer, a socket),
    /// the send waits too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let mut c = flowgate::Consumer::new_async(0u32, |count: &mut u32, n: u32| {
    ///     *count += 1;
    ///     async move {
    ///         smol::Timer::after(Duration::from_millis(1)).await;
    ///         n * 10
    ///     }
    /// })
    /// .inline();
    /// assert_eq!(c.send(4).await?, 40);
    /// assert_eq!(c.close(), 1);
    /// # Ok::<(), flowgate::SendError<u32>>(())
    /// # }).unwrap();
    /// ```
    pub fn new_async<T, Fut>(state: S, f: F) -> Self
    where
        F: FnMut(&mut S, T) -> Fut,
        Fut: Future,
    {
        Consumer::with_handler(state, AsyncHandler::new(f))
    }
}

impl<S, H> Consumer<S, H> {
    /// A consumer with a handler of your own type.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Consumer, SyncHandler};
    ///
    /// let c = Consumer::with_handler((), SyncHandler::new(|_: &mut (), x: u8| x));
    /// # drop(c);
    /// ```
    pub fn with_handler(state: S, handler: H) -> Self {
        Consumer {
            state,
            handler,
            name: "consumer".to_owned(),
            capacity: DEFAULT_CONSUMER_CAPACITY,
        }
    }

    /// Names the consumer. The name appears in errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let mut c = flowgate::Consumer::new((), |_: &mut (), _: u8| -> u8 { panic!("no") })
    ///     .name("picky")
    ///     .inline();
    /// let err = c.send(1).await.unwrap_err();
    /// assert_eq!(err.to_string(), "consumer `picky` panicked: no");
    /// # });
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets how many sends can wait for a task consumer. A pipelined chunk
    /// of sends counts once. The default is [`DEFAULT_CONSUMER_CAPACITY`];
    /// more than [`MAX_CONSUMER_CAPACITY`] is taken as that most, as the
    /// queue's room is made up front.
    ///
    /// Capacity 0 is an error, as for [`Pipeline::capacity`](crate::Pipeline::capacity):
    /// the consumer never starts, its handle gives
    /// [`Error::ZeroCapacity`], and every send gives its item back in
    /// [`SendError::Closed`](crate::SendError::Closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Consumer, Error, SendError};
    ///
    /// let ex = smol::LocalExecutor::new();
    /// let (mut p, _c) = Consumer::new((), |_: &mut (), x: u8| x).capacity(1).spawn_local(&ex);
    /// assert_eq!(futures_lite::future::block_on(ex.run(p.send(3)))?, 3);
    ///
    /// let (mut p, c) = Consumer::new((), |_: &mut (), x: u8| x).name("none").capacity(0).spawn_local(&ex);
    /// futures_lite::future::block_on(ex.run(async {
    ///     assert!(matches!(p.send(3).await, Err(SendError::Closed(3))));
    ///     let err = c.await.unwrap_err();
    ///     assert!(matches!(err, Error::ZeroCapacity { ref stage } if stage == "none"));
    /// }));
    /// # Ok::<(), flowgate::SendError<u8>>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.min(MAX_CONSUMER_CAPACITY);
        self
    }

    /// Gives a consumer that runs in the caller's task: each
    /// [`send`](InlineConsumer::send) runs the handler at once, with no
    /// queue and no task switch.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let mut c = flowgate::Consumer::new((), |_: &mut (), n: u32| n + 1).inline();
    /// assert_eq!(c.send(41).await?, 42);
    /// # Ok::<(), flowgate::SendError<u32>>(())
    /// # }).unwrap();
    /// ```
    pub fn inline(self) -> InlineConsumer<S, H> {
        InlineConsumer::new(self.state, self.handler, self.name)
    }
}

impl<S, H> Consumer<S, H>
where
    S: Send + 'static,
    H: Send + 'static,
{
    /// Starts the consumer as a task on `ex`. Gives a [`Producer`] to send
    /// to it, and a [`ConsumerHandle`] that resolves to its final state once
    /// every producer is gone or one of them has called
    /// [`close`](Producer::close).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::Executor::new();
    /// let (mut p, c) = flowgate::Consumer::new(0, |sum: &mut u32, x: u32| { *sum += x; *sum }).spawn(&ex);
    /// let total = futures_lite::future::block_on(ex.run(async move {
    ///     p.send(2).await.unwrap();
    ///     p.send(3).await.unwrap();
    ///     drop(p);
    ///     c.await
    /// }))?;
    /// assert_eq!(total, 5);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn spawn<T>(self, ex: &Executor<'_>) -> (Producer<T, H::Reply>, ConsumerHandle<S>)
    where
        T: Send + 'static,
        H: Handler<S, T>,
        H::Reply: Send + 'static,
        H::Future: Send,
    {
        self.start(|fut| ex.spawn(fut))
    }

    /// Starts the consumer as a task on a single-threaded `ex`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (mut p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x + 1).spawn_local(&ex);
    /// assert_eq!(futures_lite::future::block_on(ex.run(p.send(1)))?, 2);
    /// # Ok::<(), flowgate::SendError<u8>>(())
    /// ```
    pub fn spawn_local<T>(
        self,
        ex: &LocalExecutor<'_>,
    ) -> (Producer<T, H::Reply>, ConsumerHandle<S>)
    where
        T: Send + 'static,
        H: Handler<S, T>,
        H::Reply: Send + 'static,
        H::Future: Send,
    {
        self.start(|fut| ex.spawn(fut))
    }

    /// Starts the consumer as a task on smol's global executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x * 2).spawn_global();
    /// assert_eq!(smol::block_on(p.send(21))?, 42);
    /// # Ok::<(), flowgate::SendError<u8>>(())
    /// ```
    pub fn spawn_global<T>(self) -> (Producer<T, H::Reply>, ConsumerHandle<S>)
    where
        T: Send + 'static,
        H: Handler<S, T>,
        H::Reply: Send + 'static,
        H::Future: Send,
    {
        self.start(smol::spawn)
    }

    /// Gives a [`Producer`] and the consumer as one future, to be driven by
    /// whoever polls it: nothing is spawned, so it runs under any executor,
    /// or beside the producer in one `zip`. The future resolves to the final
    /// state once every producer is gone or one has called
    /// [`close`](Producer::close).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::future;
    ///
    /// let (mut producer, consumer) =
    ///     flowgate::Consumer::new(0u32, |n: &mut u32, x: u32| { *n += 1; x * 2 }).into_future();
    /// let (replies, count) = future::block_on(future::zip(
    ///     async move {
    ///         let a = producer.send(1).await.unwrap();
    ///         let b = producer.send(2).await.unwrap();
    ///         (a, b) // `producer` drops here, which ends the consumer
    ///     },
    ///     consumer,
    /// ));
    /// assert_eq!((replies, count?), ((2, 4), 2));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn into_future<T>(
        self,
    ) -> (
        Producer<T, H::Reply>,
        Pin<Box<dyn Future<Output = Result<S, Error>> + Send>>,
    )
    where
        T: Send + 'static,
        H: Handler<S, T>,
        H::Reply: Send + 'static,
        H::Future: Send,
    {
        let name: Arc<str> = self.name.into();
        if self.capacity == 0 {
            // A queue that takes nothing: closed from the start.
            let (requests, inbox) = async_channel::bounded(1);
            inbox.close();
            let err = Error::ZeroCapacity {
                stage: name.to_string(),
            };
            let refused = Box::pin(async move { Err(err) });
            return (Producer::new(requests, Doorbell::new(), name), refused);
        }
        let (requests, inbox) = async_channel::bounded(self.capacity);
        let bell = Doorbell::new();
        let inbox = Inbox {
            requests: inbox,
            bell: bell.clone(),
        };
        let consumer = Box::pin(consume(inbox, self.handler, self.state, Arc::clone(&name)));
        (Producer::new(requests, bell, name), consumer)
    }

    fn start<T>(
        self,
        spawn: impl FnOnce(
            Pin<Box<dyn Future<Output = Result<S, Error>> + Send>>,
        ) -> Task<Result<S, Error>>,
    ) -> (Producer<T, H::Reply>, ConsumerHandle<S>)
    where
        T: Send + 'static,
        H: Handler<S, T>,
        H::Reply: Send + 'static,
        H::Future: Send,
    {
        let (producer, consumer) = self.into_future();
        (
            producer,
            ConsumerHandle {
                task: Some(spawn(consumer)),
            },
        )
    }
}

impl<S, H> fmt::Debug for Consumer<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The consumer loop shared by task consumers: serve requests until every
/// producer has gone or closed the channel, then give the final state.
async fn consume<S, T, H>(
    inbox: Inbox<T, H::Reply>,
    mut handler: H,
    mut state: S,
    name: std::sync::Arc<str>,
) -> Result<S, Error>
where
    H: Handler<S, T>,
{
    let mut served = 0usize;
    while let Some(request) = inbox.recv().await {
        if let Err(message) = serve(&mut handler, &mut state, request).await {
            // `inbox` drops on return: later and queued sends get their
            // items back.
            return Err(Error::StagePanicked {
                stage: name.to_string(),
                message,
            });
        }
        served += 1;
        if served % 64 == 0 {
            futures_lite::future::yield_now().await;
        }
    }
    Ok(state)
}

/// A task consumer's handle: a future of its final state.
///
/// The consumer ends once every [`Producer`](crate::Producer) has been dropped, or one has
/// called [`close`](crate::Producer::close) and the sends already queued have been
/// answered. Its final state is then the handle's output, like a generator's
/// return value. If the handler panicked, the output is
/// [`Error::StagePanicked`].
///
/// Dropping the handle detaches the consumer: it goes on answering its
/// producers until they close.
///
/// # Examples
///
/// ```
/// let ex = smol::LocalExecutor::new();
/// let (producer, consumer) = flowgate::Consumer::new(7u8, |_: &mut u8, x: u8| x).spawn_local(&ex);
/// producer.close();
/// assert_eq!(futures_lite::future::block_on(ex.run(consumer))?, 7);
/// # Ok::<(), flowgate::Error>(())
/// ```
#[must_use = "the handle gives the consumer's final state"]
pub struct ConsumerHandle<S> {
    task: Option<Task<Result<S, Error>>>,
}

impl<S> Future for ConsumerHandle<S> {
    type Output = Result<S, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Polled again after it was done: there is nothing more to give.
        let Some(task) = self.task.as_mut() else {
            return Poll::Pending;
        };
        let result = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(result)
    }
}

impl<S> Drop for ConsumerHandle<S> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<S> fmt::Debug for ConsumerHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("done", &self.task.is_none())
            .finish()
    }
}
