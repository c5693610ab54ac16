//! The one loop that every stage with an input runs.
//!
//! ```text
//! loop {
//!     wait for a chunk (or for the stage's own timer)
//!     while the yield budget lasts: process it, take the next one already waiting
//!     end the round: hand on what was made
//!     yield to the executor if the budget is spent
//! }
//! at the end of the input: hand on the rest
//! ```
//!
//! Batching is natural: after the first receive a stage takes every chunk
//! already waiting, and it hands its output on as soon as its input has
//! nothing ready, so batching adds no latency under light load. What a
//! stage does with each chunk is its [`Work`]; where its chunks come from is
//! its [`Input`]: one hop, several hops in turn (a merge), or the outputs of
//! a parallel stage's workers.

use std::future::Future;
use std::pin::pin;

use futures_lite::FutureExt;
use futures_lite::future::{poll_once, yield_now};
use smol::Timer;

use crate::engine::hop::{Chunk, Closed, Inlet, Outlet};
use crate::error::Error;

/// Items a stage may process without giving its thread back to the executor.
const YIELD_BUDGET: usize = 4096;

/// Counts work done since the last yield, so that a stage whose input is
/// always ready still lets other tasks on its thread run.
pub(crate) struct Budget(usize);

impl Budget {
    pub(crate) fn new() -> Self {
        Budget(YIELD_BUDGET)
    }

    /// Records `n` items of work; `true` once the budget is spent.
    #[inline]
    pub(crate) fn spend(&mut self, n: usize) -> bool {
        self.0 = self.0.saturating_sub(n);
        self.0 == 0
    }

    /// Yields to the executor if the budget is spent.
    pub(crate) async fn yield_if_spent(&mut self) {
        if self.0 == 0 {
            yield_now().await;
            self.0 = YIELD_BUDGET;
        }
    }
}

/// Where a stage's chunks come from.
pub(crate) trait Input {
    /// What one receive gives.
    type Chunk;

    /// Waits for the next chunk; `None` once the input has ended.
    async fn recv(&mut self) -> Option<Self::Chunk>;

    /// A chunk that is waiting already, if there is one.
    fn try_recv(&mut self) -> Option<Self::Chunk>;

    /// Takes back a chunk that [`Work::chunk`] has emptied, to reuse its
    /// buffer.
    fn recycle(&mut self, chunk: Self::Chunk);

    /// How many items of work `chunk` counts for against the yield budget.
    fn size(chunk: &Self::Chunk) -> usize;
}

impl<T> Input for Inlet<T> {
    type Chunk = Chunk<T>;

    #[inline]
    async fn recv(&mut self) -> Option<Chunk<T>> {
        Inlet::recv(self).await
    }

    #[inline]
    fn try_recv(&mut self) -> Option<Chunk<T>> {
        Inlet::try_recv(self).ok()
    }

    #[inline]
    fn recycle(&mut self, chunk: Chunk<T>) {
        Inlet::recycle(self, chunk);
    }

    #[inline]
    fn size(chunk: &Chunk<T>) -> usize {
        chunk.items.len()
    }
}

/// What a stage does with its input, chunk by chunk.
///
/// An `Err` from any method ends the stage at once with that error; a
/// closed output hop (the next stage has gone) is [`Closed`], which `?`
/// turns into the error of a stopped stage. Each method counts what it does
/// in the stage's stats; the hops count what crosses them.
pub(crate) trait Work<C> {
    /// Processes every item of `chunk`, leaving it empty.
    async fn chunk(&mut self, chunk: &mut C) -> Result<(), Error>;

    /// Processes as much of `chunk` as it can without waiting, and says
    /// whether that was all of it; what is left goes to [`Work::chunk`].
    /// Most chunks of most stages need no wait, and a plain call costs less
    /// than an async one, per chunk. By default, nothing is done here.
    #[inline]
    fn chunk_now(&mut self, _chunk: &mut C) -> Result<bool, Error> {
        Ok(false)
    }

    /// Ends a round: no more input is waiting, so what was made is handed
    /// on now.
    async fn round_end(&mut self) -> Result<(), Error>;

    /// Ends the stage once its input has ended. By default, a last round.
    async fn input_end(&mut self) -> Result<(), Error> {
        self.round_end().await
    }

    /// A timer the stage acts on even when no input comes, such as a batch
    /// that must leave by a deadline; `None` (the default) when it has none.
    fn timer(&mut self) -> Option<&mut Timer> {
        None
    }

    /// Called when [`Work::timer`] has fired.
    async fn on_timer(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Runs a stage: feeds every chunk of `input` to `work`, round by round,
/// until the input ends or the work stops the stage.
pub(crate) async fn run_stage<I, W>(mut input: I, work: &mut W) -> Result<(), Error>
where
    I: Input,
    W: Work<I::Chunk>,
{
    let mut budget = Budget::new();
    loop {
        let first = match work.timer() {
            None => input.recv().await,
            Some(timer) => {
                let fired = async {
                    timer.await;
                    None
                };
                match async { Some(input.recv().await) }.or(fired).await {
                    Some(first) => first,
                    None => {
                        work.on_timer().await?;
                        continue;
                    }
                }
            }
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = I::size(&chunk);
            if !work.chunk_now(&mut chunk)? {
                work.chunk(&mut chunk).await?;
            }
            input.recycle(chunk);
            if budget.spend(n) {
                break;
            }
            next = input.try_recv();
        }
        work.round_end().await?;
        budget.yield_if_spent().await;
    }
    work.input_end().await
}

/// Awaits `fut`, first handing on the outputs already in `out` if `fut` is
/// not ready at once, so that they are not held back while it waits.
/// Fails if the flush found the next stage gone.
pub(crate) async fn await_flushing<O, T>(
    fut: impl Future<Output = T>,
    out: &mut Outlet<O>,
) -> Result<T, Closed> {
    let mut fut = pin!(fut);
    if let Some(value) = poll_once(fut.as_mut()).await {
        return Ok(value);
    }
    out.flush().await?;
    Ok(fut.await)
}

/// What a stage does before it waits in the middle of an item: a stage
/// with an output hands on the outputs it has made, so that they are not
/// held back by the wait; a parallel stage's worker has nothing to hand on.
pub(crate) trait BeforeWait {
    /// Gets ready to wait; fails if the next stage has gone.
    async fn before_wait(&mut self) -> Result<(), Closed>;
}

impl<O> BeforeWait for Outlet<O> {
    async fn before_wait(&mut self) -> Result<(), Closed> {
        self.flush().await
    }
}
