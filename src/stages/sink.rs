//! The sinks that end a pipeline and make it a [`Job`], each with its work
//! on a chunk.

use std::future::Future;
use std::sync::Arc;

use crate::ack::fate::Fate;
use crate::engine::drive::{SinkFuture, stopped};
use crate::engine::feed::{Feed, run_fed};
use crate::engine::hop::Chunk;
use crate::engine::stage_loop::Work;
use crate::engine::stats::StageStats;
use crate::error::{Error, StageError, chain};
use crate::job::run::Job;
use crate::job::stream::PipelineStream;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::Graph;

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Ends the pipeline in a sink that calls `f` on every item.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let total = Arc::new(AtomicU64::new(0));
    /// let sum = Arc::clone(&total);
    /// flowgate::from_iter(1..=4u64)
    ///     .for_each(move |x| { sum.fetch_add(x, Ordering::Relaxed); })
    ///     .run()?;
    /// assert_eq!(total.load(Ordering::Relaxed), 10);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn for_each<F>(self, mut f: F) -> Job<()>
    where
        F: FnMut(T) + Send + 'static,
    {
        self.fold_chunks("for_each", (), move |(), items| items.for_each(&mut f))
    }

    /// Ends the pipeline in a sink that awaits `f` on every item, one at a
    /// time, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = async_channel::bounded(8);
    /// flowgate::from_iter(["a", "b"])
    ///     .for_each_async(move |x| {
    ///         let tx = tx.clone();
    ///         async move { tx.send(x).await.unwrap() }
    ///     })
    ///     .run()?;
    /// assert_eq!((rx.try_recv(), rx.try_recv()), (Ok("a"), Ok("b")));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn for_each_async<Fut, F>(self, mut f: F) -> Job<()>
    where
        Fut: Future<Output = ()> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        // A call that cannot fail: the fallible sink's work, never failing.
        let f = move |item| {
            let call = f(item);
            async move {
                call.await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        self.sink("for_each_async", move |input, stats| async move {
            run_fed(input, &mut TryForEach { stats, f }).await
        })
    }

    /// Ends the pipeline in a sink that calls `f` on every item, like
    /// `Iterator::try_for_each`. An error from `f` fails the run with
    /// [`Error::Stage`], naming this sink, as a failed stage does: the item
    /// counts as failed, the items after it are dropped, and a source with
    /// acknowledgements is told so.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// let mut out = Vec::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// flowgate::from_iter(["a", "b"])
    ///     .try_for_each(move |line| tx.send(line))
    ///     .run()?;
    /// for line in rx.try_iter() {
    ///     writeln!(out, "{line}")?;
    /// }
    /// assert_eq!(out, b"a\nb\n");
    ///
    /// let err = flowgate::from_iter(["1", "x"])
    ///     .try_for_each(|s| s.parse::<u8>().map(drop))
    ///     .run()
    ///     .unwrap_err();
    /// assert!(matches!(err, flowgate::Error::Stage { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_for_each<F, E>(self, mut f: F) -> Job<()>
    where
        F: FnMut(T) -> Result<(), E> + Send + 'static,
        E: StageError,
    {
        self.sink("try_for_each", move |input, stats| async move {
            let f = move |item| std::future::ready(f(item));
            run_fed(input, &mut TryForEach { stats, f }).await
        })
    }

    /// Ends the pipeline in a sink that awaits `f` on every item, one at a
    /// time, in order. An error from `f` fails the run with
    /// [`Error::Stage`], as with [`try_for_each`](Pipeline::try_for_each).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = async_channel::bounded(8);
    /// flowgate::from_iter([1u8, 2])
    ///     .try_for_each_async(move |x| {
    ///         let tx = tx.clone();
    ///         async move { tx.send(x).await }
    ///     })
    ///     .run()?;
    /// assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_for_each_async<Fut, F, E>(self, f: F) -> Job<()>
    where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
        E: StageError,
    {
        self.sink("try_for_each_async", move |input, stats| async move {
            run_fed(input, &mut TryForEach { stats, f }).await
        })
    }

    /// Ends the pipeline in a sink that awaits `f` on each chunk of items
    /// as it arrives: the items that crossed the last hop together, in
    /// order, so that a sink that writes to a database or a broker makes
    /// one round trip per chunk, as large as the pipeline's flow makes it.
    /// The items of a chunk count as delivered once `f` gives `Ok`.
    ///
    /// An error from `f` fails the run with [`Error::Stage`], naming this
    /// sink; the items of the failed chunk and those after it are dropped,
    /// and a source with acknowledgements is told so.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = async_channel::unbounded();
    /// flowgate::from_iter(0..1000u32)
    ///     .try_for_each_chunk(move |chunk: Vec<u32>| {
    ///         let tx = tx.clone();
    ///         // One write per chunk, of every item in it.
    ///         async move { tx.send(chunk).await }
    ///     })
    ///     .run()?;
    /// let written: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).flatten().collect();
    /// assert_eq!(written, (0..1000).collect::<Vec<_>>());
    ///
    /// let err = flowgate::from_iter([1u8])
    ///     .try_for_each_chunk(|_| async { Err(std::io::Error::other("disk full")) })
    ///     .run()
    ///     .unwrap_err();
    /// let flowgate::Error::Stage { source, .. } = err else { panic!("{err}") };
    /// assert_eq!(source.to_string(), "disk full");
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_for_each_chunk<Fut, F, E>(self, f: F) -> Job<()>
    where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        E: StageError,
    {
        self.sink("try_for_each_chunk", move |input, stats| async move {
            run_fed(input, &mut TryForEachChunk { stats, f }).await
        })
    }

    /// Ends the pipeline in a sink that folds every item into an
    /// accumulator, and gives the final accumulator.
    ///
    /// # Examples
    ///
    /// ```
    /// let product = flowgate::from_iter(1..=5u64).fold(1, |acc, x| acc * x).run()?;
    /// assert_eq!(product, 120);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn fold<B, F>(self, init: B, mut f: F) -> Job<B>
    where
        B: Send + 'static,
        F: FnMut(B, T) -> B + Send + 'static,
    {
        self.fold_chunks("fold", init, move |acc, items| items.fold(acc, &mut f))
    }

    /// Ends the pipeline in a sink that collects every item, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::BTreeSet;
    ///
    /// let set: BTreeSet<u8> = flowgate::from_iter([3u8, 1, 3, 2]).collect().run()?;
    /// assert_eq!(set.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn collect<C>(self) -> Job<C>
    where
        C: Default + Extend<T> + Send + 'static,
    {
        self.fold_chunks("collect", C::default(), |mut all, items| {
            all.extend(items);
            all
        })
    }

    /// Ends the pipeline in a sink that counts the items.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = flowgate::from_iter(0..1000u32).filter(|x| x % 7 == 0).count().run()?;
    /// assert_eq!(n, 143);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn count(self) -> Job<usize> {
        self.fold_chunks("count", 0, |n, items| n + items.len())
    }

    /// Ends the pipeline in a [`Stream`](futures_lite::Stream) of its output, which drives every
    /// stage itself as it is polled: nothing is spawned.
    ///
    /// Items come as `Ok`, in order. If a stage fails, the stream gives one
    /// `Err` after the items that got through, then ends; a stream that
    /// simply ends means the whole input was processed. Dropping the stream
    /// stops the pipeline.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// # smol::block_on(async {
    /// let mut out = flowgate::from_iter(1..=3u32).map(|x| x * x).into_stream();
    /// let mut squares = Vec::new();
    /// while let Some(item) = out.next().await {
    ///     squares.push(item?);
    /// }
    /// assert_eq!(squares, [1, 4, 9]);
    /// # Ok::<(), flowgate::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn into_stream(self) -> PipelineStream<T> {
        let (graph, inlet) = self.wire();
        PipelineStream::new(graph, inlet)
    }

    /// Ends the pipeline in a sink that folds whole chunks.
    fn fold_chunks<B, F>(self, kind: &'static str, init: B, f: F) -> Job<B>
    where
        B: Send + 'static,
        F: FnMut(B, std::vec::Drain<'_, T>) -> B + Send + 'static,
    {
        self.sink(kind, move |input, stats| async move {
            let mut fold = FoldChunks {
                stats,
                acc: Some(init),
                f,
            };
            run_fed(input, &mut fold).await?;
            // The accumulator is only taken here, after the last chunk.
            fold.acc.take().ok_or_else(stopped)
        })
    }

    /// Ends the pipeline in the sink that `make` builds, on an input that
    /// may run fused segments.
    pub(crate) fn sink<O, F, Fut>(self, kind: &'static str, make: F) -> Job<O>
    where
        O: Send + 'static,
        F: FnOnce(Feed<T>, Arc<StageStats>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let (graph, feed) = self.wire_feed();
        sink_on(graph, feed, kind, make)
    }

    /// Ends the pipeline in the sink that `make` builds, on a hop: a sink
    /// that must outlive a panic of the stages before it, as a service's
    /// replies must, runs none of them in its task.
    pub(crate) fn sink_hop<O, F, Fut>(self, kind: &'static str, make: F) -> Job<O>
    where
        O: Send + 'static,
        F: FnOnce(Feed<T>, Arc<StageStats>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let (graph, inlet) = self.wire();
        sink_on(graph, Feed::hop(inlet), kind, make)
    }
}

/// The job of `graph`'s stages and the sink that `make` builds on `feed`.
fn sink_on<T, O, F, Fut>(graph: Graph, mut feed: Feed<T>, kind: &'static str, make: F) -> Job<O>
where
    T: Send + 'static,
    O: Send + 'static,
    F: FnOnce(Feed<T>, Arc<StageStats>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<O, Error>> + Send + 'static,
{
    let name = graph.name_for(kind);
    let inputs = vec![feed.input_hop()];
    let segments = feed.segments();
    let start = Box::new(move |stats: Arc<StageStats>| {
        feed.attach(&stats);
        Box::pin(make(feed, stats)) as SinkFuture<O>
    });
    Job::new(graph, name, kind, (inputs, segments), start)
}

/// The work of a sink that folds every chunk into an accumulator.
struct FoldChunks<B, F> {
    stats: Arc<StageStats>,
    /// Always `Some` between chunks.
    acc: Option<B>,
    f: F,
}

impl<I, B, F> Work<Chunk<I>> for FoldChunks<B, F>
where
    F: FnMut(B, std::vec::Drain<'_, I>) -> B,
{
    /// Every chunk: folding never waits. The items are delivered once the
    /// chunk is folded.
    #[inline]
    fn chunk_now(&mut self, chunk: &mut Chunk<I>) -> Result<bool, Error> {
        let n = chunk.items.len();
        if let Some(acc) = self.acc.take() {
            self.acc = Some((self.f)(acc, chunk.items.drain(..)));
        }
        if chunk.is_tagged() {
            chunk.resolve_all(Fate::Delivered);
        }
        self.stats.count_emitted(n);
        Ok(true)
    }

    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        self.chunk_now(chunk).map(drop)
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The work of a sink that awaits a fallible function on every item, one
/// at a time; each item counts as consumed once its call is done, and an
/// error fails the sink.
struct TryForEach<F> {
    stats: Arc<StageStats>,
    f: F,
}

impl<I, Fut, F, E> Work<Chunk<I>> for TryForEach<F>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: StageError,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            if let Err(err) = (self.f)(item).await {
                self.stats.count_failed();
                let err = Error::Stage {
                    stage: self.stats.name().to_owned(),
                    source: err.into(),
                };
                if let Some(tag) = tag {
                    tag.fail(chain(&err));
                }
                return Err(err);
            }
            if let Some(tag) = tag {
                tag.resolve(Fate::Delivered);
            }
            self.stats.count_emitted(1);
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The work of a sink that awaits a fallible async function on each whole
/// chunk.
struct TryForEachChunk<F> {
    stats: Arc<StageStats>,
    f: F,
}

impl<I, Fut, F, E> Work<Chunk<I>> for TryForEachChunk<F>
where
    F: FnMut(Vec<I>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: StageError,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let n = chunk.items.len();
        let items = std::mem::take(&mut chunk.items);
        match (self.f)(items).await {
            Ok(()) => {
                if chunk.is_tagged() {
                    chunk.resolve_all(Fate::Delivered);
                }
                self.stats.count_emitted(n);
                Ok(())
            }
            Err(err) => Err(Error::Stage {
                stage: self.stats.name().to_owned(),
                source: err.into(),
            }),
        }
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
