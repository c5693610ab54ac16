//! The work a consumer does on each item.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_lite::FutureExt;

use crate::error::panic_message;

/// The work a consumer does on each item: it may change the consumer's
/// state, and it gives a reply.
///
/// [`Consumer::new`](crate::Consumer::new) and [`Consumer::new_async`](crate::Consumer::new_async) make handlers from
/// closures. Implement the trait yourself to give a consumer a named type.
///
/// # Examples
///
/// ```
/// use flowgate::{Consumer, Handler};
///
/// /// Replies with a running total.
/// struct Total;
///
/// impl Handler<u64, u64> for Total {
///     type Reply = u64;
///     type Future = std::future::Ready<u64>;
///
///     fn call(&mut self, total: &mut u64, item: u64) -> Self::Future {
///         *total += item;
///         std::future::ready(*total)
///     }
/// }
///
/// # futures_lite::future::block_on(async {
/// let mut c = Consumer::with_handler(0, Total).inline();
/// assert_eq!(c.send(5).await?, 5);
/// assert_eq!(c.send(2).await?, 7);
/// assert_eq!(c.close(), 7);
/// # Ok::<(), flowgate::SendError<u64>>(())
/// # }).unwrap();
/// ```
pub trait Handler<S, T> {
    /// The reply to each item.
    type Reply;
    /// The future of the reply.
    type Future: Future<Output = Self::Reply>;

    /// Handles one item. The state can change before the future is made;
    /// the future itself cannot borrow the state.
    fn call(&mut self, state: &mut S, item: T) -> Self::Future;

    /// Handles one item and gives the reply at once, if this handler knows
    /// it needs no wait; otherwise gives the future of the reply, as
    /// [`call`](Handler::call) does. Consumers use it to answer a run of
    /// items in one tight loop. The default always gives the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Handler, SyncHandler};
    ///
    /// let mut h = SyncHandler::new(|_: &mut (), x: u8| x + 1);
    /// assert!(matches!(h.call_now(&mut (), 1), Ok(2)));
    /// ```
    fn call_now(&mut self, state: &mut S, item: T) -> Result<Self::Reply, Self::Future> {
        Err(self.call(state, item))
    }
}

/// A [`Handler`] made from a sync closure by [`Consumer::new`](crate::Consumer::new).
///
/// # Examples
///
/// ```
/// use flowgate::{Handler, SyncHandler};
///
/// let mut h = SyncHandler::new(|seen: &mut u32, item: &str| { *seen += 1; item.len() });
/// let mut seen = 0;
/// assert_eq!(futures_lite::future::block_on(h.call(&mut seen, "abc")), 3);
/// assert_eq!(seen, 1);
/// ```
#[derive(Clone)]
pub struct SyncHandler<F>(F);

impl<F> fmt::Debug for SyncHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncHandler").finish_non_exhaustive()
    }
}

impl<F> SyncHandler<F> {
    /// Wraps `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = flowgate::SyncHandler::new(|_: &mut (), x: u8| x);
    /// # drop(h);
    /// ```
    pub fn new(f: F) -> Self {
        SyncHandler(f)
    }
}

impl<S, T, R, F> Handler<S, T> for SyncHandler<F>
where
    F: FnMut(&mut S, T) -> R,
{
    type Reply = R;
    type Future = std::future::Ready<R>;

    #[inline]
    fn call(&mut self, state: &mut S, item: T) -> Self::Future {
        std::future::ready((self.0)(state, item))
    }

    #[inline]
    fn call_now(&mut self, state: &mut S, item: T) -> Result<R, Self::Future> {
        Ok((self.0)(state, item))
    }
}

/// A [`Handler`] made from a closure returning a future, by
/// [`Consumer::new_async`](crate::Consumer::new_async).
///
/// # Examples
///
/// ```
/// use flowgate::{AsyncHandler, Handler};
///
/// let mut h = AsyncHandler::new(|_: &mut (), x: u8| async move { x * 2 });
/// assert_eq!(futures_lite::future::block_on(h.call(&mut (), 4)), 8);
/// ```
#[derive(Clone)]
pub struct AsyncHandler<F>(F);

impl<F> fmt::Debug for AsyncHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncHandler").finish_non_exhaustive()
    }
}

impl<F> AsyncHandler<F> {
    /// Wraps `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = flowgate::AsyncHandler::new(|_: &mut (), x: u8| async move { x });
    /// # drop(h);
    /// ```
    pub fn new(f: F) -> Self {
        AsyncHandler(f)
    }
}

impl<S, T, Fut, F> Handler<S, T> for AsyncHandler<F>
where
    F: FnMut(&mut S, T) -> Fut,
    Fut: Future,
{
    type Reply = Fut::Output;
    type Future = Fut;

    #[inline]
    fn call(&mut self, state: &mut S, item: T) -> Fut {
        (self.0)(state, item)
    }
}

/// Runs `handler` on one item, turning a panic into its message.
pub(crate) async fn call<S, T, H: Handler<S, T>>(
    handler: &mut H,
    state: &mut S,
    item: T,
) -> Result<H::Reply, String> {
    let now = std::panic::catch_unwind(AssertUnwindSafe(|| handler.call_now(state, item)))
        .map_err(panic_message)?;
    match now {
        Ok(reply) => Ok(reply),
        Err(reply) => AssertUnwindSafe(reply)
            .catch_unwind()
            .await
            .map_err(panic_message),
    }
}
