//! The sinks that end a pipeline and make it a [`Job`].

use std::future::Future;
use std::sync::Arc;

use crate::hop::Inlet;
use crate::run::Cell;
use crate::{stage, Error, Job, Pipeline, PipelineStream};

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
        self.sink("for_each_async", move |input, cell| async move {
            stage::for_each_async(input, &cell, f).await;
            Ok(())
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
        PipelineStream::new(self.wire())
    }

    /// Ends the pipeline in a sink that folds whole chunks.
    fn fold_chunks<B, F>(self, kind: &'static str, init: B, f: F) -> Job<B>
    where
        B: Send + 'static,
        F: FnMut(B, std::vec::Drain<'_, T>) -> B + Send + 'static,
    {
        self.sink(kind, move |input, cell| async move {
            Ok(stage::fold_chunks(input, &cell, init, f).await)
        })
    }

    /// Ends the pipeline in the sink that `make` builds.
    pub(crate) fn sink<O, F, Fut>(self, kind: &'static str, make: F) -> Job<O>
    where
        O: Send + 'static,
        F: FnOnce(Inlet<T>, Arc<Cell>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let (up, mut inlet) = self.wire().split();
        let name = format!("{kind}#{}", up.cells.len());
        let inputs = vec![inlet.feed()];
        let start = Box::new(move |cell: Arc<Cell>| {
            inlet.attach(&cell);
            Box::pin(make(inlet, cell)) as crate::join::SinkFuture<O>
        });
        Job::new(up, name, inputs, start)
    }
}
