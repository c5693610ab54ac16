//! The loops that stages run: receive, work, send.
//!
//! Every loop batches naturally: after the first receive it takes every chunk
//! that is already waiting, and it flushes its output as soon as its input
//! has nothing ready, so batching adds no latency under light load.

use std::future::Future;
use std::pin::pin;

use futures_lite::future::{poll_once, yield_now};
use futures_lite::{FutureExt, Stream, StreamExt};

use crate::hop::{Inlet, Outlet};
use crate::run::{Cell, Signal};

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

/// A stage's input, read in batches: the first chunk of a batch is waited
/// for; the rest are the chunks already waiting, while the yield budget
/// lasts. A stage flushes its output at the end of each batch.
pub(crate) struct Batches<I> {
    input: Inlet<I>,
    budget: Budget,
}

impl<I> Batches<I> {
    pub(crate) fn new(input: Inlet<I>) -> Self {
        Batches {
            input,
            budget: Budget::new(),
        }
    }

    /// Waits for the chunk that starts the next batch; `None` once the
    /// input is closed and empty.
    pub(crate) async fn first(&mut self) -> Option<Vec<I>> {
        self.input.recv().await
    }

    /// Hands back a chunk whose `n` items were processed, and gives the
    /// next chunk of this batch, if one is waiting and the budget lasts.
    #[inline]
    pub(crate) fn next(&mut self, done: Vec<I>, n: usize) -> Option<Vec<I>> {
        self.input.recycle(done);
        if self.budget.spend(n) {
            return None;
        }
        self.input.try_recv().ok()
    }

    /// Ends a batch, yielding to the executor if the budget is spent.
    pub(crate) async fn end(&mut self) {
        self.budget.yield_if_spent().await;
    }
}

/// A source that drains an iterator, until it ends or `shutdown` is raised.
pub(crate) async fn from_iter<I: Iterator>(mut iter: I, out: Outlet<I::Item>, shutdown: &Signal) {
    let mut out = out.into_source();
    let mut budget = Budget::new();
    // `fill` stops short of a full chunk only when the iterator has ended.
    while !shutdown.is_raised() && out.fill(iter.by_ref()) {
        if out.flush().await.is_err() {
            return;
        }
        if budget.spend(out.limit()) {
            budget.yield_if_spent().await;
        }
    }
    let _ = out.flush().await;
}

/// A source that drains a stream, taking every item it has ready before it
/// flushes, until the stream ends or `shutdown` is raised.
pub(crate) async fn from_stream<S: Stream>(stream: S, out: Outlet<S::Item>, shutdown: &Signal) {
    let mut out = out.into_source();
    let mut stream = pin!(stream);
    let mut budget = Budget::new();
    loop {
        let stop = async {
            shutdown.wait().await;
            None
        };
        // `None` once shutdown is asked for, `Some(None)` at the stream's end.
        let Some(Some(first)) = async { Some(stream.next().await) }.or(stop).await else {
            break;
        };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if out.push(item) && out.flush().await.is_err() {
                return;
            }
            if budget.spend(1) || shutdown.is_raised() {
                break;
            }
            match poll_once(stream.next()).await {
                Some(Some(item)) => next = Some(item),
                Some(None) => {
                    let _ = out.flush().await;
                    return;
                }
                None => {}
            }
        }
        if out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    let _ = out.flush().await;
}

/// A stage that turns each input into at most one output with a sync
/// function: `map`, `filter`, `filter_map` and `inspect` all run this loop.
///
/// `apply` moves a run of inputs through the stage's function into the
/// output chunk. It is given no more inputs than the chunk has room for, so
/// the chunk can never overflow. The run is a plain `Drain` of the input
/// chunk (usually all of it), an iterator of exact length, so for `map`
/// `Vec::extend` writes the outputs without a check per item.
pub(crate) async fn each<I, O, F>(input: Inlet<I>, mut out: Outlet<O>, mut apply: F)
where
    F: FnMut(std::vec::Drain<'_, I>, &mut Outlet<O>),
{
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            let mut filtered = 0;
            while !chunk.is_empty() {
                if out.is_full() && out.flush().await.is_err() {
                    return;
                }
                let run = out.room().min(chunk.len());
                let before = out.len();
                apply(chunk.drain(..run), &mut out);
                filtered += run - (out.len() - before);
            }
            if filtered > 0 {
                Cell::add(&out.cell().filtered, filtered);
            }
            next = batches.next(chunk, n);
        }
        if out.flush().await.is_err() {
            return;
        }
        batches.end().await;
    }
}

/// A stage that turns each input into any number of outputs, flushing
/// whenever the output chunk fills, even in the middle of one input's
/// outputs.
pub(crate) async fn flat_map<I, O, It, F>(input: Inlet<I>, mut out: Outlet<O>, mut f: F)
where
    F: FnMut(I) -> It,
    It: IntoIterator<Item = O>,
{
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for item in chunk.drain(..) {
                let mut outputs = f(item).into_iter();
                while out.fill(outputs.by_ref()) {
                    if out.flush().await.is_err() {
                        return;
                    }
                }
                out.pass_one();
            }
            next = batches.next(chunk, n);
        }
        if out.flush().await.is_err() {
            return;
        }
        batches.end().await;
    }
}

/// A stage that maps each input with an async function.
///
/// A future that completes on its first poll is batched like a sync stage.
/// One that has to wait first flushes the outputs already made, so they do
/// not sit in the buffer for as long as the wait lasts.
pub(crate) async fn then<I, O, Fut, F>(input: Inlet<I>, mut out: Outlet<O>, mut f: F)
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = O>,
{
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for item in chunk.drain(..) {
                let Some(output) = run_async(f(item), &mut out).await else {
                    return;
                };
                if out.push(output) && out.flush().await.is_err() {
                    return;
                }
            }
            next = batches.next(chunk, n);
        }
        if out.flush().await.is_err() {
            return;
        }
        batches.end().await;
    }
}

/// Awaits `fut`, flushing `out` first if `fut` is not ready at once.
/// Returns `None` if the flush found the downstream stage gone.
pub(crate) async fn run_async<O, T>(
    fut: impl Future<Output = T>,
    out: &mut Outlet<O>,
) -> Option<T> {
    let mut fut = pin!(fut);
    if let Some(value) = poll_once(fut.as_mut()).await {
        return Some(value);
    }
    out.flush().await.ok()?;
    Some(fut.await)
}

/// A sink that folds every chunk into a state and returns the final state.
pub(crate) async fn fold_chunks<I, S, F>(input: Inlet<I>, cell: &Cell, mut state: S, mut f: F) -> S
where
    F: FnMut(S, std::vec::Drain<'_, I>) -> S,
{
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            state = f(state, chunk.drain(..));
            Cell::add(&cell.emitted, n);
            next = batches.next(chunk, n);
        }
        batches.end().await;
    }
    state
}

/// A sink that runs an async function on every item, one at a time.
pub(crate) async fn for_each_async<I, Fut, F>(input: Inlet<I>, cell: &Cell, mut f: F)
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for item in chunk.drain(..) {
                f(item).await;
                Cell::add(&cell.emitted, 1);
            }
            next = batches.next(chunk, n);
        }
        batches.end().await;
    }
}
