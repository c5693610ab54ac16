//! Parallel stages: N workers on one stage, with outputs in input order, in
//! completion order, or in order per key.

use std::future::{Future, Ready, ready};
use std::hash::Hash;
use std::sync::Arc;

use futures_lite::future::zip;

use crate::ack::fate::Tag;
use crate::engine::stage_loop::run_stage;
use crate::error::Error;
use crate::error::StageError;
use crate::limits::MAX_WORKERS;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::{StageTasks, WorkerTask};
use crate::pipeline::head::StageSetup;
use crate::stages::fallible::{Trier, TryMapped, TryThened};
use crate::stages::workers::{
    Collect, Done, Finished, Made, Slices, crew, dispatch, dispatch_keyed,
};

/// Items between an ordered stage's input and its output, per worker: one
/// at hand, one queued, and two finished early, waiting for those before.
const WINDOW: usize = 4;

/// How a parallel stage orders its outputs.
#[derive(Clone, Copy)]
enum Order {
    Input,
    Completion,
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that maps items with `f` on `workers` workers at once,
    /// and hands the outputs on in input order, as `asyncio.gather` does.
    ///
    /// Each worker is a task of its own, so with
    /// [`run_on_threads`](crate::Job::run_on_threads) CPU-heavy work spreads
    /// over the threads. Up to `workers` items are worked on at once, and
    /// that stays so while the next stage is slow to take the outputs, until
    /// the outputs waiting for it fill their bounded room.
    ///
    /// Items go to a worker in short runs (a chunk is cut into about four
    /// runs per worker), so that handing work over costs little beside the
    /// work itself; a run's items are mapped one after another. An output
    /// that is ready early waits for the ones before it; once `4 × workers`
    /// runs are between the stage's input and its output, no new run starts
    /// until the oldest leaves. 0 workers gives [`Error::ZeroWorkers`].
    ///
    /// # Examples
    ///
    /// ```
    /// let squares: Vec<u64> = flowgate::from_iter(1..=5u64)
    ///     .par_map(2, |x| x * x)
    ///     .collect()
    ///     .run_on_threads(2)?;
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_map<U, F>(self, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.windowed("par_map", workers, Order::Input, usize::MAX, sync_slices(f))
    }

    /// Like [`par_map`](Pipeline::par_map), but hands outputs on as soon as
    /// they are made, whatever their order: a slow item holds back only the
    /// short run of items handed to its worker with it (see `par_map`), and
    /// the other workers keep going.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut out: Vec<u32> = flowgate::from_iter(0..100u32)
    ///     .par_map_unordered(4, |x| x + 1)
    ///     .collect()
    ///     .run()?;
    /// out.sort();
    /// assert_eq!(out, (1..=100).collect::<Vec<_>>());
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_map_unordered<U, F>(self, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let f = sync_slices(f);
        self.windowed(
            "par_map_unordered",
            workers,
            Order::Completion,
            usize::MAX,
            f,
        )
    }

    /// Like [`par_map`](Pipeline::par_map), but items with the same `key`
    /// are worked on one at a time, in input order, while items with
    /// different keys run on up to `workers` workers at once. Outputs with
    /// the same key leave in input order; others leave as they are made.
    ///
    /// # Examples
    ///
    /// ```
    /// // Events per account: each account's events stay in order.
    /// let out: Vec<(char, u32)> = flowgate::from_iter([('a', 1), ('b', 1), ('a', 2), ('b', 2)])
    ///     .par_map_by_key(2, |e| e.0, |e| e)
    ///     .collect()
    ///     .run()?;
    /// let a: Vec<_> = out.iter().filter(|e| e.0 == 'a').collect();
    /// assert_eq!(a, [&('a', 1), &('a', 2)]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_map_by_key<U, K, KF, F>(self, workers: usize, key: KF, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.keyed("par_map_by_key", workers, key, move |x| ready(vec![f(x)]))
    }

    /// Adds a stage that runs the async function `f` on up to `workers`
    /// items at once, and hands the outputs on in input order, as
    /// `asyncio.gather` does.
    ///
    /// The calls keep running while the next stage is slow to take their
    /// outputs: unlike a `buffered` stream, nothing waits for the consumer
    /// to poll. Up to `workers` calls run at once; an output that is ready
    /// early waits for the ones before it, and at most `4 × workers` items
    /// are between the stage's input and its output. 0 workers gives
    /// [`Error::ZeroWorkers`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let out: Vec<u64> = flowgate::from_iter(1..=20u64)
    ///     .par_then(20, |x| async move {
    ///         smol::Timer::after(Duration::from_millis(50)).await;
    ///         x * 10
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, (1..=20).map(|x| x * 10).collect::<Vec<_>>());
    /// // Twenty waits of 50 ms overlapped: far less than a second.
    /// assert!(start.elapsed() < Duration::from_millis(900));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_then<U, Fut, F>(self, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        self.windowed(
            "par_then",
            workers,
            Order::Input,
            1,
            move |mut items: Vec<T>| {
                // One item at a time, so that a slow item holds back no other.
                let fut = items.pop().map(&f);
                async move {
                    match fut {
                        Some(fut) => vec![fut.await],
                        None => Vec::new(),
                    }
                }
            },
        )
    }

    /// Like [`par_then`](Pipeline::par_then), but hands outputs on as soon
    /// as they are made, whatever their order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let out: Vec<u64> = flowgate::from_iter([30u64, 1])
    ///     .par_then_unordered(2, |ms| async move {
    ///         smol::Timer::after(Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [1, 30]); // the quick one first
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_then_unordered<U, Fut, F>(self, workers: usize, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        let f = move |mut items: Vec<T>| {
            let fut = items.pop().map(&f);
            async move {
                match fut {
                    Some(fut) => vec![fut.await],
                    None => Vec::new(),
                }
            }
        };
        self.windowed("par_then_unordered", workers, Order::Completion, 1, f)
    }

    /// Like [`par_then`](Pipeline::par_then), but items with the same `key`
    /// are worked on one at a time, in input order, while items with
    /// different keys run on up to `workers` workers at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<(u8, u32)> = flowgate::from_iter((0..40u32).map(|i| ((i % 4) as u8, i)))
    ///     .par_then_by_key(4, |e| e.0, |e| async move { e })
    ///     .collect()
    ///     .run()?;
    /// for key in 0..4 {
    ///     let seen: Vec<u32> = out.iter().filter(|e| e.0 == key).map(|e| e.1).collect();
    ///     assert!(seen.windows(2).all(|w| w[0] < w[1]));
    /// }
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn par_then_by_key<U, K, KF, Fut, F>(self, workers: usize, key: KF, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        self.keyed("par_then_by_key", workers, key, move |x| {
            let fut = f(x);
            async move { vec![fut.await] }
        })
    }

    /// A parallel stage whose dispatcher hands out a slice of items per
    /// permit.
    ///
    /// Items go to the workers in slices of up to `slice` items, and `f`
    /// turns a slice into its outputs.
    fn windowed<U, Fut, F>(
        self,
        kind: &'static str,
        workers: usize,
        order: Order,
        slice: usize,
        f: F,
    ) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = Vec<U>> + Send + 'static,
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    {
        let make = move |_: &mut StageSetup<U>| {
            move |items: Vec<T>, acks: Vec<Tag>| {
                let outputs = f(items);
                async move { (outputs.await, acks, None) }
            }
        };
        self.windowed_with(kind, workers, order, slice, make)
    }

    /// A parallel stage whose dispatcher hands out a slice of items per
    /// permit, with workers that `make` builds from the stage's setup, and
    /// whose outputs `settle` makes the stage's.
    fn windowed_with<U, S2, Fut, F, M>(
        self,
        kind: &'static str,
        workers: usize,
        order: Order,
        slice: usize,
        make: M,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        Fut: Future<Output = Made<U>> + Send + 'static,
        F: Fn(Vec<T>, Vec<Tag>) -> Fut + Send + Sync + 'static,
        M: FnOnce(&mut StageSetup<U>) -> F + Send + 'static,
    {
        let n = workers.clamp(1, MAX_WORKERS);
        let built = self.chain_tasks(kind, false, move |input, mut setup| {
            let f = make(&mut setup);
            // Each worker has one item at hand and one queued, so it never
            // waits for the dispatcher between items.
            let (free_tx, free_rx) = filled(2 * n);
            let (work_tx, done_rx, workers) = crew(n, f, &free_tx);
            // Ordered output: finished items wait for those before them, in
            // a window of four times the workers.
            let (window_tx, window_rx) = match order {
                Order::Input => {
                    let (tx, rx) = filled(WINDOW * n);
                    (Some(tx), Some(rx))
                }
                Order::Completion => (None, None),
            };
            let ordered = matches!(order, Order::Input);
            let main = zip(
                dispatch(
                    input,
                    work_tx,
                    free_rx,
                    window_rx,
                    Slices {
                        most: slice,
                        workers: n,
                    },
                ),
                collector(done_rx, Collect::new(setup.out, window_tx, ordered)),
            );
            tasks(main, workers)
        });
        check_workers(built, workers)
    }

    /// A parallel stage whose dispatcher keeps each key's items in order.
    fn keyed<U, K, KF, Fut, F>(
        self,
        kind: &'static str,
        workers: usize,
        key: KF,
        f: F,
    ) -> Pipeline<U>
    where
        U: Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        Fut: Future<Output = Vec<U>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        let make = move |_: &mut StageSetup<U>| {
            move |item: T, acks: Vec<Tag>| {
                let outputs = f(item);
                async move { (outputs.await, acks, None) }
            }
        };
        self.keyed_with(kind, workers, key, make)
    }

    /// A parallel stage whose dispatcher keeps each key's items in order,
    /// with workers that `make` builds from the stage's setup, and whose
    /// outputs `settle` makes the stage's.
    fn keyed_with<U, S2, K, KF, Fut, F, M>(
        self,
        kind: &'static str,
        workers: usize,
        key: KF,
        make: M,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        Fut: Future<Output = Made<U>> + Send + 'static,
        F: Fn(T, Vec<Tag>) -> Fut + Send + Sync + 'static,
        M: FnOnce(&mut StageSetup<U>) -> F + Send + 'static,
    {
        let n = workers.clamp(1, MAX_WORKERS);
        let built = self.chain_tasks(kind, false, move |input, mut setup| {
            let f = make(&mut setup);
            let (freed_tx, freed_rx) = async_channel::bounded(2 * n);
            let (work_tx, done_rx, workers) = crew(n, f, &freed_tx);
            let main = zip(
                dispatch_keyed(input, work_tx, freed_rx, key, 2 * n),
                collector(done_rx, Collect::new(setup.out, None, false)),
            );
            tasks(main, workers)
        });
        check_workers(built, workers)
    }
}

/// The fallible parallel stages: each item's failure goes to the stage's
/// policy, set with [`on_error`](Pipeline::on_error), as in a `try_map`.
impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Like [`par_map`](Pipeline::par_map), with a function that can fail,
    /// as in [`try_map`](Pipeline::try_map).
    ///
    /// A failed item goes to the stage's policy, set with
    /// [`on_error`](Pipeline::on_error); by default the run fails with
    /// [`Error::Stage`]. Retries run in the worker that had the item, so
    /// one item's backoff holds up no other worker. Outputs leave in input
    /// order; a skipped or dead-lettered item leaves no gap to wait for.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::OnError;
    ///
    /// let total: u64 = flowgate::from_iter(["1", "two", "3", "4"])
    ///     .try_par_map(2, |s: &str| s.parse::<u64>())
    ///     .on_error(OnError::skip())
    ///     .fold(0, |sum, n| sum + n)
    ///     .run_on_threads(2)?;
    /// assert_eq!(total, 8);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_map<U, E, F>(self, workers: usize, f: F) -> Pipeline<U, TryMapped<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let f = move |x| ready(f(x));
        self.try_windowed("try_par_map", workers, Order::Input, usize::MAX, f)
    }

    /// Like [`try_par_map`](Pipeline::try_par_map), but hands outputs on
    /// as soon as they are made, whatever their order.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::OnError;
    ///
    /// let mut out: Vec<u8> = flowgate::from_iter(["7", "x", "5"])
    ///     .try_par_map_unordered(2, |s: &str| s.parse::<u8>())
    ///     .on_error(OnError::skip())
    ///     .collect()
    ///     .run()?;
    /// out.sort();
    /// assert_eq!(out, [5, 7]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_map_unordered<U, E, F>(
        self,
        workers: usize,
        f: F,
    ) -> Pipeline<U, TryMapped<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let f = move |x| ready(f(x));
        let kind = "try_par_map_unordered";
        self.try_windowed(kind, workers, Order::Completion, usize::MAX, f)
    }

    /// Like [`par_map_by_key`](Pipeline::par_map_by_key), with a function
    /// that can fail, as in [`try_map`](Pipeline::try_map): items with the
    /// same key are tried one at a time, in input order, retries included.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::OnError;
    ///
    /// let out: Vec<(char, u8)> = flowgate::from_iter([('a', "1"), ('b', "x"), ('a', "2")])
    ///     .try_par_map_by_key(2, |e| e.0, |(k, s): (char, &str)| s.parse::<u8>().map(|n| (k, n)))
    ///     .on_error(OnError::skip())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [('a', 1), ('a', 2)]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_map_by_key<U, E, K, KF, F>(
        self,
        workers: usize,
        key: KF,
        f: F,
    ) -> Pipeline<U, TryMapped<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let f = move |x| ready(f(x));
        self.try_keyed("try_par_map_by_key", workers, key, f)
    }

    /// Like [`par_then`](Pipeline::par_then), with an async function that
    /// can fail, as in [`try_then`](Pipeline::try_then): a failed item
    /// goes to the stage's policy, and each attempt can be given a time
    /// limit with [`timeout`](Pipeline::timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowgate::OnError;
    ///
    /// let out: Vec<u64> = flowgate::from_iter([5u64, 500, 10])
    ///     .try_par_then(3, |ms| async move {
    ///         smol::Timer::after(Duration::from_millis(ms)).await;
    ///         Ok::<u64, std::io::Error>(ms)
    ///     })
    ///     .timeout(Duration::from_millis(100))
    ///     .on_error(OnError::skip())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [5, 10]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_then<U, E, Fut, F>(self, workers: usize, f: F) -> Pipeline<U, TryThened<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        self.try_windowed("try_par_then", workers, Order::Input, 1, f)
    }

    /// Like [`try_par_then`](Pipeline::try_par_then), but hands outputs on
    /// as soon as they are made, whatever their order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let out: Vec<u64> = flowgate::from_iter([30u64, 1])
    ///     .try_par_then_unordered(2, |ms| async move {
    ///         smol::Timer::after(Duration::from_millis(ms)).await;
    ///         Ok::<u64, std::io::Error>(ms)
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [1, 30]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_then_unordered<U, E, Fut, F>(
        self,
        workers: usize,
        f: F,
    ) -> Pipeline<U, TryThened<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        self.try_windowed("try_par_then_unordered", workers, Order::Completion, 1, f)
    }

    /// Like [`par_then_by_key`](Pipeline::par_then_by_key), with an async
    /// function that can fail, as in [`try_then`](Pipeline::try_then).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::OnError;
    ///
    /// let out: Vec<(u8, u32)> = flowgate::from_iter((0..12u32).map(|i| ((i % 3) as u8, i)))
    ///     .try_par_then_by_key(3, |e| e.0, |e| async move {
    ///         if e.1 == 4 { Err(std::io::Error::other("four")) } else { Ok(e) }
    ///     })
    ///     .on_error(OnError::skip())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out.len(), 11);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_par_then_by_key<U, E, K, KF, Fut, F>(
        self,
        workers: usize,
        key: KF,
        f: F,
    ) -> Pipeline<U, TryThened<T, E>>
    where
        U: Send + 'static,
        E: StageError,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        self.try_keyed("try_par_then_by_key", workers, key, f)
    }

    /// A fallible parallel stage whose dispatcher hands out slices of up
    /// to `slice` items, each item tried by its worker under the policy.
    fn try_windowed<U, E, S2, Fut, F>(
        self,
        kind: &'static str,
        workers: usize,
        order: Order,
        slice: usize,
        f: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        E: StageError,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        let make = move |setup: &mut StageSetup<U>| {
            let trier = Trier::new(f, setup);
            // Boxed, so that an idle worker holds a pointer, not the
            // whole retry loop's state.
            move |items: Vec<T>, acks: Vec<Tag>| Box::pin(Arc::clone(&trier).try_all(items, acks))
        };
        self.windowed_with(kind, workers, order, slice, make)
    }

    /// A fallible parallel stage whose dispatcher keeps each key's items in
    /// order, each item tried by its worker under the policy.
    fn try_keyed<U, E, S2, K, KF, Fut, F>(
        self,
        kind: &'static str,
        workers: usize,
        key: KF,
        f: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        E: StageError,
        K: Hash + Eq + Clone + Send + 'static,
        KF: FnMut(&T) -> K + Send + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        let make = move |setup: &mut StageSetup<U>| {
            let trier = Trier::new(f, setup);
            move |item: T, acks: Vec<Tag>| Box::pin(Arc::clone(&trier).try_all(vec![item], acks))
        };
        self.keyed_with(kind, workers, key, make)
    }
}

/// A channel of `n` tokens, all waiting to be taken.
fn filled(n: usize) -> (async_channel::Sender<()>, async_channel::Receiver<()>) {
    let (tx, rx) = async_channel::bounded(n);
    for _ in 0..n {
        let _ = tx.try_send(());
    }
    (tx, rx)
}

/// The tasks of a parallel stage: its dispatcher and collector as one
/// future, and its workers beside it.
fn tasks(
    main: impl Future<Output = ((), Result<(), Error>)> + Send + 'static,
    workers: Vec<WorkerTask>,
) -> StageTasks {
    StageTasks {
        main: Box::pin(async move { main.await.1 }),
        workers,
        segments: Vec::new(),
    }
}

/// The collector of a parallel stage: it runs `collect` on the workers'
/// outputs until every worker has gone.
async fn collector<U>(
    done: async_channel::Receiver<Finished<U>>,
    mut collect: Collect<U>,
) -> Result<(), Error> {
    run_stage(Done(done), &mut collect).await
}

/// Sync work on slices: each worker maps a slice of items at once, so that
/// handing work over costs little beside the work itself.
fn sync_slices<T, U, F>(f: F) -> impl Fn(Vec<T>) -> Ready<Vec<U>> + Send + Sync + 'static
where
    F: Fn(T) -> U + Send + Sync + 'static,
{
    move |items: Vec<T>| ready(items.into_iter().map(&f).collect())
}

/// Records an error if a parallel stage was given no workers, or too many.
fn check_workers<U: Send + 'static, S>(built: Pipeline<U, S>, workers: usize) -> Pipeline<U, S> {
    match workers {
        0 => built.reject_newest(|stage| Error::ZeroWorkers { stage }),
        n if n > MAX_WORKERS => built.reject_newest(move |stage| Error::TooManyWorkers {
            stage,
            workers,
            max: MAX_WORKERS,
        }),
        _ => built,
    }
}
