//! [`PipelineStream`]: a pipeline's output as a `Stream`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::Stream;

use crate::ack::fate::Fate;
use crate::control::Control;
use crate::engine::drive::StageFuture;
use crate::engine::hop::{Inlet, Tags};
use crate::engine::run::RunState;
use crate::engine::stats::StageStats;
use crate::engine::supervisor::StageSet;
use crate::error::Error;
use crate::pipeline::graph::Graph;
use crate::report::state::State;

/// The output of a pipeline as a [`Stream`] of `Result<T, Error>`, made by
/// [`Pipeline::into_stream`](crate::Pipeline::into_stream).
///
/// Polling the stream drives every stage, so nothing is spawned and it works
/// under any executor. Items come as `Ok`, in order. If a stage fails the
/// stream gives that error once, after the items that got through, and then
/// ends. Dropping the stream stops the pipeline.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// # futures_lite::future::block_on(async {
/// let out: Vec<Result<u8, flowgate::Error>> =
///     flowgate::from_iter(0..3u8).into_stream().collect().await;
/// assert_eq!(out.len(), 3);
/// assert!(out.iter().all(Result::is_ok));
/// # });
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct PipelineStream<T> {
    stages: StageSet<StageFuture>,
    stages_done: bool,
    inlet: Inlet<T>,
    chunk: std::vec::IntoIter<T>,
    /// The tags of the items of `chunk`, if they have any: each item is
    /// delivered once the stream gives it out.
    tags: Tags,
    /// A configuration error, or a stage's error once the output has ended.
    error: Option<Error>,
    ended: bool,
    /// The stats of the stream's own end: items taken and given out.
    stats: Arc<StageStats>,
    run: Arc<RunState>,
    /// Whether the stream has given its last item or error.
    finished: bool,
    /// When the stream began to wait for its next chunk, if it is waiting
    /// and times its waits.
    waiting: Option<Instant>,
}

impl<T> PipelineStream<T> {
    /// The output of `graph`, whose last hop ends in `inlet`.
    pub(crate) fn new(mut graph: Graph, mut inlet: Inlet<T>) -> Self {
        let inputs = vec![inlet.input_hop()];
        let stats = StageStats::new(graph.name_for("into_stream"), "into_stream", false, inputs);
        inlet.attach(&stats);
        graph.add_stream_end(Arc::clone(&stats));
        let (stages, run) = graph.finish();
        let (stages, error) = match stages {
            Ok(stages) => (stages, None),
            Err(err) => {
                // A badly configured pipeline never starts.
                run.set_verdict(State::Failed);
                (Vec::new(), Some(err))
            }
        };
        let failed = error.is_some();
        PipelineStream {
            stages: StageSet::new(stages),
            stages_done: failed,
            inlet,
            chunk: Vec::new().into_iter(),
            tags: Tags::empty(),
            error,
            ended: failed,
            stats,
            run,
            finished: false,
            waiting: None,
        }
    }

    /// A [`Control`] for the pipeline behind this stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// let mut out = flowgate::from_iter(0u32..).into_stream();
    /// let control = out.control();
    /// # futures_lite::future::block_on(async {
    /// assert_eq!(out.next().await.unwrap()?, 0);
    /// control.cancel();
    /// let rest: Vec<_> = out.collect().await;
    /// assert!(matches!(rest.last(), Some(Err(flowgate::Error::Cancelled { .. }))));
    /// # Ok::<(), flowgate::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(&self.run))
    }
}

impl<T> Drop for PipelineStream<T> {
    fn drop(&mut self) {
        if let Some(from) = self.waiting.take() {
            self.stats.end_receive_wait(from);
        }
        if !self.finished {
            // Dropped before its end: the pipeline is cancelled with it, and
            // each stage ends under its own panic guard.
            self.stages.wind_down(&self.run);
            self.stats.end(State::Cancelled);
        }
    }
}

// Nothing in the stream is pinned structurally: the stages are boxed and the
// hop's receiver is boxed inside the inlet.
impl<T> Unpin for PipelineStream<T> {}

impl<T> Stream for PipelineStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if this.stats.state() == State::Pending {
            this.stats.begin(this.run.is_timed());
        }
        loop {
            if let Some(item) = this.chunk.next() {
                if let Some(tag) = this.tags.next() {
                    tag.resolve(Fate::Delivered);
                }
                this.stats.count_emitted(1);
                return Poll::Ready(Some(Ok(item)));
            }
            if !this.stages_done && this.stages.poll(cx, &this.run).is_ready() {
                this.stages_done = true;
                if !this.stages.is_clean() {
                    // The output is cut short: what the stream has not given
                    // out yet is dropped now, so the report is final.
                    this.chunk = Vec::new().into_iter();
                    this.tags = Tags::empty();
                    this.inlet.discard();
                    this.stats.end(State::Cancelled);
                }
                if let Err(err) = this.stages.outcome(&this.run, true) {
                    // The items already on their way were dropped by the
                    // stages; the error says the output is incomplete.
                    this.ended = true;
                    this.error = Some(err);
                }
            }
            if !this.ended {
                let polled = this.inlet.poll_recv(cx);
                if polled.is_pending() {
                    if this.waiting.is_none() {
                        this.waiting = this.stats.start_receive_wait();
                    }
                } else if let Some(from) = this.waiting.take() {
                    this.stats.end_receive_wait(from);
                }
                match polled {
                    Poll::Ready(Some(mut chunk)) => {
                        this.tags = chunk.take_tags();
                        this.chunk = chunk.items.into_iter();
                        continue;
                    }
                    Poll::Ready(None) => this.ended = true,
                    Poll::Pending => return Poll::Pending,
                }
            }
            // The output has ended; report a failure once every stage is done.
            if !this.stages_done {
                return Poll::Pending;
            }
            this.finished = true;
            let error = this.error.take();
            if !this.stats.state().is_finished() {
                let state = if error.is_some() {
                    State::Failed
                } else {
                    State::Done
                };
                this.stats.end(state);
            }
            return Poll::Ready(error.map(Err));
        }
    }
}

impl<T> fmt::Debug for PipelineStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineStream")
            .field("buffered", &self.chunk.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
