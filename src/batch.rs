//! Batching stages: `chunks` and `chunks_timeout`.

use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use smol::Timer;

use crate::hop::{Inlet, Outlet};
use crate::stage::Budget;
use crate::{Error, Pipeline};

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
        let built = self.chain(kind, true, move |input, w| async move {
            batch(input, w.out, size.max(1), wait).await;
            Ok(())
        });
        if size == 0 {
            return built.reject_newest(|stage| Error::ZeroBatchSize { stage });
        }
        built
    }
}

/// Groups items into batches of `size`; with `wait`, a batch also leaves
/// once `wait` has passed since its first item.
async fn batch<T>(
    mut input: Inlet<T>,
    mut out: Outlet<Vec<T>>,
    size: usize,
    wait: Option<Duration>,
) {
    let reserve = size.min(MAX_RESERVE);
    let mut batch: Vec<T> = Vec::with_capacity(reserve);
    let mut timer = Timer::never();
    let mut budget = Budget::new();
    loop {
        let next = if batch.is_empty() || wait.is_none() {
            Some(input.recv().await)
        } else {
            async { Some(input.recv().await) }
                .or(async {
                    (&mut timer).await;
                    None
                })
                .await
        };
        let Some(chunk) = next else {
            // The batch's time is up.
            if !emit(&mut batch, reserve, &mut out).await || out.flush().await.is_err() {
                return;
            }
            continue;
        };
        let Some(first) = chunk else { break };
        let mut got = Some(first);
        while let Some(mut chunk) = got.take() {
            let n = chunk.len();
            for item in chunk.drain(..) {
                if batch.is_empty() {
                    if let Some(wait) = wait {
                        timer = Instant::now()
                            .checked_add(wait)
                            .map_or_else(Timer::never, Timer::at);
                    }
                }
                batch.push(item);
                if batch.len() >= size && !emit(&mut batch, reserve, &mut out).await {
                    return;
                }
            }
            input.recycle(chunk);
            if !budget.spend(n) {
                got = input.try_recv().ok();
            }
        }
        if out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    if emit(&mut batch, reserve, &mut out).await {
        let _ = out.flush().await;
    }
}

/// Moves a non-empty batch into the output chunk, flushing it if full.
/// Returns `false` once the next stage has gone.
async fn emit<T>(batch: &mut Vec<T>, reserve: usize, out: &mut Outlet<Vec<T>>) -> bool {
    if batch.is_empty() {
        return true;
    }
    let full = std::mem::replace(batch, Vec::with_capacity(reserve));
    out.pass(full.len());
    !(out.push(full) && out.flush().await.is_err())
}
