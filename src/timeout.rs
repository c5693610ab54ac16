//! Sends with a time limit, like `asyncio.wait_for` around a send.

use std::fmt;
use std::time::{Duration, Instant};

use async_channel::TrySendError as ChannelTrySendError;
use futures_lite::FutureExt;
use smol::Timer;

use crate::producer::current_waker;
use crate::{Producer, SendError};

/// Why [`Producer::send_timeout`] gave no reply.
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
                return Err(self.take_back(request).into())
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
                    return Err(self.take_back(request).into())
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
