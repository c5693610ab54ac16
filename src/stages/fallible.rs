//! Fallible stages, `try_map` and `try_then`, with their error policies and
//! per-item timeouts.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures_lite::FutureExt;
use futures_lite::future::poll_once;
use smol::Timer;

use crate::ack::fate::{Fate, Tag};
use crate::engine::feed::{Feed, run_fed};
use crate::engine::hop::{Chunk, Closed, Outlet};
use crate::engine::stage_loop::{BeforeWait, Work};
use crate::engine::stats::StageStats;
use crate::error::{Error, ItemError, Panicked, StageError, TimedOut, chain};
use crate::pipeline::builder::Pipeline;
use crate::pipeline::head::StageSetup;
use crate::stages::policy::{DeadLetter, OnError, Step};
use crate::stages::restart::{Restarter, guarded, guarded_async};
use crate::stages::workers::Made;

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
#[diagnostic::on_unimplemented(
    message = "`on_error` sets up a fallible stage, and the newest stage here is not one",
    label = "the newest stage is not a `try_map`, `try_then` or `try_par_*`",
    note = "call `.on_error(..)` right after `.try_map(..)`, `.try_then(..)` or a `.try_par_*(..)` (a `.name(..)` may come between), before the next stage"
)]
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
        E: StageError,
        F: FnMut(T) -> Result<U, E> + Send + 'static,
    {
        self.chain("try_map", false, move |input, setup| {
            try_stage(input, setup, move |item| std::future::ready(f(item)))
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
        E: StageError,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.chain("try_then", false, move |input, setup| {
            try_stage(input, setup, f)
        })
    }
}

// The bounds are on the method, not on the block, so that calling it after
// a stage that cannot fail names the problem (see `Fallible`).
impl<U: Send + 'static, F> Pipeline<U, F> {
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
    ///
    /// It sets up the newest stage, which must be a fallible one: after any
    /// other, it does not compile, and the error says so.
    ///
    /// ```compile_fail
    /// let _ = flowgate::from_iter(["1"]).map(|s| s).on_error(flowgate::OnError::skip());
    /// ```
    pub fn on_error(self, policy: OnError<F::Input, F::Error>) -> Self
    where
        F: Fallible,
        F::Input: Send + 'static,
        F::Error: Send + 'static,
    {
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

/// The work of a fallible stage: each item is tried, and a failure goes to
/// the stage's policy.
struct TryStage<I, O, E, F> {
    out: Outlet<O>,
    stats: Arc<StageStats>,
    policy: OnError<I, E>,
    timeout: Option<Duration>,
    restart: Option<Restarter>,
    f: F,
}

impl<I, O, E, Fut, F> Work<Chunk<I>> for TryStage<I, O, E, F>
where
    E: StageError,
    Fut: Future<Output = Result<O, E>>,
    F: FnMut(I) -> Fut,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            match self.try_item(item).await {
                Ok(Tried::Output(output)) => {
                    if self.out.push_tagged(output, tag) {
                        self.out.flush().await?;
                    }
                }
                Ok(Tried::Skipped) => tag.map_or((), |tag| tag.resolve(Fate::Skipped)),
                Ok(Tried::DeadLettered(error)) => {
                    if let Some(tag) = tag {
                        tag.dead_letter(self.stats.name().to_owned(), error);
                    }
                }
                Ok(Tried::Failed(err)) => {
                    if let Some(tag) = tag {
                        tag.fail(chain(&err));
                    }
                    return Err(err);
                }
                // Stopped while trying: the item is dropped with its tag.
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}

impl<I, O, E, Fut, F> TryStage<I, O, E, F>
where
    E: StageError,
    Fut: Future<Output = Result<O, E>>,
    F: FnMut(I) -> Fut,
{
    /// Tries one item, as often as the policy says: its output, or what the
    /// policy did with it.
    async fn try_item(&mut self, item: I) -> Result<Tried<O>, Error> {
        let tries = Tries {
            policy: &self.policy,
            timeout: self.timeout,
            stats: &self.stats,
            restart: self.restart.as_ref(),
        };
        tries.run(item, &mut self.f, &mut self.out).await
    }
}

/// Nothing to do before a wait.
struct NoOutput;

impl BeforeWait for NoOutput {
    async fn before_wait(&mut self) -> Result<(), Closed> {
        Ok(())
    }
}

/// What a worker of a fallible parallel stage needs to try items: the
/// stage's function, its policy and time limit, and its stats.
pub(super) struct Trier<I, E, F> {
    f: F,
    policy: OnError<I, E>,
    timeout: Option<Duration>,
    stats: Arc<StageStats>,
}

impl<I: 'static, E: StageError, F> Trier<I, E, F> {
    /// The trier of the fallible stage set up by `setup`, with `f`.
    pub(super) fn new<O>(f: F, setup: &mut StageSetup<O>) -> Arc<Self> {
        Arc::new(Trier {
            f,
            policy: policy_of(setup),
            timeout: setup.timeout,
            stats: Arc::clone(&setup.stats),
        })
    }

    /// Tries each of `items` in turn, as often as the policy says, and
    /// settles the tags (in `acks`, one per item, or none) of those that
    /// make no output: the outputs with their tags, and the error that
    /// fails the stage if an item failed so (the items after it are
    /// dropped with their tags).
    pub(super) async fn try_all<O, Fut>(self: Arc<Self>, items: Vec<I>, acks: Vec<Tag>) -> Made<O>
    where
        F: Fn(I) -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        let tries = Tries {
            policy: &self.policy,
            timeout: self.timeout,
            stats: &self.stats,
            restart: None,
        };
        let mut outputs = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(acks.len());
        let mut acks = acks.into_iter();
        for item in items {
            let tag = acks.next();
            let tried = tries.run(item, &mut |x| (self.f)(x), &mut NoOutput).await;
            match tried.unwrap_or_else(Tried::Failed) {
                Tried::Output(output) => {
                    outputs.push(output);
                    kept.extend(tag);
                }
                Tried::Skipped => {
                    if let Some(tag) = tag {
                        tag.resolve(Fate::Skipped);
                    }
                }
                Tried::DeadLettered(error) => {
                    if let Some(tag) = tag {
                        tag.dead_letter(self.stats.name().to_owned(), error);
                    }
                }
                Tried::Failed(err) => {
                    if let Some(tag) = tag {
                        tag.fail(chain(&err));
                    }
                    return (outputs, kept, Some(Box::new(err)));
                }
            }
        }
        (outputs, kept, None)
    }
}

/// How a fallible stage tries each item: its policy, its time limit per
/// attempt, and the stats that count retries and failures.
struct Tries<'a, I, E> {
    policy: &'a OnError<I, E>,
    timeout: Option<Duration>,
    stats: &'a StageStats,
    /// Set if the stage restarts after a panic: a panic is then a failed
    /// attempt, for the policy.
    restart: Option<&'a Restarter>,
}

impl<I, E: StageError> Tries<'_, I, E> {
    /// Tries one item with `f`, as often as the policy says: its output, or
    /// what the policy did with it. Before any wait, `out` gets ready.
    async fn run<O, Fut>(
        &self,
        mut item: I,
        f: &mut impl FnMut(I) -> Fut,
        out: &mut impl BeforeWait,
    ) -> Result<Tried<O>, Error>
    where
        Fut: Future<Output = Result<O, E>>,
    {
        let mut attempt = 1;
        loop {
            let copy = self.policy.copy_of(&item);
            let error = match self.attempt(item, f, out).await? {
                Ok(output) => return Ok(Tried::Output(output)),
                Err(error) => error,
            };
            if let (ItemError::Panicked(panic), Some(restart)) = (&error, self.restart) {
                if let Err(err) = restart.after_panic(panic.message.clone(), out).await {
                    self.stats.count_failed();
                    return Ok(Tried::Failed(err));
                }
            }
            match (self.policy.step(attempt), copy) {
                (Step::Retry(wait), Some(copy)) => {
                    self.stats.count_retried();
                    out.before_wait().await?;
                    Timer::after(wait).await;
                    item = copy;
                    attempt += 1;
                }
                (Step::DeadLetter(output), Some(copy)) => {
                    let message = describe_item(&error);
                    let letter = DeadLetter {
                        stage: self.stats.name().to_owned(),
                        item: copy,
                        error,
                        attempts: attempt,
                    };
                    out.before_wait().await?;
                    let sent = {
                        // A full dead-letter output holds the stage up as
                        // a full hop would.
                        let _waiting = self.stats.waiting_to_send();
                        output.send(letter).await
                    };
                    if let Err(async_channel::SendError(letter)) = sent {
                        if let Err(err) =
                            fail_or_skip(&Step::<I, E>::Fail, self.stats, letter.error)
                        {
                            return Ok(Tried::Failed(err));
                        }
                    }
                    self.stats.count_dead_lettered();
                    return Ok(Tried::DeadLettered(message));
                }
                (step, _) => {
                    return Ok(match fail_or_skip(&step, self.stats, error) {
                        Ok(()) => Tried::Skipped,
                        Err(err) => Tried::Failed(err),
                    });
                }
            }
        }
    }
}

impl<I, E> Tries<'_, I, E> {
    /// One attempt at an item, under the stage's timeout, and under a panic
    /// guard if the stage restarts after a panic.
    async fn attempt<O, Fut>(
        &self,
        item: I,
        f: &mut impl FnMut(I) -> Fut,
        out: &mut impl BeforeWait,
    ) -> Result<Result<O, ItemError<E>>, Closed>
    where
        Fut: Future<Output = Result<O, E>>,
    {
        if self.restart.is_none() {
            return attempt_once(f(item), self.timeout, out).await;
        }
        let tried = match guarded(|| f(item)) {
            Ok(work) => guarded_async(attempt_once(work, self.timeout, out)).await,
            Err(message) => Err(message),
        };
        match tried {
            Ok(attempt) => attempt,
            Err(message) => Ok(Err(ItemError::Panicked(Panicked { message }))),
        }
    }
}

/// An item's error as one message: the stage's error as it prints in its
/// alternate form (which for an `anyhow::Error` holds the chain of errors
/// under it), or the timeout.
fn describe_item<E: StageError>(error: &ItemError<E>) -> String {
    match error {
        ItemError::Failed(err) => format!("{err:#}"),
        ItemError::TimedOut(err) => err.to_string(),
        ItemError::Panicked(err) => err.to_string(),
    }
}

/// What became of an item a fallible stage tried.
enum Tried<O> {
    Output(O),
    Skipped,
    /// The item went to the dead-letter output after this error.
    DeadLettered(String),
    /// The item failed, and fails the stage with this error.
    Failed(Error),
}

/// Counts a failed item as skipped, or fails the stage with its error.
fn fail_or_skip<E>(
    step: &Step<'_, impl Sized, E>,
    stats: &StageStats,
    error: ItemError<E>,
) -> Result<(), Error>
where
    E: StageError,
{
    if let Step::Skip = step {
        stats.count_skipped();
        return Ok(());
    }
    stats.count_failed();
    Err(Error::Stage {
        stage: stats.name().to_owned(),
        source: error.into_source(),
    })
}

/// Runs a fallible stage: each item of `input` goes through `f`, and a
/// failure to the stage's policy (fail fast unless one was set).
async fn try_stage<I, O, E, Fut, F>(input: Feed<I>, setup: StageSetup<O>, f: F) -> Result<(), Error>
where
    I: 'static,
    E: StageError,
    Fut: Future<Output = Result<O, E>>,
    F: FnMut(I) -> Fut,
{
    let mut setup = setup;
    let policy = policy_of(&mut setup);
    let restart = Restarter::of(&mut setup);
    let mut work = TryStage {
        out: setup.out,
        stats: setup.stats,
        policy,
        timeout: setup.timeout,
        restart,
        f,
    };
    run_fed(input, &mut work).await
}

/// The error policy set on a fallible stage, or fail fast if none was.
pub(super) fn policy_of<I: 'static, E: 'static, O>(setup: &mut StageSetup<O>) -> OnError<I, E> {
    setup
        .policy
        .take()
        .and_then(|policy| policy.downcast::<OnError<I, E>>().ok())
        .map_or_else(OnError::fail_fast, |policy| *policy)
}

/// Runs one attempt of an item's work, under the stage's timeout. If the
/// work has to wait, the outputs already made are sent on first. Fails if
/// the next stage has gone.
async fn attempt_once<E, T>(
    work: impl Future<Output = Result<T, E>>,
    timeout: Option<Duration>,
    out: &mut impl BeforeWait,
) -> Result<Result<T, ItemError<E>>, Closed> {
    let started = Instant::now();
    let mut work = pin!(work);
    if let Some(result) = poll_once(work.as_mut()).await {
        return Ok(result.map_err(ItemError::Failed));
    }
    let Some(after) = timeout else {
        out.before_wait().await?;
        return Ok(work.await.map_err(ItemError::Failed));
    };
    if after.is_zero() {
        return Ok(Err(ItemError::TimedOut(TimedOut { after })));
    }
    let timer = started
        .checked_add(after)
        .map_or_else(Timer::never, Timer::at);
    let expired = async {
        timer.await;
        Err(ItemError::TimedOut(TimedOut { after }))
    };
    let finished = async { work.await.map_err(ItemError::Failed) };
    out.before_wait().await?;
    Ok(finished.or(expired).await)
}
