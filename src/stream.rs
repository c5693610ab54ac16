//! A pipeline's output as a `Stream`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;

use crate::hop::Inlet;
use crate::join::{StageFuture, Stages};
use crate::Error;

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
    stages: Stages<StageFuture>,
    stages_done: bool,
    inlet: Inlet<T>,
    chunk: std::vec::IntoIter<T>,
    /// A configuration error, or a stage's error once the output has ended.
    error: Option<Error>,
    ended: bool,
}

impl<T> PipelineStream<T> {
    pub(crate) fn new(stages: Vec<StageFuture>, inlet: Inlet<T>, error: Option<Error>) -> Self {
        let failed = error.is_some();
        PipelineStream {
            // A badly configured pipeline never starts.
            stages: Stages::new(if failed { Vec::new() } else { stages }),
            stages_done: failed,
            inlet,
            chunk: Vec::new().into_iter(),
            error,
            ended: failed,
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
        loop {
            if let Some(item) = this.chunk.next() {
                return Poll::Ready(Some(Ok(item)));
            }
            if !this.stages_done {
                match this.stages.poll(cx) {
                    Poll::Ready(Ok(())) => this.stages_done = true,
                    Poll::Ready(Err(err)) => {
                        // The items already on their way are dropped with the
                        // stages; the error says the output is incomplete.
                        this.stages_done = true;
                        this.ended = true;
                        this.error = Some(err);
                    }
                    Poll::Pending => {}
                }
            }
            if !this.ended {
                match this.inlet.poll_recv(cx) {
                    Poll::Ready(Some(chunk)) => {
                        this.chunk = chunk.into_iter();
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
            return Poll::Ready(this.error.take().map(Err));
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
