//! The sources a pipeline starts from: an iterator or a stream.

use futures_lite::Stream;

use crate::{stage, Pipeline};

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
    Pipeline::source(move |out, ctx| async move {
        stage::from_iter(iter, out, &ctx.root().shutdown).await;
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
    Pipeline::source(move |out, ctx| async move {
        stage::from_stream(stream, out, &ctx.root().shutdown).await;
        Ok(())
    })
}
