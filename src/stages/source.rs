//! The sources a pipeline starts from: an iterator or a stream, each with
//! the loop that drains it, with or without an acknowledgement per item.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::TryRecvError;
use futures_lite::future::poll_once;
use futures_lite::{FutureExt, Stream, StreamExt};

use crate::ack::fate::{Acknowledge, Group};
use crate::engine::feed::{Feed, Pull, as_segment, keep_spare};
use crate::engine::hop::{Chunk, Outlet};
use crate::engine::run::{RunState, Signal};
use crate::engine::stage_loop::Budget;
use crate::engine::stats::StageStats;
use crate::error::{Error, StageError};
use crate::limits::DEFAULT_CHUNK_LIMIT;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::StageTasks;
use crate::pipeline::head::{Fusable, StageSetup};

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
    Pipeline::fusable_source(Box::new(IterSource {
        iter: iter.into_iter(),
    }))
}

/// The source of [`from_iter`], not yet started: it runs as a task of its
/// own, or fused, as the first segment of the input of the stage after it.
struct IterSource<I> {
    iter: I,
}

impl<I> Fusable<I::Item> for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    fn fuse(self: Box<Self>, stats: Arc<StageStats>, run: &Arc<RunState>) -> Feed<I::Item> {
        let pull = IterPull {
            iter: Some(self.iter),
            stats: Arc::clone(&stats),
            run: Arc::clone(run),
            root: None,
            spare: Chunk::default(),
        };
        Feed::fused(Box::new(pull), Vec::new(), stats)
    }

    fn start(self: Box<Self>, setup: StageSetup<I::Item>) -> StageTasks {
        let iter = self.iter;
        StageTasks::single(Box::pin(async move {
            drain_iter(iter, Plain, setup.out, setup.run.root().shutdown_signal()).await;
            Ok(())
        }))
    }
}

/// The source of [`from_iter`], fused: each pull takes a chunk of items
/// from the iterator, until it ends or the run is shut down.
struct IterPull<I: Iterator> {
    /// `None` once the input has ended.
    iter: Option<I>,
    stats: Arc<StageStats>,
    run: Arc<RunState>,
    /// The run's root, found at the first pull, once the graph is whole (a
    /// merge may join this run to another).
    root: Option<Arc<RunState>>,
    /// An emptied chunk, kept for its buffers.
    spare: Chunk<I::Item>,
}

impl<I> Pull<I::Item> for IterPull<I>
where
    I: Iterator + Send,
    I::Item: Send,
{
    fn try_pull(&mut self) -> Result<Chunk<I::Item>, TryRecvError> {
        let root = self.root.get_or_insert_with(|| self.run.root());
        if root.shutdown_signal().is_raised() {
            self.iter = None;
        }
        let Some(iter) = &mut self.iter else {
            return Err(TryRecvError::Closed);
        };
        let mut chunk = std::mem::take(&mut self.spare);
        as_segment(&self.stats, || {
            chunk.items.extend(iter.by_ref().take(DEFAULT_CHUNK_LIMIT));
        });
        let n = chunk.items.len();
        if n == 0 {
            self.iter = None;
            return Err(TryRecvError::Closed);
        }
        self.stats.count_received(n);
        self.stats.count_emitted(n);
        Ok(chunk)
    }

    fn poll_pull(&mut self, _: &mut Context<'_>) -> Poll<Option<Chunk<I::Item>>> {
        Poll::Ready(self.try_pull().ok())
    }

    fn recycle(&mut self, chunk: Chunk<I::Item>) {
        keep_spare(&mut self.spare, chunk);
    }

    fn release(&mut self) {
        self.stats.mark_released();
        self.iter = None;
    }
}

/// Starts a pipeline whose source drains an iterator of items, each with
/// its acknowledgement: a callback (any [`Acknowledge`]) that is told the
/// item's [`Outcome`](crate::Outcome) exactly once, when its fate is final.
///
/// The outcome follows the item through every stage, whatever they do
/// with it: `Delivered` once every output made from it has been taken by
/// the sink, `Filtered`, `Skipped`, `DeadLettered` or `Failed` if a stage
/// ended it so, and `Dropped` if the run stopped first. The
/// acknowledgements of the items the source hands on in one chunk are told
/// together, once the last of them is final. The counts match the run's
/// [`Report`](crate::Report): in a pipeline where each item makes at most
/// one output, as many items are `Delivered` as the report says were
/// delivered, and so on. An item batched by [`chunks`](Pipeline::chunks)
/// ends as its batch does.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use flowgate::Outcome;
///
/// let (tx, rx) = mpsc::channel();
/// let jobs = ["7", "x", "9"].into_iter().map(move |s| {
///     let tx = tx.clone();
///     (s, move |outcome: Outcome| tx.send((s, outcome)).unwrap())
/// });
/// let sum: u32 = flowgate::from_iter_acked(jobs)
///     .filter_map(|s| s.parse::<u32>().ok())
///     .fold(0, |sum, n| sum + n)
///     .run()?;
/// assert_eq!(sum, 16);
/// let mut told: Vec<_> = rx.iter().collect();
/// told.sort_by_key(|(s, _)| *s);
/// assert_eq!(
///     told,
///     [("7", Outcome::Delivered), ("9", Outcome::Delivered), ("x", Outcome::Filtered)]
/// );
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_iter_acked<I, T, A>(iter: I) -> Pipeline<T>
where
    I: IntoIterator<Item = (T, A)>,
    I::IntoIter: Send + 'static,
    T: Send + 'static,
    A: Acknowledge,
{
    let iter = Acked {
        inner: iter.into_iter(),
        acks: Vec::new(),
    };
    Pipeline::source(move |out, run| async move {
        drain_iter(iter, WithAcks, out, run.root().shutdown_signal()).await;
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
        let stream = Box::pin(stream);
        drain_stream(stream, Plain, out, run.root().shutdown_signal()).await;
        Ok(())
    })
}

/// Starts a pipeline whose source drains a [`Stream`] of items, each with
/// its acknowledgement, told the item's [`Outcome`](crate::Outcome)
/// exactly once, as with [`from_iter_acked`]. This is how a source that
/// reads from a broker (a queue, a log) learns when it may acknowledge an
/// entry there.
///
/// # Examples
///
/// ```
/// use futures_lite::stream;
/// use flowgate::Outcome;
///
/// let (tx, rx) = async_channel::unbounded();
/// let entries = stream::iter((1..=3u64).map(move |id| {
///     let tx = tx.clone();
///     (id, move |outcome: Outcome| {
///         if outcome.is_final_success() {
///             tx.try_send(id).unwrap(); // acknowledge `id` at the broker
///         }
///     })
/// }));
/// let n = flowgate::from_stream_acked(entries).map(|id| id * 2).count().run()?;
/// assert_eq!(n, 3);
/// let mut acked: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
/// acked.sort();
/// assert_eq!(acked, [1, 2, 3]);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_stream_acked<S, T, A>(stream: S) -> Pipeline<T>
where
    S: Stream<Item = (T, A)> + Send + 'static,
    T: Send + 'static,
    A: Acknowledge,
{
    let stream = Acked {
        inner: Box::pin(stream),
        acks: Vec::new(),
    };
    Pipeline::source(move |out, run| async move {
        drain_stream(stream, WithAcks, out, run.root().shutdown_signal()).await;
        Ok(())
    })
}

/// Starts a pipeline whose source reads its items in chunks, each item
/// with its acknowledgement, told the item's [`Outcome`](crate::Outcome)
/// exactly once, as with [`from_iter_acked`].
///
/// `read` is called with how many items the pipeline's first hop has room
/// for now (at least 1, at most one chunk), and gives at most that many:
/// so a source that reads from a broker asks it for as many entries as the
/// pipeline can take, and a slow pipeline reads less. The source waits for
/// room before it calls `read`. `read` gives `Ok(Some(items))` with the
/// items it read, which may be none (a read that timed out, say),
/// `Ok(None)` once there is nothing more to read, or an error, which fails
/// the run with [`Error::Stage`](crate::Error::Stage) naming the source.
/// Items beyond the room are not lost: they wait in the source for room.
///
/// A shutdown stops the source before its next read: a read in progress
/// finishes, and its items go through the pipeline, so that a broker's
/// entries are never read and then left. Keep each read short (a broker's
/// blocking read with a timeout of a second, say) so that a shutdown is
/// prompt. A cancel drops the read in progress.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use flowgate::Outcome;
///
/// let (acked_tx, acked) = async_channel::unbounded();
/// let largest = Arc::new(AtomicUsize::new(0));
/// let largest_read = Arc::clone(&largest);
/// let mut next = 0u32;
/// // A broker with ten entries, read as many at a time as fit.
/// let pipeline = flowgate::from_reads_acked(move |room: usize| {
///     largest_read.fetch_max(room, Ordering::Relaxed);
///     let end = 10u32.min(next + room as u32);
///     let batch: Vec<_> = (next..end)
///         .map(|id| {
///             let acked = acked_tx.clone();
///             (id, move |outcome: Outcome| {
///                 if outcome.is_final_success() {
///                     acked.try_send(id).unwrap(); // acknowledge `id`
///                 }
///             })
///         })
///         .collect();
///     next = end;
///     async move { Ok::<_, std::io::Error>((!batch.is_empty()).then_some(batch)) }
/// });
/// let sum = pipeline.capacity(4).map(|id| id * 2).fold(0, |s, x| s + x).run()?;
/// assert_eq!(sum, 90);
/// assert_eq!(acked.len(), 10);
/// // Never more at a time than the first hop holds.
/// assert!(largest.load(Ordering::Relaxed) <= 4);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn from_reads_acked<F, Fut, T, A, E>(mut read: F) -> Pipeline<T>
where
    F: FnMut(usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<Vec<(T, A)>>, E>> + Send,
    T: Send + 'static,
    A: Acknowledge,
    E: StageError,
{
    Pipeline::source(move |out, run| async move {
        let root = run.root();
        let shutdown = root.shutdown_signal();
        let mut out = out.into_source();
        let mut acks = Vec::new();
        let mut budget = Budget::new();
        while !shutdown.is_raised() {
            let stop = async {
                shutdown.wait().await;
                None
            };
            // `None` once shutdown is asked for, `Some(Err)` once the hop
            // is closed.
            let Some(Ok(room)) = async { Some(out.wait_room().await) }.or(stop).await else {
                break;
            };
            let read = {
                // Waiting for the read is waiting for input, not work.
                let _waiting = out.stats().waiting_to_receive();
                read(room).await
            };
            let batch = match read {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(err) => {
                    return Err(Error::Stage {
                        stage: out.stats().name().to_owned(),
                        source: err.into(),
                    });
                }
            };
            let n = batch.len();
            for (item, ack) in batch {
                acks.push(ack);
                if out.push(item) {
                    seal_acks(&mut acks, &mut out);
                    if out.flush().await.is_err() {
                        return Ok(());
                    }
                }
            }
            seal_acks(&mut acks, &mut out);
            if out.flush().await.is_err() {
                return Ok(());
            }
            if budget.spend(n.max(1)) {
                budget.yield_if_spent().await;
            }
        }
        Ok(())
    })
}

/// Tags the items last pushed into `out` with `acks`, one each.
fn seal_acks<T, A: Acknowledge>(acks: &mut Vec<A>, out: &mut Outlet<T>) {
    if !acks.is_empty() {
        let n = acks.len();
        out.tag_last_run(n, Group::acknowledged_run(std::mem::take(acks)));
    }
}

/// Gives the items a source of type `I` put into its outlet since the last
/// call their acknowledgements, if they have any; called before each
/// flush.
trait Seal<I, T> {
    fn seal(&mut self, source: &mut I, out: &mut Outlet<T>);
}

/// The seal of a source of items without acknowledgements: nothing to do,
/// and the source is drained as it is, so that `Vec::extend` sees its
/// exact length.
struct Plain;

impl<I, T> Seal<I, T> for Plain {
    #[inline]
    fn seal(&mut self, _: &mut I, _: &mut Outlet<T>) {}
}

/// The seal of an [`Acked`] source.
struct WithAcks;

impl<I, T, A: Acknowledge> Seal<Acked<I, A>, T> for WithAcks {
    fn seal(&mut self, source: &mut Acked<I, A>, out: &mut Outlet<T>) {
        seal_acks(&mut source.acks, out);
    }
}

/// A source of items with acknowledgements: it gives the items, and keeps
/// the acknowledgements of those given since the last seal.
struct Acked<I, A> {
    inner: I,
    acks: Vec<A>,
}

// The acknowledgements are never pinned: they are only moved out, whole.
impl<I: Unpin, A> Unpin for Acked<I, A> {}

impl<I, T, A> Iterator for Acked<I, A>
where
    I: Iterator<Item = (T, A)>,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let (item, ack) = self.inner.next()?;
        self.acks.push(ack);
        Some(item)
    }
}

impl<S, T, A> Stream for Acked<Pin<Box<S>>, A>
where
    S: Stream<Item = (T, A)>,
{
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some((item, ack))) => {
                this.acks.push(ack);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A source that drains an iterator, until it ends or `shutdown` is raised.
async fn drain_iter<I, Z>(mut iter: I, mut seal: Z, out: Outlet<I::Item>, shutdown: &Signal)
where
    I: Iterator,
    Z: Seal<I, I::Item>,
{
    let mut out = out.into_source();
    let mut budget = Budget::new();
    // `fill` stops short of a full chunk only when the iterator has ended.
    while !shutdown.is_raised() && out.fill(iter.by_ref()) {
        seal.seal(&mut iter, &mut out);
        if out.flush().await.is_err() {
            return;
        }
        if budget.spend(out.limit()) {
            budget.yield_if_spent().await;
        }
    }
    seal.seal(&mut iter, &mut out);
    let _ = out.flush().await;
}

/// A source that drains a stream, taking every item it has ready before it
/// flushes, until the stream ends or `shutdown` is raised.
async fn drain_stream<S, Z>(mut stream: S, mut seal: Z, out: Outlet<S::Item>, shutdown: &Signal)
where
    S: Stream + Unpin,
    Z: Seal<S, S::Item>,
{
    let mut out = out.into_source();
    let mut budget = Budget::new();
    loop {
        let stop = async {
            shutdown.wait().await;
            None
        };
        // `None` once shutdown is asked for, `Some(None)` at the stream's end.
        // Waiting for the stream is waiting for input, not work.
        let first = {
            let _waiting = out.stats().waiting_to_receive();
            async { Some(stream.next().await) }.or(stop).await
        };
        let Some(Some(first)) = first else {
            break;
        };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if out.push(item) {
                seal.seal(&mut stream, &mut out);
                if out.flush().await.is_err() {
                    return;
                }
            }
            if budget.spend(1) || shutdown.is_raised() {
                break;
            }
            match poll_once(stream.next()).await {
                Some(Some(item)) => next = Some(item),
                Some(None) => {
                    seal.seal(&mut stream, &mut out);
                    let _ = out.flush().await;
                    return;
                }
                None => {}
            }
        }
        seal.seal(&mut stream, &mut out);
        if out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    seal.seal(&mut stream, &mut out);
    let _ = out.flush().await;
}
