//! The sinks that end a pipeline and make it a [`Job`], each with its work
//! on a chunk.

use std::future::Future;
use std::sync::Arc;

use crate::ack::fate::Fate;
use crate::engine::drive::{SinkFuture, stopped};
use crate::engine::hop::{Chunk, Inlet};
use crate::engine::stage_loop::{Work, run_stage};
use crate::engine::stats::StageStats;
use crate::error::Error;
use crate::job::run::Job;
use crate::job::stream::PipelineStream;
use crate::pipeline::builder::Pipeline;

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
    pub fn for_each_async<Fut, F>(self, f: F) -> Job<()>
    where
        Fut: Future<Output = ()> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.sink("for_each_async", move |input, stats| async move {
            run_stage(input, &mut ForEachAsync { stats, f }).await
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
            run_stage(input, &mut fold).await?;
            // The accumulator is only taken here, after the last chunk.
            fold.acc.take().ok_or_else(stopped)
        })
    }

    /// Ends the pipeline in the sink that `make` builds.
    pub(crate) fn sink<O, F, Fut>(self, kind: &'static str, make: F) -> Job<O>
    where
        O: Send + 'static,
        F: FnOnce(Inlet<T>, Arc<StageStats>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let (graph, mut inlet) = self.wire();
        let name = graph.name_for(kind);
        let inputs = vec![inlet.input_hop()];
        let start = Box::new(move |stats: Arc<StageStats>| {
            inlet.attach(&stats);
            Box::pin(make(inlet, stats)) as SinkFuture<O>
        });
        Job::new(graph, name, inputs, start)
    }
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

/// The work of a sink that awaits an async function on every item, one at
/// a time; each item counts as consumed once its call is done.
struct ForEachAsync<F> {
    stats: Arc<StageStats>,
    f: F,
}

impl<I, Fut, F> Work<Chunk<I>> for ForEachAsync<F>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = ()>,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            (self.f)(item).await;
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
