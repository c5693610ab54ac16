//! Fan-in: `merge` joins several pipelines of one item type into one.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use async_channel::TryRecvError;

use crate::engine::hop::{Chunk, Inlet, Outlet};
use crate::engine::stage_loop::{Input, Work, run_stage};
use crate::engine::stats::StageStats;
use crate::error::Error;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::{Graph, StageTasks};
use crate::stages::source::from_iter;

/// Merges `pipelines` into one pipeline, whose next stage gets every item
/// of each of them, as they come. Each input keeps its own order; between
/// inputs, a merge takes from each in turn, so none is starved.
///
/// The pipelines become one, with one run, one
/// [`Control`](crate::Control) and one report. Take the control after the
/// merge: one taken from an input before it still stops the whole run, but
/// its report lists only what was built when the merge took it in. An empty
/// list gives [`Error::ZeroBranches`].
///
/// # Examples
///
/// ```
/// let evens = flowgate::from_iter((0..10u32).filter(|x| x % 2 == 0));
/// let odds = flowgate::from_iter((0..10u32).filter(|x| x % 2 == 1)).map(|x| x * 100);
/// let mut all: Vec<u32> = flowgate::merge([evens, odds]).collect().run()?;
/// all.sort();
/// assert_eq!(all, [0, 2, 4, 6, 8, 100, 300, 500, 700, 900]);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub fn merge<T, I>(pipelines: I) -> Pipeline<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = Pipeline<T>>,
{
    let mut pipelines = pipelines.into_iter();
    let Some(first) = pipelines.next() else {
        return from_iter(std::iter::empty()).fail(Error::ZeroBranches {
            stage: "merge".to_owned(),
        });
    };
    let (graph, inlet) = first.wire();
    merge_into(graph, std::iter::once(inlet), pipelines)
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Merges `other` into this pipeline: the next stage gets the items of
    /// both, as they come. See [`merge`](crate::merge()) for more inputs.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = flowgate::from_iter(["a1", "a2"]);
    /// let b = flowgate::from_iter(["b1"]);
    /// let mut out: Vec<&str> = a.merge(b).collect().run()?;
    /// out.sort();
    /// assert_eq!(out, ["a1", "a2", "b1"]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn merge<S2>(self, other: Pipeline<T, S2>) -> Pipeline<T> {
        let (mut graph, inlet) = self.wire();
        let (other, other_inlet) = other.wire();
        graph.absorb(other);
        merge_into(
            graph,
            [inlet, other_inlet],
            std::iter::empty::<Pipeline<T>>(),
        )
    }
}

/// Adds a merge stage after `graph`, fed by `inlets` and by each of `more`,
/// whose stages join `graph`.
pub(super) fn merge_into<T: Send + 'static>(
    mut graph: Graph,
    inlets: impl IntoIterator<Item = Inlet<T>>,
    more: impl IntoIterator<Item = Pipeline<T>>,
) -> Pipeline<T> {
    let mut inlets: Vec<Inlet<T>> = inlets.into_iter().collect();
    for pipeline in more {
        let (other, inlet) = pipeline.wire();
        graph.absorb(other);
        inlets.push(inlet);
    }
    let inputs = inlets.iter().map(Inlet::input_hop).collect();
    Pipeline::assemble(graph, "merge", false, inputs, move |setup| {
        for inlet in &mut inlets {
            inlet.attach(&setup.stats);
        }
        let input = MergedInlets {
            inlets: inlets.into_iter().map(Some).collect(),
            turn: 0,
            last: 0,
            stats: setup.stats,
        };
        StageTasks::single(Box::pin(async move {
            run_stage(input, &mut PassOn { out: setup.out }).await
        }))
    })
}

/// The inputs of a merge, read in turn: each receive tries the inputs from
/// the one after the last that gave a chunk, so none is starved.
struct MergedInlets<T> {
    /// `None` once that input has ended.
    inlets: Vec<Option<Inlet<T>>>,
    /// The input to try first.
    turn: usize,
    /// The input the last chunk came from, which takes its buffer back.
    last: usize,
    stats: Arc<StageStats>,
}

impl<T> Input for MergedInlets<T> {
    type Chunk = Chunk<T>;

    /// One wait, however many inputs it is on.
    async fn recv(&mut self) -> Option<Chunk<T>> {
        if let Some(chunk) = self.try_recv() {
            return Some(chunk);
        }
        let _waiting = self.stats.waiting_to_receive();
        let (inlets, turn) = (&mut self.inlets, &mut self.turn);
        let got = poll_fn(|cx| {
            let n = inlets.len();
            let mut live = false;
            for i in (0..n).map(|i| (*turn + i) % n) {
                let Some(inlet) = &mut inlets[i] else {
                    continue;
                };
                match inlet.poll_recv(cx) {
                    Poll::Ready(Some(chunk)) => {
                        *turn = i + 1;
                        return Poll::Ready(Some((i, chunk)));
                    }
                    Poll::Ready(None) => inlets[i] = None,
                    Poll::Pending => live = true,
                }
            }
            if live {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await;
        let (from, chunk) = got?;
        self.last = from;
        Some(chunk)
    }

    /// Takes a chunk that is waiting on some input, trying each in turn;
    /// inputs found closed and empty are let go.
    fn try_recv(&mut self) -> Option<Chunk<T>> {
        let n = self.inlets.len();
        for i in (0..n).map(|i| (self.turn + i) % n) {
            let Some(inlet) = &mut self.inlets[i] else {
                continue;
            };
            match inlet.try_recv() {
                Ok(chunk) => {
                    self.turn = i + 1;
                    self.last = i;
                    return Some(chunk);
                }
                Err(TryRecvError::Closed) => self.inlets[i] = None,
                Err(TryRecvError::Empty) => {}
            }
        }
        None
    }

    fn recycle(&mut self, chunk: Chunk<T>) {
        if let Some(Some(inlet)) = self.inlets.get_mut(self.last) {
            inlet.recycle(chunk);
        }
    }

    fn size(chunk: &Chunk<T>) -> usize {
        chunk.items.len()
    }
}

/// The work of a merge: every chunk is handed on as it is.
struct PassOn<T> {
    out: Outlet<T>,
}

impl<T> Work<Chunk<T>> for PassOn<T> {
    async fn chunk(&mut self, chunk: &mut Chunk<T>) -> Result<(), Error> {
        Ok(self.out.put_all(chunk).await?)
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}
