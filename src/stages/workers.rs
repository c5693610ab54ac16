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

use crate::ack::fate::{Fate, Tag};
use crate::engine::hop::{Chunk, Inlet, Outlet, Tags};
use crate::engine::stage_loop::{Input, Work};
use crate::error::Error;
use crate::pipeline::graph::WorkerTask;

/// Work handed to a worker: its place in the input, a token that comes
/// back when the worker is done with it (a key, for a keyed stage), the
/// item (or, for a windowed stage, a slice of items), and the items' tags,
/// if they have any, which go round the worker to its outputs.
pub(super) type Assignment<G, T> = (u64, G, T, Vec<Tag>);

/// What a worker made of one assignment: the outputs, the tags of the
/// items they were made from, and the error that fails the stage, if an
/// item failed so (the items after it in the assignment are dropped).
pub(super) type Made<U> = (Vec<U>, Vec<Tag>, Option<Box<Error>>);

/// A worker's outputs for one assignment, with the assignment's place.
pub(super) type Finished<U> = (u64, Made<U>);

/// One worker: takes items until there are no more, sends each output with
/// the item's place, and then gives the item's token back through `freed`,
/// to tell the dispatcher it is free. `f` gets the items with their tags,
/// and settles the tags of items that make no output itself.
async fn worker<G, T, U, W, Fut>(
    work: Receiver<Assignment<G, T>>,
    done: Sender<Finished<U>>,
    freed: Sender<G>,
    f: Arc<W>,
) where
    W: Fn(T, Vec<Tag>) -> Fut,
    Fut: Future<Output = Made<U>>,
{
    while let Ok((seq, token, item, acks)) = work.recv().await {
        let made = f(item, acks).await;
        if done.send((seq, made)).await.is_err() {
            return;
        }
        // The channel has room for every item in flight, and nobody
        // listens once the dispatcher has ended.
        let _ = freed.send(token).await;
    }
}

/// Builds `n` workers that share `f`. Gives the channel to hand them work
/// on, the channel their outputs come back on, and the workers, to be
/// driven beside the stage; each gives an item's token back through
/// `freed` once its output is sent.
#[allow(clippy::type_complexity)]
pub(super) fn crew<G, T, U, W, Fut>(
    n: usize,
    f: W,
    freed: &Sender<G>,
) -> (
    Sender<Assignment<G, T>>,
    Receiver<Finished<U>>,
    Vec<WorkerTask>,
)
where
    G: Send + 'static,
    T: Send + 'static,
    U: Send + 'static,
    W: Fn(T, Vec<Tag>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Made<U>> + Send + 'static,
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
            Box::pin(work) as WorkerTask
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
pub(super) async fn dispatch<T>(
    mut input: Inlet<T>,
    work: Sender<Assignment<(), Vec<T>>>,
    free: Receiver<()>,
    window: Option<Receiver<()>>,
    slices: Slices,
) {
    let mut seq = 0;
    while let Some(mut chunk) = input.recv().await {
        let size = slices.size(chunk.items.len());
        let tagged = chunk.is_tagged();
        while !chunk.items.is_empty() {
            let end = size.min(chunk.items.len());
            let slice: Vec<T> = chunk.items.drain(..end).collect();
            let acks = if tagged {
                chunk.parts().1.drain(..end).collect()
            } else {
                Vec::new()
            };
            if free.recv().await.is_err() {
                return;
            }
            if let Some(window) = &window {
                if window.recv().await.is_err() {
                    return;
                }
            }
            if work.send((seq, (), slice, acks)).await.is_err() {
                return;
            }
            seq += 1;
        }
        input.recycle(chunk);
    }
}

/// How many items go to a worker at once.
#[derive(Clone, Copy)]
pub(super) struct Slices {
    /// The most items in one slice.
    pub(crate) most: usize,
    pub(crate) workers: usize,
}

impl Slices {
    /// The size of the slices a chunk of `len` items is cut into: small
    /// enough that every worker gets about four, so that the work stays
    /// balanced when items take unequal times.
    fn size(self, len: usize) -> usize {
        len.div_ceil(4 * self.workers).clamp(1, self.most.max(1))
    }
}

/// What the keyed dispatcher waits for.
enum Event<T, K> {
    Chunk(Option<Chunk<T>>),
    Freed(Option<K>),
}

/// Hands items to workers so that items with the same key are worked on one
/// at a time, in input order, and at most `n` items are in flight. An item
/// whose key is busy waits in its key's queue; at most `n` items wait so.
pub(super) async fn dispatch_keyed<T, K, KF>(
    mut input: Inlet<T>,
    work: Sender<Assignment<K, T>>,
    freed: Receiver<K>,
    mut key: KF,
    n: usize,
) where
    K: Hash + Eq + Clone,
    KF: FnMut(&T) -> K,
{
    // Keys with an item in flight, each with the items waiting behind it.
    let mut busy: HashMap<K, VecDeque<(T, Vec<Tag>)>> = HashMap::new();
    let (mut waiting, mut in_flight, mut seq) = (0, 0, 0);
    // An item whose key is free, waiting for a worker.
    let mut held: Option<(K, T, Vec<Tag>)> = None;
    let mut current = Vec::new().into_iter();
    let mut current_tags = Tags::empty();
    let mut open = true;
    loop {
        // Place the items at hand until one has to wait for a worker, or
        // the queues are full.
        loop {
            if held.is_none() && waiting < n {
                let Some(item) = current.next() else { break };
                let acks: Vec<Tag> = current_tags.next().into_iter().collect();
                let k = key(&item);
                match busy.get_mut(&k) {
                    Some(queue) => {
                        queue.push_back((item, acks));
                        waiting += 1;
                        continue;
                    }
                    None => held = Some((k, item, acks)),
                }
            }
            if in_flight >= n {
                break;
            }
            let Some((k, item, acks)) = held.take() else {
                break;
            };
            busy.insert(k.clone(), VecDeque::new());
            in_flight += 1;
            if work.send((seq, k, item, acks)).await.is_err() {
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
            Event::Chunk(Some(mut chunk)) => {
                current_tags = chunk.take_tags();
                current = chunk.items.into_iter();
            }
            Event::Chunk(None) => open = false,
            // Every worker has gone: the run is being stopped.
            Event::Freed(None) => return,
            Event::Freed(Some(k)) => {
                in_flight -= 1;
                match busy.get_mut(&k).and_then(VecDeque::pop_front) {
                    Some((item, acks)) => {
                        waiting -= 1;
                        in_flight += 1;
                        if work.send((seq, k, item, acks)).await.is_err() {
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

/// The workers' outputs, as the collector's input: each receive is one
/// worker's output for one assignment, with the assignment's place.
pub(crate) struct Done<U>(pub(crate) Receiver<Finished<U>>);

impl<U> Input for Done<U> {
    type Chunk = Finished<U>;

    async fn recv(&mut self) -> Option<Finished<U>> {
        self.0.recv().await.ok()
    }

    fn try_recv(&mut self) -> Option<Finished<U>> {
        self.0.try_recv().ok()
    }

    fn recycle(&mut self, _: Finished<U>) {}

    /// One assignment, however many outputs it made.
    fn size(_: &Finished<U>) -> usize {
        1
    }
}

/// The work of a parallel stage's collector: it hands the workers' outputs
/// on, in input order when `ordered`, else as they come. With `window`,
/// each output handed on gives its place back to the dispatcher, before the
/// collector waits for room downstream.
pub(super) struct Collect<U> {
    out: Outlet<U>,
    window: Option<Sender<()>>,
    ordered: bool,
    /// Outputs that came early, by place after `next`.
    early: VecDeque<Option<Made<U>>>,
    /// The place of the next output to hand on, in input order.
    next: u64,
}

impl<U> Collect<U> {
    /// A collector with nothing waiting.
    pub(crate) fn new(out: Outlet<U>, window: Option<Sender<()>>, ordered: bool) -> Self {
        Collect {
            out,
            window,
            ordered,
            early: VecDeque::new(),
            next: 0,
        }
    }

    /// Hands on the outputs of one assignment, with the tags of the items
    /// they were made from: one output per item, or any number from one
    /// item (each then carries a copy of its tag, as with `flat_map`); then
    /// fails the stage if an item failed so.
    async fn hand_on(&mut self, made: Made<U>) -> Result<(), Error> {
        let (outputs, acks, failure) = made;
        if let Some(window) = &self.window {
            let _ = window.try_send(());
        }
        if acks.len() == outputs.len() {
            for (output, tag) in outputs.into_iter().zip(acks) {
                if self.out.push_tagged(output, Some(tag)) {
                    self.out.flush().await?;
                }
            }
        } else {
            let mut acks = acks.into_iter();
            let tag = acks.next();
            debug_assert!(acks.next().is_none(), "several items, not one output each");
            for output in outputs {
                if self.out.push_tagged(output, tag.clone()) {
                    self.out.flush().await?;
                }
            }
            if let Some(tag) = tag {
                tag.resolve(Fate::Filtered);
            }
        }
        failure.map_or(Ok(()), |err| Err(*err))
    }
}

impl<U> Work<Finished<U>> for Collect<U> {
    async fn chunk(&mut self, done: &mut Finished<U>) -> Result<(), Error> {
        let seq = done.0;
        let made = std::mem::take(&mut done.1);
        if !self.ordered {
            return self.hand_on(made).await;
        }
        // The window keeps every place within reach.
        let slot = usize::try_from(seq - self.next).unwrap_or(usize::MAX);
        if self.early.len() <= slot {
            self.early.resize_with(slot + 1, || None);
        }
        self.early[slot] = Some(made);
        while self.early.front().is_some_and(Option::is_some) {
            self.next += 1;
            if let Some(Some(made)) = self.early.pop_front() {
                self.hand_on(made).await?;
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}
