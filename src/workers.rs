//! The parts of a parallel stage: a dispatcher that hands items to workers,
//! the workers, and a collector that hands their outputs on.
//!
//! ```text
//!            ┌─▶ worker ─┐
//! input ─▶ dispatch ─▶ worker ─▶ collect ─▶ output
//!            └─▶ worker ─┘
//! ```
//!
//! The dispatcher and the collector are one task; each worker is a task of
//! its own, so CPU-heavy work spreads over a multi-threaded executor. Items
//! and outputs travel on bounded channels sized to the number of workers.
//! A worker is free again as soon as it has handed its output to the
//! collector, not once the output has left the stage, so N items stay in
//! flight while the next stage is slow, until the outputs waiting for it
//! fill their own bounded room.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::drive::drive_helper;
use crate::hop::{Inlet, Outlet};
use crate::join::StageFuture;
use crate::run::Ctx;
use crate::stage::Budget;

/// An item handed to a worker: its place in the input, a tag that comes
/// back when the worker is done with it (a key, for a keyed stage), and the
/// item.
pub(crate) type Task<G, T> = (u64, G, T);

/// One worker: takes items until there are no more, sends each output with
/// the item's place, and then gives the item's tag back through `freed`, to
/// tell the dispatcher it is free.
async fn worker<G, T, U, W, Fut>(
    work: Receiver<Task<G, T>>,
    done: Sender<(u64, U)>,
    freed: Sender<G>,
    f: Arc<W>,
) where
    W: Fn(T) -> Fut,
    Fut: Future<Output = U>,
{
    while let Ok((seq, tag, item)) = work.recv().await {
        let output = f(item).await;
        if done.send((seq, output)).await.is_err() {
            return;
        }
        // The channel has room for every item in flight, and nobody
        // listens once the dispatcher has ended.
        let _ = freed.send(tag).await;
    }
}

/// Builds `n` workers that share `f`, as helpers of the stage called
/// `stage`. Gives the channel to hand them work on, the channel their
/// outputs come back on, and the workers; each gives an item's tag back
/// through `freed` once its output is sent.
#[allow(clippy::type_complexity)]
pub(crate) fn crew<G, T, U, W, Fut>(
    n: usize,
    f: W,
    freed: &Sender<G>,
    stage: &str,
    ctx: &Arc<Ctx>,
) -> (
    Sender<Task<G, T>>,
    Receiver<(u64, Vec<U>)>,
    Vec<StageFuture>,
)
where
    G: Send + 'static,
    T: Send + 'static,
    U: Send + 'static,
    W: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<U>> + Send + 'static,
{
    let (work_tx, work_rx) = async_channel::bounded(n);
    let (done_tx, done_rx) = async_channel::bounded(n);
    let f = Arc::new(f);
    let workers = (0..n)
        .map(|_| {
            let work = worker(
                work_rx.clone(),
                done_tx.clone(),
                freed.clone(),
                Arc::clone(&f),
            );
            drive_helper(stage.to_owned(), Arc::clone(ctx), work)
        })
        .collect();
    (work_tx, done_rx, workers)
}

/// Hands each item to a worker once a worker is free: each worker gives a
/// permit back through `free` once it has handed its output on, so at most
/// as many items as there are permits are being worked on, whatever the
/// next stage does. For ordered output, an item also takes a place in
/// `window`, given back when its output leaves the stage: that bounds the
/// outputs that wait for a slow item before them.
pub(crate) async fn dispatch<T>(
    mut input: Inlet<T>,
    work: Sender<Task<(), Vec<T>>>,
    free: Receiver<()>,
    window: Option<Receiver<()>>,
    pieces: Pieces,
) {
    let mut seq = 0;
    while let Some(mut chunk) = input.recv().await {
        let size = pieces.size(chunk.len());
        while !chunk.is_empty() {
            let piece: Vec<T> = chunk.drain(..size.min(chunk.len())).collect();
            if free.recv().await.is_err() {
                return;
            }
            if let Some(window) = &window {
                if window.recv().await.is_err() {
                    return;
                }
            }
            if work.send((seq, (), piece)).await.is_err() {
                return;
            }
            seq += 1;
        }
        input.recycle(chunk);
    }
}

/// How many items go to a worker at once.
#[derive(Clone, Copy)]
pub(crate) struct Pieces {
    /// The most items in one piece.
    pub(crate) most: usize,
    pub(crate) workers: usize,
}

impl Pieces {
    /// The size of the pieces a chunk of `len` items is cut into: small
    /// enough that every worker gets about four, so that the work stays
    /// balanced when items take unequal times.
    fn size(self, len: usize) -> usize {
        len.div_ceil(4 * self.workers).clamp(1, self.most.max(1))
    }
}

/// What the keyed dispatcher waits for.
enum Event<T, K> {
    Chunk(Option<Vec<T>>),
    Freed(Option<K>),
}

/// Hands items to workers so that items with the same key are worked on one
/// at a time, in input order, and at most `n` items are in flight. An item
/// whose key is busy waits in its key's queue; at most `n` items wait so.
pub(crate) async fn dispatch_keyed<T, K, KF>(
    mut input: Inlet<T>,
    work: Sender<Task<K, T>>,
    freed: Receiver<K>,
    mut key: KF,
    n: usize,
) where
    K: Hash + Eq + Clone,
    KF: FnMut(&T) -> K,
{
    // Keys with an item in flight, each with the items waiting behind it.
    let mut busy: HashMap<K, VecDeque<T>> = HashMap::new();
    let (mut waiting, mut in_flight, mut seq) = (0, 0, 0);
    // An item whose key is free, waiting for a worker.
    let mut held: Option<(K, T)> = None;
    let mut current = Vec::new().into_iter();
    let mut open = true;
    loop {
        // Place the items at hand until one has to wait for a worker, or
        // the queues are full.
        loop {
            if held.is_none() && waiting < n {
                let Some(item) = current.next() else { break };
                let k = key(&item);
                match busy.get_mut(&k) {
                    Some(queue) => {
                        queue.push_back(item);
                        waiting += 1;
                        continue;
                    }
                    None => held = Some((k, item)),
                }
            }
            if in_flight >= n {
                break;
            }
            let Some((k, item)) = held.take() else { break };
            busy.insert(k.clone(), VecDeque::new());
            in_flight += 1;
            if work.send((seq, k, item)).await.is_err() {
                return;
            }
            seq += 1;
        }
        let idle = held.is_none() && current.len() == 0;
        if !open && idle && waiting == 0 {
            // Everything is handed out; the workers finish on their own.
            return;
        }
        let freed_one = async { Event::Freed(freed.recv().await.ok()) };
        let event = if open && idle && waiting < n {
            freed_one
                .or(async { Event::Chunk(input.recv().await) })
                .await
        } else {
            freed_one.await
        };
        match event {
            Event::Chunk(Some(chunk)) => current = chunk.into_iter(),
            Event::Chunk(None) => open = false,
            // Every worker has gone: the run is being stopped.
            Event::Freed(None) => return,
            Event::Freed(Some(k)) => {
                in_flight -= 1;
                match busy.get_mut(&k).and_then(VecDeque::pop_front) {
                    Some(item) => {
                        waiting -= 1;
                        in_flight += 1;
                        if work.send((seq, k, item)).await.is_err() {
                            return;
                        }
                        seq += 1;
                    }
                    None => {
                        busy.remove(&k);
                    }
                }
            }
        }
    }
}

/// Hands the workers' outputs on: in input order when `ordered`, else as
/// they come. With `window`, each output handed on gives its place back to
/// the dispatcher, before the collector waits for room downstream.
pub(crate) async fn collect<U>(
    done: Receiver<(u64, Vec<U>)>,
    mut out: Outlet<U>,
    window: Option<Sender<()>>,
    ordered: bool,
) {
    // Outputs that came early, by place after `next`.
    let mut early: VecDeque<Option<Vec<U>>> = VecDeque::new();
    let mut next: u64 = 0;
    let mut budget = Budget::new();
    while let Ok(first) = done.recv().await {
        let mut got = Some(first);
        while let Some((seq, output)) = got.take() {
            let mut ready = None;
            if ordered {
                // The window keeps every place within reach.
                let slot = usize::try_from(seq - next).unwrap_or(usize::MAX);
                if early.len() <= slot {
                    early.resize_with(slot + 1, || None);
                }
                early[slot] = Some(output);
            } else {
                ready = Some(output);
            }
            loop {
                let output = match ready.take() {
                    Some(output) => output,
                    None if early.front().is_some_and(Option::is_some) => {
                        next += 1;
                        match early.pop_front() {
                            Some(Some(output)) => output,
                            _ => break,
                        }
                    }
                    None => break,
                };
                if let Some(window) = &window {
                    let _ = window.try_send(());
                }
                for output in output {
                    if out.push(output) && out.flush().await.is_err() {
                        return;
                    }
                }
            }
            if budget.spend(1) {
                break;
            }
            got = done.try_recv().ok();
        }
        if out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    let _ = out.flush().await;
}
