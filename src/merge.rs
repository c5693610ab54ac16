//! Fan-in: `merge` joins several pipelines of one item type into one.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use async_channel::TryRecvError;

use crate::hop::{Inlet, Outlet};
use crate::run::Cell;
use crate::stage::Budget;
use crate::wiring::{Parts, Upstream};
use crate::{Error, Pipeline};

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
        return crate::from_iter(std::iter::empty()).fail(Error::ZeroBranches {
            stage: "merge".to_owned(),
        });
    };
    let (up, inlet) = first.wire().split();
    merge_into(up, std::iter::once(inlet), pipelines)
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
        let (up, inlet) = self.wire().split();
        let (other_up, other_inlet) = other.wire().split();
        let mut up = up;
        up.absorb(other_up);
        merge_into(up, [inlet, other_inlet], std::iter::empty::<Pipeline<T>>())
    }
}

/// Adds a merge stage after `up`, fed by `inlets` and by each of `more`,
/// whose stages join `up`'s.
pub(crate) fn merge_into<T: Send + 'static>(
    mut up: Upstream,
    inlets: impl IntoIterator<Item = Inlet<T>>,
    more: impl IntoIterator<Item = Pipeline<T>>,
) -> Pipeline<T> {
    let mut inlets: Vec<Inlet<T>> = inlets.into_iter().collect();
    for pipeline in more {
        let (other, inlet) = pipeline.wire().split();
        up.absorb(other);
        inlets.push(inlet);
    }
    let inputs = inlets.iter().map(Inlet::feed).collect();
    Pipeline::assemble(up, "merge", false, inputs, move |w| {
        for inlet in &mut inlets {
            inlet.attach(&w.cell);
        }
        Parts::single(Box::pin(async move {
            merge_loop(inlets, w.out, w.cell).await;
            Ok(())
        }))
    })
}

/// Moves chunks from every input to `out`, taking from each input in turn,
/// until every input has ended.
async fn merge_loop<T>(inlets: Vec<Inlet<T>>, mut out: Outlet<T>, cell: Arc<Cell>) {
    let mut inlets: Vec<Option<Inlet<T>>> = inlets.into_iter().map(Some).collect();
    let mut turn = 0;
    let mut budget = Budget::new();
    loop {
        // A chunk that is ready now, if any; else flush, then wait for one.
        let got = match take_ready(&mut inlets, &mut turn) {
            Some(got) => Some(got),
            None => {
                if out.flush().await.is_err() {
                    return;
                }
                budget.yield_if_spent().await;
                // One wait, however many inputs it is on.
                let _waiting = cell.waiting_to_receive();
                poll_fn(|cx| {
                    let n = inlets.len();
                    let mut live = false;
                    for i in (0..n).map(|i| (turn + i) % n) {
                        let Some(inlet) = &mut inlets[i] else {
                            continue;
                        };
                        match inlet.poll_recv(cx) {
                            Poll::Ready(Some(chunk)) => {
                                turn = i + 1;
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
                .await
            }
        };
        let Some((from, mut chunk)) = got else { break };
        let n = chunk.len();
        if out.put_all(&mut chunk).await.is_err() {
            return;
        }
        if let Some(inlet) = &mut inlets[from] {
            inlet.recycle(chunk);
        }
        if budget.spend(n) {
            if out.flush().await.is_err() {
                return;
            }
            budget.yield_if_spent().await;
        }
    }
    let _ = out.flush().await;
}

/// Takes a chunk that is waiting on some input, trying each in turn from
/// `turn`; inputs found closed and empty are let go.
fn take_ready<T>(inlets: &mut [Option<Inlet<T>>], turn: &mut usize) -> Option<(usize, Vec<T>)> {
    let n = inlets.len();
    for i in (0..n).map(|i| (*turn + i) % n) {
        let Some(inlet) = &mut inlets[i] else {
            continue;
        };
        match inlet.try_recv() {
            Ok(chunk) => {
                *turn = i + 1;
                return Some((i, chunk));
            }
            Err(TryRecvError::Closed) => inlets[i] = None,
            Err(TryRecvError::Empty) => {}
        }
    }
    None
}
