//! The sources a pipeline starts from: an iterator or a stream, each with
//! the loop that drains it.

use std::pin::pin;

use futures_lite::future::poll_once;
use futures_lite::{FutureExt, Stream, StreamExt};

use crate::engine::hop::Outlet;
use crate::engine::run::Signal;
use crate::engine::stage_loop::Budget;
use crate::pipeline::builder::Pipeline;

/// Starts a pipeline whose source drains an iterator.
///
/// The iterator runs in the source stage's task, so it may be long or
/// endless: backpressure stops it from running ahead of the stages after it.
///
/// # Examples
///
/// ```
/// let evens: Vec<u32> = flowgate::from_iter(1..=6u32)
///     .filter(|x| x % 2 == 0)
///     .collect()
///     .run()?;
/// assert_eq!(evens, [2, 4, 6]);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_iter<I>(iter: I) -> Pipeline<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    let iter = iter.into_iter();
    Pipeline::source(move |out, run| async move {
        drain_iter(iter, out, run.root().shutdown_signal()).await;
        Ok(())
    })
}

/// Starts a pipeline whose source drains a [`Stream`].
///
/// Every item the stream has ready is taken before the source sends, so a
/// burst crosses the first hop as one chunk.
///
/// # Examples
///
/// ```
/// use futures_lite::stream;
///
/// let total = flowgate::from_stream(stream::iter(vec![1u64, 2, 3]))
///     .map(|x| x * 10)
///     .fold(0, |sum, x| sum + x)
///     .run()?;
/// assert_eq!(total, 60);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_stream<S>(stream: S) -> Pipeline<S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    Pipeline::source(move |out, run| async move {
        drain_stream(stream, out, run.root().shutdown_signal()).await;
        Ok(())
    })
}

/// A source that drains an iterator, until it ends or `shutdown` is raised.
async fn drain_iter<I: Iterator>(mut iter: I, out: Outlet<I::Item>, shutdown: &Signal) {
    let mut out = out.into_source();
    let mut budget = Budget::new();
    // `fill` stops short of a full chunk only when the iterator has ended.
    while !shutdown.is_raised() && out.fill(iter.by_ref()) {
        if out.flush().await.is_err() {
            return;
        }
        if budget.spend(out.limit()) {
            budget.yield_if_spent().await;
        }
    }
    let _ = out.flush().await;
}

/// A source that drains a stream, taking every item it has ready before it
/// flushes, until the stream ends or `shutdown` is raised.
async fn drain_stream<S: Stream>(stream: S, out: Outlet<S::Item>, shutdown: &Signal) {
    let mut out = out.into_source();
    let mut stream = pin!(stream);
    let mut budget = Budget::new();
    loop {
        let stop = async {
            shutdown.wait().await;
            None
        };
        // `None` once shutdown is asked for, `Some(None)` at the stream's end.
        let Some(Some(first)) = async { Some(stream.next().await) }.or(stop).await else {
            break;
        };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if out.push(item) && out.flush().await.is_err() {
                return;
            }
            if budget.spend(1) || shutdown.is_raised() {
                break;
            }
            match poll_once(stream.next()).await {
                Some(Some(item)) => next = Some(item),
                Some(None) => {
                    let _ = out.flush().await;
                    return;
                }
                None => {}
            }
        }
        if out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    let _ = out.flush().await;
}
