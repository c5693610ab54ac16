//! The plain stages: the `Iterator` words, and the async `then`, each with
//! its work on a chunk.

use std::future::Future;

use crate::engine::hop::Outlet;
use crate::engine::stage_loop::{Work, await_flushing, run_stage};
use crate::error::Error;
use crate::pipeline::builder::Pipeline;

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that transforms each item with `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<String> = flowgate::from_iter(1..=3).map(|x: i32| x.to_string()).collect().run()?;
    /// assert_eq!(out, ["1", "2", "3"]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn map<U, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        self.each("map", move |items, out| out.extend(items.map(&mut f)))
    }

    /// Adds a stage that keeps only the items for which `f` returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let odd: Vec<u32> = flowgate::from_iter(0..6u32).filter(|x| x % 2 == 1).collect().run()?;
    /// assert_eq!(odd, [1, 3, 5]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.each("filter", move |items, out| out.extend(items.filter(&mut f)))
    }

    /// Adds a stage that maps each item to an `Option`, keeping the `Some`s.
    ///
    /// # Examples
    ///
    /// ```
    /// let nums: Vec<i32> = flowgate::from_iter(["1", "x", "3"])
    ///     .filter_map(|s| s.parse::<i32>().ok())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(nums, [1, 3]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter_map<U, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Send + 'static,
    {
        self.each("filter_map", move |items, out| {
            out.extend(items.filter_map(&mut f))
        })
    }

    /// Adds a stage that turns each item into any number of items.
    ///
    /// The outputs are sent in chunks as they are made, so one item that
    /// expands into millions still respects the next hop's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32).flat_map(|n| 0..n).collect().run()?;
    /// assert_eq!(out, [0, 0, 1, 0, 1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn flat_map<U, I, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: Send,
        F: FnMut(T) -> I + Send + 'static,
    {
        self.chain("flat_map", true, move |input, setup| async move {
            run_stage(input, &mut FlatMap { out: setup.out, f }).await
        })
    }

    /// Adds a stage that calls `f` on a reference to each item and passes
    /// the item on unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&seen);
    /// let n = flowgate::from_iter(0..4u8)
    ///     .inspect(move |_| { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .count()
    ///     .run()?;
    /// assert_eq!((n, seen.load(Ordering::Relaxed)), (4, 4));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn inspect<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        self.each("inspect", move |items, out| {
            out.extend(items.inspect(&mut f))
        })
    }

    /// Adds a stage that maps each item with an async function, one item at
    /// a time, in order.
    ///
    /// While a call waits (on a timer, a socket), the outputs already made
    /// are sent on, so waiting never holds finished items back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32)
    ///     .then(|x| async move {
    ///         smol::Timer::after(Duration::from_millis(1)).await;
    ///         x * 2
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn then<U, Fut, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.chain("then", false, move |input, setup| async move {
            run_stage(input, &mut Then { out: setup.out, f }).await
        })
    }

    /// Adds a stage that gives at most one output per input; `apply` moves
    /// a slice of inputs into the output chunk.
    fn each<U, F>(self, kind: &'static str, apply: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(std::vec::Drain<'_, T>, &mut Outlet<U>) + Send + 'static,
    {
        self.chain(kind, false, move |input, setup| async move {
            run_stage(
                input,
                &mut Each {
                    out: setup.out,
                    apply,
                },
            )
            .await
        })
    }
}

/// The work of a stage that turns each input into at most one output with a
/// sync function: `map`, `filter`, `filter_map` and `inspect`.
///
/// `apply` moves a slice of inputs through the stage's function into the
/// output chunk. It is given no more inputs than the chunk has room for, so
/// the chunk can never overflow. The slice is a plain `Drain` of the input
/// chunk (usually all of it), an iterator of exact length, so for `map`
/// `Vec::extend` writes the outputs without a check per item. Inputs that
/// made no output are counted as filtered.
struct Each<O, F> {
    out: Outlet<O>,
    apply: F,
}

impl<O, F> Each<O, F> {
    /// Moves `chunk`'s first `slice` items through `apply`, counting those
    /// that made no output as filtered.
    #[inline]
    fn apply<I>(&mut self, chunk: &mut Vec<I>, slice: usize)
    where
        F: FnMut(std::vec::Drain<'_, I>, &mut Outlet<O>),
    {
        let before = self.out.len();
        (self.apply)(chunk.drain(..slice), &mut self.out);
        let filtered = slice - (self.out.len() - before);
        if filtered > 0 {
            self.out.stats().count_filtered(filtered);
        }
    }
}

impl<I, O, F> Work<Vec<I>> for Each<O, F>
where
    F: FnMut(std::vec::Drain<'_, I>, &mut Outlet<O>),
{
    /// Applies the function slice by slice, handing each full output chunk
    /// on while the next hop has room.
    #[inline]
    fn chunk_now(&mut self, chunk: &mut Vec<I>) -> Result<bool, Error> {
        while !chunk.is_empty() {
            if self.out.is_full() && !self.out.try_flush()? {
                return Ok(false);
            }
            let slice = self.out.room().min(chunk.len());
            self.apply(chunk, slice);
        }
        Ok(true)
    }

    /// Waits for room in the next hop whenever the output chunk is full.
    async fn chunk(&mut self, chunk: &mut Vec<I>) -> Result<(), Error> {
        while !self.chunk_now(chunk)? {
            self.out.flush().await?;
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}

/// The work of a stage that turns each input into any number of outputs,
/// handing the outputs on whenever the output chunk fills, even in the
/// middle of one input's outputs.
struct FlatMap<O, F> {
    out: Outlet<O>,
    f: F,
}

impl<I, O, It, F> Work<Vec<I>> for FlatMap<O, F>
where
    F: FnMut(I) -> It,
    It: IntoIterator<Item = O>,
{
    async fn chunk(&mut self, chunk: &mut Vec<I>) -> Result<(), Error> {
        for item in chunk.drain(..) {
            let mut outputs = (self.f)(item).into_iter();
            while self.out.fill(outputs.by_ref()) {
                self.out.flush().await?;
            }
            self.out.pass_one();
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}

/// The work of a stage that maps each input with an async function.
///
/// A future that completes on its first poll is batched like a sync stage.
/// One that has to wait first hands on the outputs already made, so they do
/// not sit in the buffer for as long as the wait lasts.
struct Then<O, F> {
    out: Outlet<O>,
    f: F,
}

impl<I, O, Fut, F> Work<Vec<I>> for Then<O, F>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = O>,
{
    async fn chunk(&mut self, chunk: &mut Vec<I>) -> Result<(), Error> {
        for item in chunk.drain(..) {
            let output = await_flushing((self.f)(item), &mut self.out).await?;
            if self.out.push(output) {
                self.out.flush().await?;
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}
