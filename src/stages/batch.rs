//! Batching stages: `chunks` and `chunks_timeout`.

use std::time::{Duration, Instant};

use smol::Timer;

use crate::ack::fate::{Group, Tag};
use crate::engine::hop::{Chunk, Outlet};
use crate::engine::stage_loop::{Work, run_stage};
use crate::error::Error;
use crate::pipeline::builder::Pipeline;

/// The most slots a batch reserves up front, whatever its size: a batch of
/// a billion items grows as items come, not before.
const MAX_RESERVE: usize = 4096;

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that groups items into batches of `size`, in order. The
    /// last batch holds what is left, if the input ends part way through
    /// one. A size of 0 gives [`Error::ZeroBatchSize`].
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<Vec<u8>> = flowgate::from_iter(1..=5u8).chunks(2).collect().run()?;
    /// assert_eq!(out, [vec![1, 2], vec![3, 4], vec![5]]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn chunks(self, size: usize) -> Pipeline<Vec<T>> {
        self.batches("chunks", size, None)
    }

    /// Adds a stage that groups items into batches of up to `size`, in
    /// order. A batch is handed on when it is full, or when `wait` has
    /// passed since its first item, whichever comes first, so a trickle of
    /// items is never held back for long. What is left at the end of the
    /// input is handed on as a last batch.
    ///
    /// A `wait` of zero hands on whatever has arrived as soon as nothing
    /// more is ready. A size of 0 gives [`Error::ZeroBatchSize`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A slow source: the batch of 100 never fills, so time decides.
    /// let slow = futures_lite::stream::iter(0..3u8).then(|x| async move {
    ///     smol::Timer::after(Duration::from_millis(5)).await;
    ///     x
    /// });
    /// # use futures_lite::StreamExt;
    /// let batches: Vec<Vec<u8>> = flowgate::from_stream(slow)
    ///     .chunks_timeout(100, Duration::from_millis(1))
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(batches.concat(), [0, 1, 2]);
    /// assert!(batches.len() > 1);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn chunks_timeout(self, size: usize, wait: Duration) -> Pipeline<Vec<T>> {
        self.batches("chunks_timeout", size, Some(wait))
    }

    fn batches(self, kind: &'static str, size: usize, wait: Option<Duration>) -> Pipeline<Vec<T>> {
        let built = self.chain(kind, true, move |input, setup| async move {
            let size = size.max(1);
            let reserve = size.min(MAX_RESERVE);
            let mut batcher = Batcher {
                out: setup.out,
                batch: Vec::with_capacity(reserve),
                tags: Vec::new(),
                size,
                reserve,
                wait,
                due: Timer::never(),
            };
            run_stage(input, &mut batcher).await
        });
        if size == 0 {
            return built.reject_newest(|stage| Error::ZeroBatchSize { stage });
        }
        built
    }
}

/// The work of a stage that groups items into batches of `size`; with
/// `wait`, a batch also leaves once `wait` has passed since its first item.
struct Batcher<T> {
    out: Outlet<Vec<T>>,
    batch: Vec<T>,
    /// The tags of the items in `batch`, if they have any: empty, or one
    /// per item.
    tags: Vec<Tag>,
    size: usize,
    /// The room a new batch reserves up front.
    reserve: usize,
    wait: Option<Duration>,
    /// When the batch being filled must leave; set by its first item.
    due: Timer,
}

impl<T> Batcher<T> {
    /// Moves a non-empty batch into the output chunk, handing the chunk on
    /// if it is full.
    async fn emit(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.reserve));
        self.out.pass(full.len());
        // The batch's own tag holds its items' tags: they end as it does.
        let tag = (!self.tags.is_empty()).then(|| Group::batch(std::mem::take(&mut self.tags)));
        if self.out.push_tagged(full, tag) {
            self.out.flush().await?;
        }
        Ok(())
    }
}

impl<T> Work<Chunk<T>> for Batcher<T> {
    async fn chunk(&mut self, chunk: &mut Chunk<T>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            if self.batch.is_empty() {
                if let Some(wait) = self.wait {
                    self.due = Instant::now()
                        .checked_add(wait)
                        .map_or_else(Timer::never, Timer::at);
                }
            }
            self.batch.push(item);
            if let Some(tag) = tags.next() {
                if self.tags.len() + 1 < self.batch.len() {
                    self.tags.resize_with(self.batch.len() - 1, Tag::none);
                }
                self.tags.push(tag);
            }
            if self.batch.len() >= self.size {
                self.emit().await?;
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }

    async fn input_end(&mut self) -> Result<(), Error> {
        self.emit().await?;
        Ok(self.out.flush().await?)
    }

    fn timer(&mut self) -> Option<&mut Timer> {
        (self.wait.is_some() && !self.batch.is_empty()).then_some(&mut self.due)
    }

    /// The batch's time is up: it leaves as it is.
    async fn on_timer(&mut self) -> Result<(), Error> {
        self.input_end().await
    }
}
