//! The plain stages: the `Iterator` words, and the async `then`.

use std::future::Future;

use crate::hop::Outlet;
use crate::{stage, Pipeline};

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
        self.chain("flat_map", true, move |input, w| async move {
            stage::flat_map(input, w.out, f).await;
            Ok(())
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
        self.chain("then", false, move |input, w| async move {
            stage::then(input, w.out, f).await;
            Ok(())
        })
    }

    /// Adds a stage that gives at most one output per input; `apply` moves
    /// a run of inputs into the output chunk.
    fn each<U, F>(self, kind: &'static str, apply: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(std::vec::Drain<'_, T>, &mut Outlet<U>) + Send + 'static,
    {
        self.chain(kind, false, move |input, w| async move {
            stage::each(input, w.out, apply).await;
            Ok(())
        })
    }
}
