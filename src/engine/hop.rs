//! A hop: the bounded link between two stages.
//!
//! Items cross a hop in chunks ([`Chunk`]) over a bounded `async_channel`,
//! so one channel operation moves many items. A chunk of items that carry
//! acknowledgements also carries their tags, one per item, beside them; a
//! chunk of items without any carries no tags at all, so a pipeline without
//! acknowledgements pays one check per chunk for them. The hop's capacity still counts
//! items: a [`Gauge`] holds the number of items sent and not yet received,
//! and a sender waits until its whole chunk fits.
//!
//! A stage's waits on its hops are timed here, and only when it has to
//! wait: see `engine::clock`.
//!
//! Emptied buffers travel back to the sender on a second bounded channel,
//! the *return channel*. It has two jobs: buffers are reused instead of
//! allocated per chunk, and every receive sends on it, which wakes a sender
//! waiting for room.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender, TryRecvError, TrySendError};
use futures_lite::Stream;

use crate::ack::fate::{Fate, Run, Tag, resolve_all};
use crate::engine::drive::stopped;
use crate::engine::gauge::Gauge;
use crate::engine::stats::{InputHop, StageStats};
use crate::error::Error;

/// The most chunks one hop holds at once, whatever its item capacity.
///
/// It bounds the memory of an idle hop (each slot is allocated up front)
/// while still letting small chunks fill a large capacity.
const MAX_CHUNKS: usize = 16;

/// The downstream side of a hop has gone: its receiving stage has ended.
#[derive(Debug)]
pub(crate) struct Closed;

impl From<Closed> for Error {
    /// The next stage has gone: the stage that found it so is stopped, not
    /// failed, so `?` on a send ends it as stopped.
    fn from(_: Closed) -> Self {
        stopped()
    }
}

/// What a stage does when its output hop is full. Set it with
/// [`Pipeline::overflow`](crate::Pipeline::overflow).
///
/// Only [`Wait`](Overflow::Wait), the default, keeps flowgate's promise
/// that no item is lost: the other two give it up for that hop, on
/// purpose, for data where the newest items matter more than every item
/// (telemetry, prices, positions). Each item they let go is counted in the
/// report as [`shed`](crate::StageReport::shed) by the stage that sent it,
/// and an item with an acknowledgement is told it was dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room: backpressure, and no item lost. The default.
    #[default]
    Wait,
    /// Make room by letting go of the oldest items in the hop, those the
    /// next stage would have taken first.
    DropOldest,
    /// Let go of the items that do not fit: the newest, those being sent.
    DropNewest,
}

/// The most item slots a chunk buffer reserves up front.
const MAX_RESERVE: usize = 4096;

/// The items that cross a hop at once, with their tags: no tags when no
/// item carries an acknowledgement, and otherwise tags that cover every
/// item, in order (an item without an acknowledgement has a tag with no
/// group): one per item, or runs of items from consecutive places of one
/// group, which move as one.
///
/// The tags are boxed, so that a chunk without them, which is what most
/// pipelines send, is no bigger on the channel than one more word.
pub(crate) struct Chunk<T> {
    pub(crate) items: Vec<T>,
    /// `None`, or tags that cover the items (or none, in a spare chunk,
    /// kept for its buffer).
    tags: Option<Box<Tagging>>,
}

/// The tags of a chunk's items.
pub(crate) enum Tagging {
    /// One tag per item.
    Each(Vec<Tag>),
    /// Runs that cover the items in order.
    Runs(Vec<Run>),
}

impl<T> Chunk<T> {
    /// A chunk of `items` with `tags` (one each) or `runs`, or without tags
    /// if both are empty.
    #[inline]
    fn new(items: Vec<T>, tags: Vec<Tag>, runs: Vec<Run>) -> Self {
        let tags = if !tags.is_empty() {
            Some(Box::new(Tagging::Each(tags)))
        } else if !runs.is_empty() {
            Some(Box::new(Tagging::Runs(runs)))
        } else {
            None
        };
        Chunk { items, tags }
    }

    /// Whether the items carry acknowledgements.
    #[inline]
    pub(crate) fn is_tagged(&self) -> bool {
        match self.tags.as_deref() {
            None => false,
            Some(Tagging::Each(tags)) => !tags.is_empty(),
            Some(Tagging::Runs(runs)) => !runs.is_empty(),
        }
    }

    /// Gives the items one tag each, if their tags are runs.
    fn tag_each(&mut self) -> &mut Vec<Tag> {
        let tagging = self
            .tags
            .get_or_insert_with(|| Box::new(Tagging::Each(Vec::new())));
        if let Tagging::Runs(runs) = &mut **tagging {
            let tags = std::mem::take(runs)
                .into_iter()
                .flat_map(Run::into_tags)
                .collect();
            **tagging = Tagging::Each(tags);
        }
        match &mut **tagging {
            Tagging::Each(tags) => tags,
            Tagging::Runs(_) => unreachable!("made `Each` just above"),
        }
    }

    /// The items and their tags, one each, for a stage that takes both in
    /// step; the tags are empty if the items have none.
    #[inline]
    pub(crate) fn parts(&mut self) -> (&mut Vec<T>, &mut Vec<Tag>) {
        self.tag_each();
        let tags = match self.tags.as_deref_mut() {
            Some(Tagging::Each(tags)) => tags,
            _ => unreachable!("made `Each` by `tag_each`"),
        };
        (&mut self.items, tags)
    }

    /// The runs of tags that cover the first `n` items, if the chunk's tags
    /// are runs; they leave the chunk.
    pub(crate) fn take_runs_front(&mut self, n: usize) -> Option<Vec<Run>> {
        let Some(Tagging::Runs(runs)) = self.tags.as_deref_mut() else {
            return None;
        };
        // The runs wholly inside the first `n` items move out in one drain;
        // the one across the boundary is split.
        let mut whole = 0;
        let mut left = n;
        while whole < runs.len() && runs[whole].len() <= left {
            left -= runs[whole].len();
            whole += 1;
        }
        let mut front: Vec<Run> = runs.drain(..whole).collect();
        if left > 0 {
            if let Some(across) = runs.first_mut() {
                front.push(across.split_front(left));
            }
        }
        Some(front)
    }

    /// Records every item's tag as `fate`, and lets go of the tags.
    pub(crate) fn resolve_all(&mut self, fate: Fate) {
        match self.tags.take().map(|tags| *tags) {
            None => {}
            Some(Tagging::Each(tags)) => resolve_all(tags.into_iter(), fate),
            Some(Tagging::Runs(runs)) => runs.into_iter().for_each(|run| run.resolve_all(fate)),
        }
    }

    /// The items' tags, as they are; the chunk is left without tags.
    pub(crate) fn take_tagging(&mut self) -> Option<Tagging> {
        self.tags.take().map(|tags| *tags)
    }

    /// Gives the items the tags `tagging`, as another chunk's items had
    /// them: for a stage whose every input makes one output.
    #[inline]
    pub(crate) fn set_tagging(&mut self, tagging: Option<Tagging>) {
        self.tags = tagging.map(Box::new);
    }

    /// The tags of the items, one for each, as an iterator that gives
    /// `None` for every item when the chunk has no tags. Leaves the chunk
    /// without tags.
    #[inline]
    pub(crate) fn take_tags(&mut self) -> Tags {
        if self.tags.is_none() {
            return Tags::empty();
        }
        let tags = std::mem::take(self.tag_each());
        self.tags = None;
        Tags(tags.into_iter())
    }

    /// Takes the tags' buffer, emptied, to be reused.
    fn take_tag_buffer(&mut self) -> Vec<Tag> {
        match self.tags.take().map(|tags| *tags) {
            Some(Tagging::Each(mut tags)) => {
                tags.clear();
                tags
            }
            _ => Vec::new(),
        }
    }
}

impl<T> Default for Chunk<T> {
    fn default() -> Self {
        Chunk {
            items: Vec::new(),
            tags: None,
        }
    }
}

/// The tags of a chunk's items, taken in order; `None` for every item of
/// a chunk without tags.
pub(crate) struct Tags(std::vec::IntoIter<Tag>);

impl Tags {
    /// The tags of no items.
    pub(crate) fn empty() -> Tags {
        Tags(Vec::new().into_iter())
    }
}

impl Iterator for Tags {
    type Item = Tag;

    /// The next item's tag, if the chunk has tags.
    #[inline]
    fn next(&mut self) -> Option<Tag> {
        self.0.next()
    }
}

/// Creates a hop holding at most `capacity` items, sent in chunks of at most
/// `chunk_limit` items, by the stage whose stats are `stats`.
///
/// Both must be at least 1; the builder checks this before calling. A chunk
/// limit above the capacity is lowered to it, as a larger chunk could never
/// fit. The receiving stage attaches its own stats with [`Inlet::attach`].
pub(crate) fn hop<T>(
    capacity: usize,
    chunk_limit: usize,
    overflow: Overflow,
    stats: Arc<StageStats>,
) -> (Outlet<T>, Inlet<T>) {
    debug_assert!(capacity > 0 && chunk_limit > 0);
    let slots = capacity.min(MAX_CHUNKS);
    let (chunk_tx, chunk_rx) = async_channel::bounded(slots);
    let limit = chunk_limit.min(capacity);
    // Room for the buffers of as many full chunks as the hop holds, the one
    // the receiver has in hand and one more: every buffer of a hop that
    // flows in full chunks comes back to be reused. A buffer that finds the
    // return channel full is freed; the wake-up it carried is not lost, as
    // a full return channel already holds one for the sender.
    let spare_slots = (capacity / limit).min(slots) + 2;
    let (spare_tx, spare_rx) = async_channel::bounded(spare_slots);
    let gauge = Gauge::new(capacity);
    let inlet = Inlet {
        chunks: Box::pin(chunk_rx.clone()),
        spares: spare_tx,
        gauge: Arc::clone(&gauge),
        spare: Chunk::default(),
        stats: None,
        from: Arc::clone(&stats),
    };
    let oldest = (overflow == Overflow::DropOldest).then(|| chunk_rx.clone());
    let outlet = Outlet {
        overflow,
        oldest,
        chunks: chunk_tx,
        spares: spare_rx,
        gauge,
        limit,
        buf: Vec::new(),
        tags: Vec::new(),
        runs: Vec::new(),
        run_items: 0,
        stats,
        source: false,
        passing: 0,
    };
    (outlet, inlet)
}

/// The sending side of a hop, owned by the upstream stage.
///
/// Items are pushed into a local buffer; [`Outlet::flush`] sends the buffer
/// as one chunk, and counts it in the stage's stats once it is sent.
pub(crate) struct Outlet<T> {
    /// What to do when the hop is full.
    overflow: Overflow,
    /// For [`Overflow::DropOldest`], a receiving side of the hop, to take
    /// the oldest chunks out of it.
    oldest: Option<Receiver<Chunk<T>>>,
    chunks: Sender<Chunk<T>>,
    spares: Receiver<Chunk<T>>,
    gauge: Arc<Gauge>,
    limit: usize,
    buf: Vec<T>,
    /// The tags of the items in `buf`: none, or one per item in `tags`, or
    /// runs in `runs` that cover `run_items` of them (never both).
    tags: Vec<Tag>,
    runs: Vec<Run>,
    run_items: usize,
    stats: Arc<StageStats>,
    /// A source's outlet also counts the items it sends as received.
    source: bool,
    /// Inputs of an expanding stage whose outputs are all in `buf`: they
    /// count as passed once `buf` is sent.
    passing: u64,
}

impl<T> Outlet<T> {
    /// Makes this the outlet of a source, which counts every item pushed
    /// into it as received, even if the item is never sent.
    pub(crate) fn into_source(mut self) -> Self {
        self.source = true;
        self
    }

    /// The stats of the stage that owns this outlet.
    pub(crate) fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// How many items the chunk being built holds.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Records that one input of an expanding stage has all its outputs in
    /// the chunk being built.
    #[inline]
    pub(crate) fn pass_one(&mut self) {
        self.passing += 1;
    }

    /// Records that `n` inputs have all their outputs in the chunk being
    /// built.
    #[inline]
    pub(crate) fn pass(&mut self, n: usize) {
        self.passing += n as u64;
    }

    /// Adds an item to the chunk being built. Returns `true` when the chunk
    /// has reached the chunk limit and must be flushed before the next push.
    #[inline]
    pub(crate) fn push(&mut self, item: T) -> bool {
        self.buf.push(item);
        if self.is_tagged() {
            self.align();
        }
        self.buf.len() >= self.limit
    }

    /// Whether the chunk being built has tags.
    #[inline]
    fn is_tagged(&self) -> bool {
        !self.tags.is_empty() | !self.runs.is_empty()
    }

    /// Adds an item with its tag, if it has one; see [`Outlet::push`].
    #[inline]
    pub(crate) fn push_tagged(&mut self, item: T, tag: Option<Tag>) -> bool {
        match tag {
            Some(tag) => {
                self.tag_each();
                self.align();
                self.buf.push(item);
                self.tags.push(tag);
                self.buf.len() >= self.limit
            }
            None => self.push(item),
        }
    }

    /// Gives the items already in the chunk one tag each, if their tags
    /// are runs.
    fn tag_each(&mut self) {
        if !self.runs.is_empty() {
            let runs = std::mem::take(&mut self.runs);
            self.tags.extend(runs.into_iter().flat_map(Run::into_tags));
            self.run_items = 0;
        }
    }

    /// Gives the untagged items already in the chunk tags with no group, so
    /// that tags can be added beside the next items.
    #[inline]
    fn align(&mut self) {
        if !self.runs.is_empty() {
            if self.run_items < self.buf.len() {
                self.push_run(Run::untagged(self.buf.len() - self.run_items));
            }
        } else if self.tags.len() < self.buf.len() {
            self.tags.resize_with(self.buf.len(), Tag::none);
        }
    }

    /// Adds a run of tags after those there are, joined to the last if it
    /// carries on from it.
    fn push_run(&mut self, run: Run) {
        self.run_items += run.len();
        let run = match self.runs.last_mut() {
            Some(last) => match last.join(run) {
                Ok(()) => return,
                Err(run) => run,
            },
            None => run,
        };
        self.runs.push(run);
    }

    /// Fills the chunk being built from `items`, stopping when it is full.
    /// Returns `true` when the chunk is full and must be flushed.
    ///
    /// Runs as one tight loop, which is where a stage spends its time.
    #[inline]
    pub(crate) fn fill(&mut self, items: impl Iterator<Item = T>) -> bool {
        let room = self.limit - self.buf.len();
        self.buf.extend(items.take(room));
        if self.is_tagged() {
            self.align();
        }
        self.buf.len() >= self.limit
    }

    /// Appends `items`, which the caller has sized to fit the room left.
    #[inline]
    pub(crate) fn extend(&mut self, items: impl Iterator<Item = T>) {
        self.buf.extend(items);
        if self.is_tagged() {
            self.align();
        }
        debug_assert!(self.buf.len() <= self.limit);
    }

    /// Appends `items` with their tags, one each, sized by the caller to
    /// fit the room left.
    pub(crate) fn extend_tagged(
        &mut self,
        items: impl Iterator<Item = T>,
        tags: impl Iterator<Item = Tag>,
    ) {
        self.tag_each();
        self.align();
        self.buf.extend(items);
        self.tags.extend(tags);
        debug_assert_eq!(self.buf.len(), self.tags.len());
        debug_assert!(self.buf.len() <= self.limit);
    }

    /// Gives the last `n` items appended (untagged) the tags `tags`, one
    /// each: for a source whose items' tags are made once they are in.
    pub(crate) fn tag_last(&mut self, n: usize, tags: impl Iterator<Item = Tag>) {
        self.tag_each();
        let start = self.buf.len() - n;
        if self.tags.len() > start {
            self.tags.truncate(start);
        } else {
            self.tags.resize_with(start, Tag::none);
        }
        self.tags.extend(tags);
        debug_assert_eq!(self.buf.len(), self.tags.len());
    }

    /// Gives the last `n` items appended (untagged) the run of tags `run`:
    /// for a source whose items' tags are made once they are in.
    pub(crate) fn tag_last_run(&mut self, n: usize, run: Run) {
        if !self.tags.is_empty() {
            return self.tag_last(n, run.into_tags());
        }
        let before = self.buf.len() - n;
        if self.run_items < before {
            self.push_run(Run::untagged(before - self.run_items));
        }
        self.push_run(run);
        debug_assert_eq!(self.run_items, self.buf.len());
    }

    /// Runs `fill`, which appends one output per item that `runs` cover,
    /// and gives those outputs the runs' tags, in order, as runs: one
    /// reference to a group for a run of items, not one per item.
    pub(crate) fn with_runs<R>(&mut self, runs: Vec<Run>, fill: impl FnOnce(&mut Self) -> R) -> R {
        if !self.tags.is_empty() {
            return self.with_tags(runs.into_iter().flat_map(Run::into_tags), fill);
        }
        if self.run_items < self.buf.len() {
            self.push_run(Run::untagged(self.buf.len() - self.run_items));
        }
        let kept = std::mem::take(&mut self.runs);
        let covered = std::mem::take(&mut self.run_items);
        let filled = fill(self);
        (self.runs, self.run_items) = (kept, covered);
        for run in runs {
            self.push_run(run);
        }
        debug_assert_eq!(self.run_items, self.buf.len());
        filled
    }

    /// Runs `fill`, which appends one output per tag of `tags`, and gives
    /// those outputs the tags, in order: for a stage that makes exactly one
    /// output per input, whose inputs' tags go to the outputs as they are.
    /// The outputs are appended as in a chunk without tags, with no check
    /// per item.
    #[inline]
    pub(crate) fn with_tags<R>(
        &mut self,
        tags: impl Iterator<Item = Tag>,
        fill: impl FnOnce(&mut Self) -> R,
    ) -> R {
        self.tag_each();
        self.align();
        let mut kept = std::mem::take(&mut self.tags);
        let filled = fill(self);
        kept.extend(tags);
        self.tags = kept;
        debug_assert_eq!(self.buf.len(), self.tags.len());
        filled
    }

    /// Whether the chunk being built is full.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() >= self.limit
    }

    /// How many more items the chunk being built takes.
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.limit - self.buf.len()
    }

    /// The most items one chunk holds.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How many items the hop has room for, at most one chunk's worth:
    /// waits until it has room for one. Fails once the receiving stage has
    /// ended.
    pub(crate) async fn wait_room(&mut self) -> Result<usize, Closed> {
        loop {
            let free = self.gauge.capacity().saturating_sub(self.gauge.items());
            let room = free.min(self.room());
            if room > 0 {
                return Ok(room);
            }
            let _waiting = self.stats.waiting_to_send();
            // Each receive sends on the return channel, after it has taken
            // its items off the gauge: this cannot sleep through a free-up.
            if self.spares.recv().await.is_err() {
                self.cut_off();
                return Err(Closed);
            }
        }
    }

    /// Moves every item of `chunk` into the output, in order, with its
    /// tag, flushing each time the chunk being built fills. Leaves `chunk`
    /// empty, its buffers kept for reuse. Fails once the receiving stage has
    /// ended.
    pub(crate) async fn put_all(&mut self, chunk: &mut Chunk<T>) -> Result<(), Closed> {
        let n = chunk.items.len();
        self.put_front(chunk, n).await
    }

    /// Moves the first `n` items of `chunk` into the output, as
    /// [`put_all`](Outlet::put_all) moves them all.
    pub(crate) async fn put_front(&mut self, chunk: &mut Chunk<T>, n: usize) -> Result<(), Closed> {
        let tagged = chunk.is_tagged();
        let mut left = n.min(chunk.items.len());
        while left > 0 {
            if self.is_full() {
                self.flush().await?;
            }
            let run = self.room().min(left);
            left -= run;
            if let Some(runs) = chunk.take_runs_front(run) {
                let items = chunk.items.drain(..run);
                self.with_runs(runs, |out| out.extend(items));
            } else if tagged {
                let (items, tags) = chunk.parts();
                self.extend_tagged(items.drain(..run), tags.drain(..run));
            } else {
                self.extend(chunk.items.drain(..run));
            }
        }
        if self.is_full() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the chunk being built, waiting for room in the hop.
    ///
    /// Does nothing when the chunk is empty. Fails once the receiving stage
    /// has ended; the chunk's items are then dropped with the outlet.
    pub(crate) async fn flush(&mut self) -> Result<(), Closed> {
        if self.try_flush()? {
            return Ok(());
        }
        match self.overflow {
            Overflow::Wait => {}
            Overflow::DropNewest => {
                self.shed_newest();
                return Ok(());
            }
            Overflow::DropOldest => {
                self.shed_oldest()?;
                if self.try_flush()? {
                    return Ok(());
                }
            }
        }
        // The hop has no room now: wait for it.
        let n = self.buf.len();
        let mut spare = None;
        if !self.gauge.try_add(n) {
            let _waiting = self.stats.waiting_to_send();
            while !self.gauge.try_add(n) {
                // No room: wait for the receiver to take a chunk. Each
                // receive sends on the return channel, so this cannot sleep
                // through a free-up.
                let Ok(returned) = self.spares.recv().await else {
                    self.cut_off();
                    return Err(Closed);
                };
                if returned.items.capacity() > 0 {
                    spare = Some(returned);
                }
            }
        }
        let next = match spare {
            Some(buf) => buf,
            None => self.spares.try_recv().unwrap_or_default(),
        };
        let chunk = self.swap(next);
        if self.source {
            // From here the items are in `chunk`, no longer in `buf`, where
            // dropping the outlet would count them.
            self.stats.count_received(n);
        }
        // Until the chunk is in the hop, its room goes back to the gauge if
        // the send fails or this future is dropped (as a cancel does).
        let room = Room {
            gauge: &self.gauge,
            n,
        };
        let sent = match self.chunks.try_send(chunk) {
            Ok(()) => true,
            Err(TrySendError::Full(chunk)) => {
                // Every chunk slot is taken by small chunks.
                let _waiting = self.stats.waiting_to_send();
                self.chunks.send(chunk).await.is_ok()
            }
            Err(TrySendError::Closed(_)) => false,
        };
        if sent {
            std::mem::forget(room);
            self.commit(n);
            Ok(())
        } else {
            drop(room);
            self.cut_off();
            Err(Closed)
        }
    }

    /// Lets go of the chunk being built, as shed: its items were handed
    /// on, and the full hop did not take them.
    fn shed_newest(&mut self) {
        let n = self.buf.len();
        if self.source {
            self.stats.count_received(n);
        }
        self.buf.clear();
        // Dropped, each tag records its item as dropped.
        self.tags.clear();
        self.runs.clear();
        self.run_items = 0;
        self.commit(n);
        self.stats.count_shed(n);
    }

    /// Takes the oldest chunks out of the hop, as shed, until the chunk
    /// being built fits. Fails once the receiving stage has ended.
    fn shed_oldest(&mut self) -> Result<(), Closed> {
        let Some(oldest) = &self.oldest else {
            return Ok(());
        };
        let n = self.buf.len();
        while self.gauge.items() + n > self.gauge.capacity() || self.chunks.is_full() {
            match oldest.try_recv() {
                Ok(chunk) => {
                    let m = chunk.items.len();
                    self.gauge.take(m);
                    self.stats.count_shed(m);
                    // Dropped with the chunk, each tag records its item as
                    // dropped.
                }
                // The next stage took them all meanwhile: there is room.
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    self.cut_off();
                    return Err(Closed);
                }
            }
        }
        Ok(())
    }

    /// Sends the chunk being built if that needs no wait: `Ok(true)` once
    /// it is sent (or was empty), `Ok(false)` if the hop has no room for it
    /// now, with nothing changed. Fails once the receiving stage has ended;
    /// the chunk's items are then dropped.
    ///
    /// A plain call, where [`flush`](Outlet::flush) is a future: a stage
    /// hands on most of its chunks this way, at the cost of a function call.
    #[inline]
    pub(crate) fn try_flush(&mut self) -> Result<bool, Closed> {
        let n = self.buf.len();
        if n == 0 {
            self.commit(0);
            return Ok(true);
        }
        if !self.gauge.try_add(n) {
            return Ok(false);
        }
        let next = self.spares.try_recv().unwrap_or_default();
        let chunk = self.swap(next);
        let sent = match self.chunks.try_send(chunk) {
            Ok(()) => true,
            Err(TrySendError::Full(chunk)) => {
                // Every chunk slot is taken by small chunks: undone, so that
                // the caller waits as for a full hop.
                self.gauge.take(n);
                let mut chunk = chunk;
                match chunk.take_tagging() {
                    Some(Tagging::Each(tags)) => self.tags = tags,
                    Some(Tagging::Runs(runs)) => {
                        self.run_items = runs.iter().map(Run::len).sum();
                        self.runs = runs;
                    }
                    None => {}
                }
                self.buf = chunk.items;
                return Ok(false);
            }
            Err(TrySendError::Closed(_)) => false,
        };
        if self.source {
            // Taken from the source's input, sent or dropped with the hop.
            self.stats.count_received(n);
        }
        if sent {
            self.commit(n);
            Ok(true)
        } else {
            self.gauge.take(n);
            self.cut_off();
            Err(Closed)
        }
    }

    /// Takes the chunk being built, to be sent, and starts the next one in
    /// `next`'s buffers.
    #[inline]
    fn swap(&mut self, mut next: Chunk<T>) -> Chunk<T> {
        // A chunk limit may be huge; the buffer then grows as items come.
        next.items.reserve(self.limit.min(MAX_RESERVE));
        let tags = if self.tags.is_empty() {
            Vec::new()
        } else {
            std::mem::replace(&mut self.tags, next.take_tag_buffer())
        };
        let runs = if self.runs.is_empty() {
            Vec::new()
        } else {
            self.run_items = 0;
            std::mem::take(&mut self.runs)
        };
        Chunk::new(std::mem::replace(&mut self.buf, next.items), tags, runs)
    }

    /// Counts `n` items as handed on, with the inputs that made them.
    #[inline]
    fn commit(&mut self, n: usize) {
        self.stats.count_emitted(n);
        if self.passing > 0 {
            self.stats.count_passed(self.passing);
            self.passing = 0;
        }
    }

    /// Records that the receiving stage has gone: cut off, or released if
    /// it needed nothing more.
    fn cut_off(&self) {
        if self.gauge.is_released() {
            self.stats.mark_released();
        } else {
            self.stats.mark_cut_off();
        }
    }
}

/// Items appended as by [`Outlet::extend`]: the caller sizes them to fit
/// the room left.
impl<T> Extend<T> for Outlet<T> {
    #[inline]
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        Outlet::extend(self, items.into_iter());
    }
}

impl<T> Drop for Outlet<T> {
    fn drop(&mut self) {
        if self.source {
            // Taken from the source's input, never sent: dropped.
            self.stats.count_received(self.buf.len());
        }
    }
}

/// Room claimed in a hop's gauge for a chunk on its way in: given back
/// when dropped, unless the chunk arrived (then it is forgotten).
struct Room<'a> {
    gauge: &'a Gauge,
    n: usize,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.gauge.take(self.n);
    }
}

/// The receiving side of a hop, owned by the downstream stage.
pub(crate) struct Inlet<T> {
    /// Pinned so that [`Inlet::poll_recv`] can poll it as a `Stream`.
    chunks: Pin<Box<Receiver<Chunk<T>>>>,
    spares: Sender<Chunk<T>>,
    gauge: Arc<Gauge>,
    /// Emptied buffers, handed back to the sender on the next receive.
    spare: Chunk<T>,
    /// The receiving stage's stats.
    stats: Option<Arc<StageStats>>,
    /// The sending stage's stats.
    from: Arc<StageStats>,
}

impl<T> Inlet<T> {
    /// Counts what this inlet receives in `stats`, the receiving stage's.
    pub(crate) fn attach(&mut self, stats: &Arc<StageStats>) {
        self.stats = Some(Arc::clone(stats));
    }

    /// The stats of the stage that sends into this hop.
    pub(crate) fn from(&self) -> &Arc<StageStats> {
        &self.from
    }

    /// This hop as an input of the stage that receives from it: the sending
    /// stage and the hop's gauge.
    pub(crate) fn input_hop(&self) -> InputHop {
        InputHop {
            from: Arc::clone(&self.from),
            gauge: Some(Arc::clone(&self.gauge)),
        }
    }

    /// Another receiving side of the same hop, for a competing consumer:
    /// each chunk goes to whichever inlet takes it first. Closing any of
    /// them closes the hop for all.
    pub(crate) fn share(&self) -> Inlet<T> {
        Inlet {
            chunks: Box::pin((*self.chunks).clone()),
            spares: self.spares.clone(),
            gauge: Arc::clone(&self.gauge),
            spare: Chunk::default(),
            stats: None,
            from: Arc::clone(&self.from),
        }
    }

    /// Waits for the next chunk. Returns `None` once the hop is closed and
    /// empty.
    pub(crate) async fn recv(&mut self) -> Option<Chunk<T>> {
        let chunk = match self.chunks.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Closed) => return None,
            Err(TryRecvError::Empty) => {
                let _waiting = self.stats.as_deref().map(StageStats::waiting_to_receive);
                self.chunks.recv().await.ok()?
            }
        };
        self.took(chunk.items.len());
        Some(chunk)
    }

    /// Polls for the next chunk, for code that implements `Stream` by hand.
    /// The wait is not timed here: the caller times it, as one wait even
    /// when it polls many inlets.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk<T>>> {
        let polled = self.chunks.as_mut().poll_next(cx);
        if let Poll::Ready(Some(chunk)) = &polled {
            self.took(chunk.items.len());
        }
        polled
    }

    /// Takes a chunk that is already waiting, without waiting.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Result<Chunk<T>, TryRecvError> {
        let chunk = self.chunks.try_recv()?;
        self.took(chunk.items.len());
        Ok(chunk)
    }

    /// Gives back a chunk's emptied buffers, to be reused by the sender.
    #[inline]
    pub(crate) fn recycle(&mut self, mut chunk: Chunk<T>) {
        if chunk.tags.is_some() && self.spare.tags.is_none() {
            self.spare.tags = Some(Box::new(Tagging::Each(chunk.take_tag_buffer())));
        }
        chunk.items.clear();
        if chunk.items.capacity() > self.spare.items.capacity() {
            self.spare.items = chunk.items;
        }
    }

    /// Accounts for `n` items leaving the hop, and sends the spare buffer
    /// back, which wakes a sender waiting for room.
    #[inline]
    fn took(&mut self, n: usize) {
        if let Some(stats) = &self.stats {
            stats.count_received(n);
        }
        self.gauge.take(n);
        // The return channel has a slot for every chunk that can be in
        // flight, so this only fails once the sender is gone, and then
        // nobody listens.
        let _ = self.spares.try_send(std::mem::take(&mut self.spare));
    }
}

impl<T> Inlet<T> {
    /// Closes the hop and takes the chunks still in it, so that they count
    /// as received, and so dropped, by the stage that owns this inlet. A
    /// chunk sent after the close fails to send and stays with its sender.
    pub(crate) fn discard(&mut self) {
        // A stage that ended because the stages after it need nothing more
        // passes that on to the stage before it.
        if self.stats.as_deref().is_some_and(StageStats::is_released) {
            self.gauge.release();
        }
        self.chunks.close();
        while let Ok(chunk) = self.chunks.try_recv() {
            let n = chunk.items.len();
            if let Some(stats) = &self.stats {
                stats.count_received(n);
            }
            self.gauge.take(n);
            // Dropped with the chunk, each tag records its item as dropped.
        }
    }
}

impl<T> Inlet<T> {
    /// Closes the hop because the stage that owns this inlet needs nothing
    /// more: the stage before it ends as done, not as cut off, and the
    /// chunks still in the hop count as received, and so dropped, here.
    pub(crate) fn release(&mut self) {
        self.gauge.release();
        self.discard();
    }
}

impl<T> Drop for Inlet<T> {
    fn drop(&mut self) {
        self.discard();
    }
}
