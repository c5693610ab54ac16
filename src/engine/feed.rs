//! A stage's input: a hop, or a hop seen through the fused stages that run
//! inside the stage's own task.
//!
//! Stage fusion: a run of cheap synchronous stages (`map`, `filter`, ...)
//! need not be tasks of their own, joined by hops. Each becomes a
//! *segment* of the input of the stage after it, which runs it, one chunk
//! at a time, inside its own task: what the segments would have sent
//! through a hop, the host stage receives as a chunk, with no channel
//! operation and no task switch between them. Every segment keeps its own
//! stats (received, emitted, filtered, its state), so the report stays
//! exact per stage; only the hop columns show that there is no hop.
//!
//! ```text
//!   hop ──▶ [ segment: map ]──▶[ segment: filter ]──▶ host stage's work
//!           └──────────────── one task: the host's ───────────────────┘
//! ```
//!
//! The first segment may be a source that needs no hop, `from_iter`'s,
//! which takes each chunk from its iterator as it is pulled.
//!
//! A segment that panics fails as itself: it records its state as failed
//! and unwinds with a `SegmentPanic` that names it, which the host's
//! driver turns into the run's error.

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_channel::TryRecvError;

use crate::engine::drive::SegmentPanic;
use crate::engine::hop::{Chunk, Inlet};
use crate::engine::stage_loop::{Input, Work, run_stage};
use crate::engine::stats::{InputHop, StageStats};
use crate::error::{Error, panic_message};
use crate::report::state::State;

/// A chain of fused segments that gives chunks of `T`: the last segment,
/// which pulls from the one before it, and so on down to the hop (or the
/// fused source) under the chain.
pub(crate) trait Pull<T>: Send {
    /// A chunk processed from one already waiting, without waiting.
    fn try_pull(&mut self) -> Result<Chunk<T>, TryRecvError>;

    /// Polls for the next chunk; `None` once the input under the chain has
    /// ended.
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk<T>>>;

    /// Takes back an emptied chunk, to reuse its buffers.
    fn recycle(&mut self, chunk: Chunk<T>);

    /// Records that the stages after the chain need nothing more, down to
    /// its first segment, so that the stage before the chain's hop ends as
    /// done.
    fn release(&mut self);
}

/// Runs `work`, a fused segment's work on one chunk, in the task of the
/// stage after it: a panic fails the segment whose stats are `stats`, and
/// unwinds on as a [`SegmentPanic`] that names it.
#[inline]
pub(crate) fn as_segment<R>(stats: &StageStats, work: impl FnOnce() -> R) -> R {
    // What the segment's function logs is logged in the segment's span.
    #[cfg(feature = "tracing")]
    let _in = stats.span().enter();
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(done) => done,
        Err(payload) => {
            stats.end(State::Failed);
            resume_unwind(Box::new(SegmentPanic {
                stage: stats.name().to_owned(),
                message: panic_message(payload),
            }))
        }
    }
}

/// Keeps `chunk`, emptied, in `spare` if its buffer is the larger: for a
/// segment, which hands its chunks out and takes them back, to reuse.
#[inline]
pub(crate) fn keep_spare<T>(spare: &mut Chunk<T>, mut chunk: Chunk<T>) {
    chunk.items.clear();
    if chunk.items.capacity() > spare.items.capacity() {
        *spare = chunk;
    }
}

/// A stage's input: chunks from a hop, or from the fused segments before
/// the stage.
pub(crate) struct Feed<T> {
    source: Source<T>,
}

enum Source<T> {
    Hop(Inlet<T>),
    Fused(Fused<T>),
}

/// Fused segments, as a stage's input.
struct Fused<T> {
    chain: Box<dyn Pull<T>>,
    /// The stats of every segment of the chain, from the first.
    segments: Vec<Arc<StageStats>>,
    /// The receiving stage's stats, which count what it takes.
    stats: Option<Arc<StageStats>>,
    /// The stats of the segments and of the receiving stage, which all
    /// wait when the chain waits.
    waiters: Arc<[Arc<StageStats>]>,
}

impl<T> Feed<T> {
    /// The input of a stage fed by a hop.
    pub(crate) fn hop(inlet: Inlet<T>) -> Self {
        Feed {
            source: Source::Hop(inlet),
        }
    }

    /// The output of the fused segment whose stats are `last`, which runs
    /// `chain` after the segments of `before`.
    pub(crate) fn fused(
        chain: Box<dyn Pull<T>>,
        before: Vec<Arc<StageStats>>,
        last: Arc<StageStats>,
    ) -> Self {
        let mut segments = before;
        segments.push(last);
        let waiters = segments.clone().into();
        Feed {
            source: Source::Fused(Fused {
                chain,
                segments,
                stats: None,
                waiters,
            }),
        }
    }

    /// Makes this feed the input of the fused segment whose stats are
    /// `stats`, which `make` builds on it: gives the segment's output.
    pub(crate) fn into_segment<O>(
        mut self,
        stats: Arc<StageStats>,
        make: impl FnOnce(Feed<T>) -> Box<dyn Pull<O>>,
    ) -> Feed<O> {
        let before = self.segments();
        self.attach(&stats);
        Feed::fused(make(self), before, stats)
    }

    /// Counts what this feed gives in `stats`, the receiving stage's.
    pub(crate) fn attach(&mut self, to: &Arc<StageStats>) {
        match &mut self.source {
            Source::Hop(inlet) => inlet.attach(to),
            Source::Fused(Fused {
                segments,
                stats,
                waiters,
                ..
            }) => {
                *stats = Some(Arc::clone(to));
                *waiters = segments.iter().chain([to]).cloned().collect();
            }
        }
    }

    /// The receiving stage's input, for its stats and the report: its hop,
    /// or the fused segment before it, with no hop.
    pub(crate) fn input_hop(&self) -> InputHop {
        match &self.source {
            Source::Hop(inlet) => inlet.input_hop(),
            Source::Fused(Fused { segments, .. }) => InputHop::fused(Arc::clone(
                segments.last().expect("a fused feed has a segment"),
            )),
        }
    }

    /// The stats of the fused segments that run in the receiving stage's
    /// task, from the first; none for a hop.
    pub(crate) fn segments(&self) -> Vec<Arc<StageStats>> {
        match &self.source {
            Source::Hop(_) => Vec::new(),
            Source::Fused(Fused { segments, .. }) => segments.clone(),
        }
    }

    /// Polls for the next chunk, without timing the wait: for a segment,
    /// whose host times its waits.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk<T>>> {
        match &mut self.source {
            Source::Hop(inlet) => inlet.poll_recv(cx),
            Source::Fused(Fused { chain, stats, .. }) => {
                let polled = chain.poll_pull(cx);
                if let (Poll::Ready(Some(chunk)), Some(stats)) = (&polled, stats) {
                    stats.count_received(chunk.items.len());
                }
                polled
            }
        }
    }

    /// Takes a chunk that is waiting already: `Empty` if none is, `Closed`
    /// once the input has ended.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Result<Chunk<T>, TryRecvError> {
        match &mut self.source {
            Source::Hop(inlet) => inlet.try_recv(),
            Source::Fused(Fused { chain, stats, .. }) => {
                let chunk = chain.try_pull()?;
                if let Some(stats) = stats {
                    stats.count_received(chunk.items.len());
                }
                Ok(chunk)
            }
        }
    }

    /// Takes back an emptied chunk, to reuse its buffers.
    #[inline]
    pub(crate) fn give_back(&mut self, chunk: Chunk<T>) {
        match &mut self.source {
            Source::Hop(inlet) => inlet.recycle(chunk),
            Source::Fused(Fused { chain, .. }) => chain.recycle(chunk),
        }
    }

    /// Waits for the next chunk; `None` once the input has ended. A wait is
    /// timed as starvation for the receiving stage and for every segment,
    /// which all wait with it.
    #[inline]
    pub(crate) async fn recv(&mut self) -> Option<Chunk<T>> {
        match &mut self.source {
            Source::Hop(inlet) => inlet.recv().await,
            Source::Fused(Fused { .. }) => self.recv_fused().await,
        }
    }

    /// [`Feed::recv`] from fused segments.
    async fn recv_fused(&mut self) -> Option<Chunk<T>> {
        let waiters = match &self.source {
            Source::Fused(Fused { waiters, .. }) => Arc::clone(waiters),
            Source::Hop(_) => return None,
        };
        match self.try_recv() {
            Ok(chunk) => return Some(chunk),
            Err(TryRecvError::Closed) => return None,
            Err(TryRecvError::Empty) => {}
        }
        let _starved = Starved::start(waiters);
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// A wait for input of a fused group, timed on every stage of it until
/// dropped.
struct Starved {
    waiters: Arc<[Arc<StageStats>]>,
    from: Option<Instant>,
}

impl Starved {
    fn start(waiters: Arc<[Arc<StageStats>]>) -> Self {
        let mut from = None;
        for stats in waiters.iter() {
            from = stats.start_receive_wait().or(from);
        }
        Starved { waiters, from }
    }
}

impl Drop for Starved {
    fn drop(&mut self) {
        if let Some(from) = self.from {
            self.waiters
                .iter()
                .for_each(|stats| stats.end_receive_wait(from));
        }
    }
}

impl<T> Drop for Fused<T> {
    fn drop(&mut self) {
        // A stage released by the stages after it passes that on down the
        // chain, so that the stage before the hop ends as done.
        if self.stats.as_deref().is_some_and(StageStats::is_released) {
            self.chain.release();
        }
    }
}

/// Runs the stage whose work is `work` on `feed`, as
/// [`run_stage`] does: the loop is made for the input's kind, so a stage
/// fed by a hop pays nothing per chunk for the chance of fused segments.
pub(crate) async fn run_fed<T, W>(feed: Feed<T>, work: &mut W) -> Result<(), Error>
where
    W: Work<Chunk<T>>,
{
    match feed.source {
        Source::Hop(inlet) => run_stage(inlet, work).await,
        fused => run_stage(Feed { source: fused }, work).await,
    }
}

impl<T> Input for Feed<T> {
    type Chunk = Chunk<T>;

    #[inline]
    async fn recv(&mut self) -> Option<Chunk<T>> {
        Feed::recv(self).await
    }

    #[inline]
    fn try_recv(&mut self) -> Option<Chunk<T>> {
        Feed::try_recv(self).ok()
    }

    #[inline]
    fn recycle(&mut self, chunk: Chunk<T>) {
        self.give_back(chunk);
    }

    /// At least 1, so that a chain that filters every item out still
    /// spends its host's yield budget.
    #[inline]
    fn size(chunk: &Chunk<T>) -> usize {
        chunk.items.len().max(1)
    }
}
