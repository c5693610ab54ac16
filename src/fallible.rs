//! Fallible stages, `try_map` and `try_then`, with their error policies and
//! per-item timeouts.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use futures_lite::FutureExt;
use smol::Timer;

use crate::drive::stopped;
use crate::hop::{Inlet, Outlet};
use crate::policy::{DeadLetter, ItemError, OnError, Step};
use crate::run::Cell;
use crate::stage::Batches;
use crate::wiring::Wired;
use crate::{Error, Pipeline, TimedOut};

/// Marks a pipeline whose newest stage is a [`Pipeline::try_map`] from `T`
/// that fails with `E`.
#[derive(Debug)]
pub struct TryMapped<T, E>(PhantomData<fn() -> (T, E)>);

/// Marks a pipeline whose newest stage is a [`Pipeline::try_then`] from `T`
/// that fails with `E`.
#[derive(Debug)]
pub struct TryThened<T, E>(PhantomData<fn() -> (T, E)>);

/// A fallible stage: its input type and its error type.
///
/// Implemented by [`TryMapped`] and [`TryThened`] only.
pub trait Fallible: sealed::Sealed {
    /// The stage's input.
    type Input;
    /// The stage's error.
    type Error;
}

mod sealed {
    pub trait Sealed {}
    impl<T, E> Sealed for super::TryMapped<T, E> {}
    impl<T, E> Sealed for super::TryThened<T, E> {}
}

impl<T, E> Fallible for TryMapped<T, E> {
    type Input = T;
    type Error = E;
}

impl<T, E> Fallible for TryThened<T, E> {
    type Input = T;
    type Error = E;
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that maps each item with a function that can fail.
    ///
    /// A failed item goes to the stage's policy, set with
    /// [`on_error`](Pipeline::on_error); by default the run fails with
    /// [`Error::Stage`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::Error;
    ///
    /// let err = flowgate::from_iter(["1", "x"])
    ///     .try_map(|s| s.parse::<u8>())
    ///     .name("parse")
    ///     .count()
    ///     .run()
    ///     .unwrap_err();
    /// assert!(matches!(&err, Error::Stage { stage, .. } if stage == "parse"));
    /// ```
    pub fn try_map<U, E, F>(self, mut f: F) -> Pipeline<U, TryMapped<T, E>>
    where
        U: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
        F: FnMut(T) -> Result<U, E> + Send + 'static,
    {
        self.chain("try_map", false, move |input, w| {
            try_stage(input, w, move |item| std::future::ready(f(item)))
        })
    }

    /// Adds a stage that maps each item with an async function that can
    /// fail, one item at a time, in order.
    ///
    /// A failed item goes to the stage's policy, set with
    /// [`on_error`](Pipeline::on_error). An item can also be given a time
    /// limit with [`timeout`](Pipeline::timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowgate::OnError;
    ///
    /// let out: Vec<u32> = flowgate::from_iter([1u32, 50, 2])
    ///     .try_then(|ms| async move {
    ///         smol::Timer::after(Duration::from_millis(ms.into())).await;
    ///         Ok::<u32, std::io::Error>(ms)
    ///     })
    ///     .timeout(Duration::from_millis(20))
    ///     .on_error(OnError::skip())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn try_then<U, E, Fut, F>(self, f: F) -> Pipeline<U, TryThened<T, E>>
    where
        U: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.chain("try_then", false, move |input, w| try_stage(input, w, f))
    }
}

impl<U: Send + 'static, F> Pipeline<U, F>
where
    F: Fallible,
    F::Input: Send + 'static,
    F::Error: Send + 'static,
{
    /// Sets what the newest stage, a fallible one, does with an item that
    /// failed. See [`OnError`].
    ///
    /// A retry policy of 0 attempts, or a backoff factor below 1, makes the
    /// run fail at once with [`Error::ZeroAttempts`] or
    /// [`Error::BadBackoff`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Backoff, OnError};
    /// use std::time::Duration;
    ///
    /// let (dead_tx, dead_rx) = async_channel::bounded(8);
    /// let ok: Vec<u8> = flowgate::from_iter(["1", "x", "3"])
    ///     .try_map(|s: &str| s.parse::<u8>())
    ///     .on_error(OnError::retry(2, Backoff::fixed(Duration::ZERO)).or_dead_letter(dead_tx))
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(ok, [1, 3]);
    /// let letter = dead_rx.try_recv().unwrap();
    /// assert_eq!((letter.item, letter.attempts), ("x", 2));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn on_error(self, policy: OnError<F::Input, F::Error>) -> Self {
        match policy.check(self.newest_name()) {
            Ok(()) => self.configure(Some(Box::new(policy)), None),
            Err(err) => self.fail(err),
        }
    }
}

impl<U: Send + 'static, T, E> Pipeline<U, TryThened<T, E>> {
    /// Gives each item of the newest stage, a `try_then`, at most `after` to
    /// finish, like Python's `asyncio.wait_for`. An item that takes longer
    /// fails with [`TimedOut`], which goes to the stage's policy like any
    /// other failure.
    ///
    /// The timer runs from the moment the item's work starts. A zero timeout
    /// gives the work one poll: an item whose future is ready at once still
    /// succeeds, any other times out, as with `wait_for(x, 0)`. A timeout too
    /// long to represent never fires.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::{Error, TimedOut};
    /// use std::time::Duration;
    ///
    /// let err = flowgate::from_iter([1u8])
    ///     .try_then(|x| async move {
    ///         smol::Timer::after(Duration::from_secs(2)).await;
    ///         Ok::<u8, std::io::Error>(x)
    ///     })
    ///     .timeout(Duration::from_millis(10))
    ///     .count()
    ///     .run()
    ///     .unwrap_err();
    /// let Error::Stage { source, .. } = err else { panic!("{err}") };
    /// assert!(source.downcast_ref::<TimedOut>().is_some());
    /// ```
    pub fn timeout(self, after: Duration) -> Self {
        self.configure(None, Some(after))
    }
}

/// The loop of a fallible stage: each item is tried, and a failure goes to
/// the stage's policy.
async fn try_stage<I, O, E, Fut, F>(input: Inlet<I>, w: Wired<O>, mut f: F) -> Result<(), Error>
where
    I: 'static,
    E: std::error::Error + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>>,
    F: FnMut(I) -> Fut,
{
    let Wired {
        mut out,
        cell,
        policy,
        timeout,
        ..
    } = w;
    let policy = policy
        .and_then(|policy| policy.downcast::<OnError<I, E>>().ok())
        .map_or_else(OnError::fail_fast, |policy| *policy);
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for mut item in chunk.drain(..) {
                let mut attempt = 1;
                let output = loop {
                    let copy = policy.clone.map(|clone| clone(&item));
                    let error = match attempt_once(f(item), timeout, &mut out).await {
                        None => return Err(stopped()),
                        Some(Ok(output)) => break Some(output),
                        Some(Err(error)) => error,
                    };
                    match (policy.step(attempt), copy) {
                        (Step::Retry(wait), Some(copy)) => {
                            Cell::add(&cell.retried, 1);
                            out.flush().await.map_err(|_| stopped())?;
                            Timer::after(wait).await;
                            item = copy;
                            attempt += 1;
                        }
                        (Step::DeadLetter(output), Some(copy)) => {
                            let letter = DeadLetter {
                                stage: cell.name.clone(),
                                item: copy,
                                error,
                                attempts: attempt,
                            };
                            out.flush().await.map_err(|_| stopped())?;
                            if let Err(async_channel::SendError(letter)) = output.send(letter).await
                            {
                                fail_or_skip(&Step::<I, E>::Fail, &cell, letter.error)?;
                            }
                            Cell::add(&cell.dead_lettered, 1);
                            break None;
                        }
                        (step, _) => {
                            fail_or_skip(&step, &cell, error)?;
                            break None;
                        }
                    }
                };
                if let Some(output) = output {
                    if out.push(output) && out.flush().await.is_err() {
                        return Err(stopped());
                    }
                }
            }
            next = batches.next(chunk, n);
        }
        out.flush().await.map_err(|_| stopped())?;
        batches.end().await;
    }
    Ok(())
}

/// Counts a failed item as skipped, or fails the stage with its error.
fn fail_or_skip<E>(
    step: &Step<'_, impl Sized, E>,
    cell: &Cell,
    error: ItemError<E>,
) -> Result<(), Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Step::Skip = step {
        Cell::add(&cell.skipped, 1);
        return Ok(());
    }
    Cell::add(&cell.failed, 1);
    Err(Error::Stage {
        stage: cell.name.clone(),
        source: error.into_source(),
    })
}

/// Runs one attempt of an item's work, under the stage's timeout. If the
/// work has to wait, the outputs already made are sent on first. `None` if
/// the next stage has gone.
async fn attempt_once<O, E, T>(
    work: impl Future<Output = Result<T, E>>,
    timeout: Option<Duration>,
    out: &mut Outlet<O>,
) -> Option<Result<T, ItemError<E>>> {
    let started = Instant::now();
    let mut work = pin!(work);
    if let Some(result) = poll_once(work.as_mut()).await {
        return Some(result.map_err(ItemError::Failed));
    }
    let Some(after) = timeout else {
        out.flush().await.ok()?;
        return Some(work.await.map_err(ItemError::Failed));
    };
    if after.is_zero() {
        return Some(Err(ItemError::TimedOut(TimedOut { after })));
    }
    let timer = started
        .checked_add(after)
        .map_or_else(Timer::never, Timer::at);
    let expired = async {
        timer.await;
        Err(ItemError::TimedOut(TimedOut { after }))
    };
    let finished = async { work.await.map_err(ItemError::Failed) };
    out.flush().await.ok()?;
    Some(finished.or(expired).await)
}
