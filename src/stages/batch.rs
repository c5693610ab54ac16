//! Batching stages: `chunks`, `chunks_timeout` and `windows`.

use std::time::{Duration, Instant, SystemTime};

use smol::Timer;

use crate::ack::fate::{Group, Tag};
use crate::engine::feed::run_fed;
use crate::engine::hop::{Chunk, Outlet};
use crate::engine::stage_loop::Work;
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

    /// Adds a stage that groups items by the window of time they arrive
    /// in: tumbling windows of `length`, aligned to the wall clock (a
    /// window of a minute starts on the minute), each handed on as one
    /// batch, in order, when it closes. A window in which nothing arrived
    /// gives nothing. What is left when the input ends is handed on then.
    ///
    /// Windows are by processing time: an item belongs to the window in
    /// which this stage takes it. Items that arrive together in one chunk
    /// go to one window. A window holds every item that arrives in it, so
    /// its memory grows with the rate times the length. A `length` of 0
    /// gives [`Error::ZeroWindowLength`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures_lite::StreamExt;
    ///
    /// // Two bursts, 150 ms apart: windows of 50 ms never mix them.
    /// let bursts = futures_lite::stream::iter(0..6u8).then(|x| async move {
    ///     if x == 3 {
    ///         smol::Timer::after(Duration::from_millis(150)).await;
    ///     }
    ///     x
    /// });
    /// let windows: Vec<Vec<u8>> = flowgate::from_stream(bursts)
    ///     .windows(Duration::from_millis(50))
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(windows.concat(), [0, 1, 2, 3, 4, 5]);
    /// assert!(windows.iter().all(|w| w.iter().all(|&x| x < 3) || w.iter().all(|&x| x >= 3)));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn windows(self, length: Duration) -> Pipeline<Vec<T>> {
        let built = self.batching("windows", usize::MAX, Due::Aligned(length));
        if length.is_zero() {
            return built.reject_newest(|stage| Error::ZeroWindowLength { stage });
        }
        built
    }

    fn batches(self, kind: &'static str, size: usize, wait: Option<Duration>) -> Pipeline<Vec<T>> {
        let due = wait.map_or(Due::Never, Due::After);
        let built = self.batching(kind, size, due);
        if size == 0 {
            return built.reject_newest(|stage| Error::ZeroBatchSize { stage });
        }
        built
    }

    fn batching(self, kind: &'static str, size: usize, due: Due) -> Pipeline<Vec<T>> {
        self.chain(kind, true, move |input, setup| async move {
            let size = size.max(1);
            let reserve = size.min(MAX_RESERVE);
            let mut batcher = Batcher {
                out: setup.out,
                batch: Vec::with_capacity(reserve),
                tags: Vec::new(),
                size,
                reserve,
                when: due,
                due: Timer::never(),
                due_at: None,
            };
            run_fed(input, &mut batcher).await
        })
    }
}

/// When a batch leaves, besides when it is full.
#[derive(Clone, Copy)]
enum Due {
    /// Only when full, or at the end of the input.
    Never,
    /// This long after its first item.
    After(Duration),
    /// At the end of the window of the wall clock, of this length, in
    /// which its first item came.
    Aligned(Duration),
}

impl Due {
    /// When a batch whose first item comes now must leave.
    fn for_batch_starting_now(self) -> Option<Instant> {
        let now = Instant::now();
        match self {
            Due::Never => None,
            Due::After(wait) => now.checked_add(wait),
            Due::Aligned(length) => {
                let since_epoch = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                let length_ns = length.as_nanos().max(1);
                let into = since_epoch.as_nanos() % length_ns;
                let left = u64::try_from(length_ns - into).unwrap_or(u64::MAX);
                now.checked_add(Duration::from_nanos(left))
            }
        }
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
    when: Due,
    /// When the batch being filled must leave; set by its first item.
    due: Timer,
    /// The same, as an instant, for a batch that leaves at a time.
    due_at: Option<Instant>,
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
        if let (Due::Aligned(_), Some(due)) = (self.when, self.due_at) {
            // A window that closed while this chunk was on its way leaves
            // before the chunk starts the next one.
            if !self.batch.is_empty() && Instant::now() >= due {
                self.emit().await?;
            }
        }
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            if self.batch.is_empty() {
                self.due_at = self.when.for_batch_starting_now();
                if !matches!(self.when, Due::Never) {
                    self.due = self.due_at.map_or_else(Timer::never, Timer::at);
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
        (!matches!(self.when, Due::Never) && !self.batch.is_empty()).then_some(&mut self.due)
    }

    /// The batch's time is up: it leaves as it is.
    async fn on_timer(&mut self) -> Result<(), Error> {
        self.input_end().await
    }
}
