//! The producer side of a task consumer: send an item, get its reply.

use std::fmt;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError as ChannelTrySendError};
use futures_lite::FutureExt;
use smol::Timer;

use crate::ack::pipelined::{Halves, pipelined};
use crate::ack::protocol::{Answer, Doorbell, Request, release, send_error};
use crate::error::{Error, SendError, SendTimeoutError, TrySendError};

/// Sends items to a task consumer and gets each item's reply, like
/// `r = consumer.send(n)` on a Python generator.
///
/// A producer is made by [`Consumer::spawn`](crate::Consumer::spawn) and its
/// siblings. Clone it to let several tasks share one consumer: each clone
/// has its own reply channel, so every caller gets its own replies and never
/// another caller's. When every producer is dropped, or one calls
/// [`close`](Producer::close), the consumer finishes the sends already
/// queued and ends.
///
/// [`send`](Producer::send) waits for each reply before the next send. To
/// keep many items in flight, use [`pipelined`](Producer::pipelined).
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (mut producer, _consumer) =
///     flowgate::Consumer::new((), |_: &mut (), n: u32| n * 2).spawn_local(&ex);
/// let mut other = producer.clone();
/// ex.run(async {
///     assert_eq!(producer.send(1).await?, 2);
///     assert_eq!(other.send(5).await?, 10);
///     Ok::<(), flowgate::SendError<u32>>(())
/// })
/// .await
/// # }).unwrap();
/// ```
pub struct Producer<T, R> {
    requests: Sender<Request<T, R>>,
    /// Wakes the consumer after a request is queued.
    bell: Doorbell,
    answers: Receiver<Answer<T, R>>,
    answer_to: Sender<Answer<T, R>>,
    /// Buffers that come back with each answer, reused for the next send.
    items: Vec<T>,
    replies: Vec<R>,
    /// Set while a send is between handing over its request and reading the
    /// answer. Still set at the next send means that send was dropped, and
    /// its answer may yet arrive: the next send uses a fresh answer channel.
    owed: bool,
    name: Arc<str>,
}

impl<T, R> Producer<T, R> {
    pub(crate) fn new(requests: Sender<Request<T, R>>, bell: Doorbell, name: Arc<str>) -> Self {
        let (answer_to, answers) = async_channel::bounded(1);
        Producer {
            requests,
            bell,
            answers,
            answer_to,
            items: Vec::new(),
            replies: Vec::new(),
            owed: false,
            name,
        }
    }

    /// Sends `item` and waits for the consumer's reply.
    ///
    /// Waits first for room in the consumer's queue: that wait is the
    /// backpressure. If the consumer has ended or was closed, the item comes
    /// back in [`SendError::Closed`]. If the consumer panics on this item,
    /// the error is [`SendError::Panicked`].
    ///
    /// Dropping the future before it is done gives up the item, as with any
    /// channel send: if it was already queued the consumer still handles it
    /// and its reply is discarded; if not, it is dropped. The producer stays
    /// usable, and a late reply is never taken for a later send's.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (mut p, _c) = flowgate::Consumer::new((), |_: &mut (), s: &str| s.len()).spawn_local(&ex);
    /// assert_eq!(ex.run(p.send("four")).await?, 4);
    /// # Ok::<(), flowgate::SendError<&str>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(&mut self, item: T) -> Result<R, SendError<T>> {
        let waiter = current_waker().await;
        let request = self.request(item, waiter.clone());
        match self.requests.try_send(request) {
            Ok(()) => {}
            Err(ChannelTrySendError::Closed(request)) => return Err(self.take_back(request)),
            Err(ChannelTrySendError::Full(request)) => {
                // The queue is full: wait for room, the backpressure.
                if let Err(async_channel::SendError(request)) = self.requests.send(request).await {
                    return Err(self.take_back(request));
                }
            }
        }
        self.bell.ring();
        self.await_answer(&waiter).await
    }

    /// Sends `item` if the consumer's queue has room now, then waits for the
    /// reply. If the queue is full the item comes back at once in
    /// [`TrySendError::Full`].
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (mut p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// assert_eq!(ex.run(p.try_send(9)).await?, 9);
    /// # Ok::<(), flowgate::TrySendError<u8>>(())
    /// # }).unwrap();
    /// ```
    pub async fn try_send(&mut self, item: T) -> Result<R, TrySendError<T>> {
        let waiter = current_waker().await;
        let request = self.request(item, waiter.clone());
        match self.requests.try_send(request) {
            Ok(()) => {
                self.bell.ring();
                Ok(self.await_answer(&waiter).await?)
            }
            Err(ChannelTrySendError::Full(request)) => match self.take_back(request) {
                SendError::Closed(item) => Err(TrySendError::Full(item)),
                other => Err(other.into()),
            },
            Err(ChannelTrySendError::Closed(request)) => Err(self.take_back(request).into()),
        }
    }

    /// Closes the consumer's queue. Sends already queued are still
    /// answered; later sends, from any clone, give their items back. The
    /// consumer then ends and its handle gives its final state.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (p, c) = flowgate::Consumer::new(0u8, |_: &mut u8, x: u8| x).spawn_local(&ex);
    /// assert!(p.close());
    /// assert!(p.is_closed());
    /// assert_eq!(futures_lite::future::block_on(ex.run(c))?, 0);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn close(&self) -> bool {
        let closed = self.requests.close();
        // The consumer may be asleep; it must see the close to end.
        self.bell.ring();
        closed
    }

    /// Whether the consumer's queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// assert!(!p.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// How many sends are waiting in the consumer's queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// assert_eq!(p.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether no send is waiting in the consumer's queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// assert!(p.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// How many sends the consumer's queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).capacity(8).spawn_local(&ex);
    /// assert_eq!(p.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.requests.capacity()
    }

    /// A sender that keeps up to `window` items in flight, with their
    /// replies read, in send order, from the [`Replies`](crate::Replies) beside it.
    ///
    /// Items go to the consumer in chunks, and replies come back in chunks,
    /// so throughput is not capped by round trips. Window 0 gives
    /// [`Error::ZeroWindow`]. The room for the window's chunks is made up
    /// front, so a window above 262,144 items (1,024 chunks of 256) is
    /// taken as 262,144: far more than any round trip needs.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), n: u64| n + 1).spawn_local(&ex);
    /// let (mut tx, replies) = p.pipelined(1024)?;
    /// let sum = ex.run(async move {
    ///     let send = async move {
    ///         for n in 0..10_000 {
    ///             tx.send(n).await.unwrap();
    ///         }
    ///         tx.close().await; // flush, and end the replies
    ///     };
    ///     let read = replies.fold(0u64, |sum, (_ticket, reply)| sum + reply.unwrap());
    ///     futures_lite::future::zip(send, read).await.1
    /// })
    /// .await;
    /// assert_eq!(sum, (1..=10_000).sum());
    /// # Ok::<(), flowgate::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn pipelined(&self, window: usize) -> Result<Halves<T, R>, Error> {
        pipelined(
            self.requests.clone(),
            self.bell.clone(),
            Arc::clone(&self.name),
            window,
        )
    }

    /// Builds the request for one item from the reusable buffers.
    fn request(&mut self, item: T, waiter: Waker) -> Request<T, R> {
        if self.owed {
            // A dropped send may still be answered on the old channel.
            let (answer_to, answers) = async_channel::bounded(1);
            (self.answer_to, self.answers) = (answer_to, answers);
        }
        let mut items = std::mem::take(&mut self.items);
        items.push(item);
        // From here until the answer is read, an answer is owed.
        self.owed = true;
        Request::new(
            items,
            std::mem::take(&mut self.replies),
            self.answer_to.clone(),
            Some(waiter),
        )
    }

    /// Takes the item back out of a request that was never handed over.
    fn take_back(&mut self, request: Request<T, R>) -> SendError<T> {
        self.owed = false;
        let (mut items, replies) = request.into_parts();
        let item = items.pop();
        (self.items, self.replies) = (items, replies);
        match item {
            Some(item) => SendError::Closed(item),
            None => SendError::Cancelled,
        }
    }

    /// Waits for the answer to the request just sent, whose request
    /// carries `waiter`.
    async fn await_answer(&mut self, waiter: &Waker) -> Result<R, SendError<T>> {
        // The consumer wakes `waiter` once the answer is in, so waiting
        // needs no listener on the channel. If this future is polled with
        // another waker, that wake-up would go astray: wait on the channel.
        let answers = &self.answers;
        let fast = std::future::poll_fn(|cx| match answers.try_recv() {
            Ok(answer) => Poll::Ready(Some(answer)),
            Err(_) if !waiter.will_wake(cx.waker()) => Poll::Ready(None),
            Err(_) => Poll::Pending,
        })
        .await;
        let answer = match fast {
            Some(answer) => Some(answer),
            None => self.answers.recv().await.ok(),
        };
        // The producer holds a sender of its own answer channel, so this
        // never sees it closed; every request answers, even from `Drop`.
        let Some(mut answer) = answer else {
            return Err(SendError::Cancelled);
        };
        self.owed = false;
        let reply = answer.replies.pop();
        let returned = answer.returned.pop();
        (self.items, self.replies) = (answer.returned, answer.replies);
        match (reply, returned, answer.failed.pop()) {
            (Some(reply), _, _) => Ok(reply),
            (None, Some(item), _) => Err(SendError::Closed(item)),
            (None, None, Some((_, failure))) => Err(send_error(failure, &self.name)),
            (None, None, None) => Err(send_error(answer.failure, &self.name)),
        }
    }
}

impl<T, R> Clone for Producer<T, R> {
    /// A new producer for the same consumer, with its own reply channel.
    fn clone(&self) -> Self {
        Producer::new(
            self.requests.clone(),
            self.bell.clone(),
            Arc::clone(&self.name),
        )
    }
}

impl<T, R> Drop for Producer<T, R> {
    fn drop(&mut self) {
        release(&mut self.requests, &self.bell);
    }
}

/// The waker of the task polling the caller.
async fn current_waker() -> Waker {
    std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await
}

impl<T, R> fmt::Debug for Producer<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("consumer", &self.name)
            .field("queued", &self.requests.len())
            .field("closed", &self.requests.is_closed())
            .finish()
    }
}

impl<T, R> Producer<T, R> {
    /// Sends `item` and waits for its reply, for at most `after` in all,
    /// like Python's `asyncio.wait_for(consumer.send(item), after)`.
    ///
    /// - If the queue has no room before the time runs out, the item comes
    ///   back in [`SendTimeoutError::Timeout`].
    /// - If the item was handed over but its reply is late, the error is
    ///   [`SendTimeoutError::Unanswered`]: the consumer still handles the
    ///   item, and its reply is discarded, never taken for a later send's.
    ///
    /// A zero `after` hands the item over only if the queue has room at
    /// once, and succeeds only if the reply is ready at once, as with
    /// `wait_for(x, 0)`. An `after` too long to represent never times out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowgate::{Consumer, SendTimeoutError};
    ///
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (mut p, _c) = Consumer::new_async((), |_: &mut (), ms: u64| async move {
    ///     smol::Timer::after(Duration::from_millis(ms)).await;
    ///     ms
    /// })
    /// .spawn_local(&ex);
    /// ex.run(async {
    ///     assert_eq!(p.send_timeout(1, Duration::from_secs(5)).await?, 1);
    ///     let late = p.send_timeout(2000, Duration::from_millis(10)).await;
    ///     assert!(matches!(late, Err(SendTimeoutError::Unanswered)));
    ///     Ok::<(), SendTimeoutError<u64>>(())
    /// })
    /// .await
    /// # }).unwrap();
    /// ```
    pub async fn send_timeout(
        &mut self,
        item: T,
        after: Duration,
    ) -> Result<R, SendTimeoutError<T>> {
        let mut expiry = Instant::now()
            .checked_add(after)
            .map_or_else(Timer::never, Timer::at);
        let waiter = current_waker().await;
        let request = self.request(item, waiter.clone());
        let request = match self.requests.try_send(request) {
            Ok(()) => None,
            Err(ChannelTrySendError::Closed(request)) => {
                return Err(self.take_back(request).into());
            }
            Err(ChannelTrySendError::Full(request)) => Some(request),
        };
        if let Some(request) = request {
            if after.is_zero() {
                return match self.take_back(request) {
                    SendError::Closed(item) => Err(SendTimeoutError::Timeout(item)),
                    other => Err(other.into()),
                };
            }
            let send = async { Some(self.requests.send(request).await) };
            let expired = async {
                (&mut expiry).await;
                None
            };
            match send.or(expired).await {
                Some(Ok(())) => {}
                Some(Err(async_channel::SendError(request))) => {
                    return Err(self.take_back(request).into());
                }
                None => {
                    // The dropped send dropped the request, which answered
                    // with its item at once.
                    self.owed = false;
                    let item = self
                        .answers
                        .try_recv()
                        .ok()
                        .and_then(|mut a| a.returned.pop());
                    return match item {
                        Some(item) => Err(SendTimeoutError::Timeout(item)),
                        None => Err(SendTimeoutError::Send(SendError::Cancelled)),
                    };
                }
            }
        }
        self.bell.ring();
        if after.is_zero() {
            return match futures_lite::future::poll_once(self.await_answer(&waiter)).await {
                Some(result) => result.map_err(Into::into),
                None => Err(SendTimeoutError::Unanswered),
            };
        }
        let answer = async { Some(self.await_answer(&waiter).await) };
        let expired = async {
            expiry.await;
            None
        };
        match answer.or(expired).await {
            Some(result) => result.map_err(Into::into),
            // `owed` stays set: the late answer goes to the old channel.
            None => Err(SendTimeoutError::Unanswered),
        }
    }
}
