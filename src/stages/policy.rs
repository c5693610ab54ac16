//! What a fallible stage does with an item that failed: fail fast, skip,
//! retry with backoff, or send it to a dead-letter output.

use std::fmt;
use std::time::Duration;

use async_channel::Sender;

use crate::error::{Error, ItemError};

/// A failed item on the dead-letter output, with what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<T, E> {
    /// The stage the item failed in.
    pub stage: String,
    /// The item, as it entered the stage.
    pub item: T,
    /// The error of its last attempt.
    pub error: ItemError<E>,
    /// How many attempts were made.
    pub attempts: u32,
}

/// How long a retry policy waits before each new attempt.
///
/// # Examples
///
/// ```
/// use flowgate::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(10), 2.0).with_max(Duration::from_millis(50));
/// assert_eq!(b.delay(1), Duration::from_millis(10));
/// assert_eq!(b.delay(2), Duration::from_millis(20));
/// assert_eq!(b.delay(9), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    first: Duration,
    factor: f64,
    max: Duration,
}

impl Backoff {
    /// The same wait before every retry. Zero retries at once.
    pub fn fixed(wait: Duration) -> Self {
        Backoff {
            first: wait,
            factor: 1.0,
            max: wait,
        }
    }

    /// A wait of `first` before the first retry, multiplied by `factor`
    /// before each one after. A factor below 1, or one that is not a finite
    /// number, makes the run fail with [`Error::BadBackoff`].
    pub fn exponential(first: Duration, factor: f64) -> Self {
        Backoff {
            first,
            factor,
            max: Duration::MAX,
        }
    }

    /// Caps every wait at `max`.
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The wait before retry number `retry` (the first retry is 1). Never
    /// panics: a wait too long to represent is capped at the maximum.
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.first.as_secs_f64() * self.factor.powi(exponent);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max)
            .min(self.max)
    }

    fn is_valid(&self) -> bool {
        self.factor.is_finite() && self.factor >= 1.0
    }

    /// Checks the backoff of the stage called `stage`.
    pub(crate) fn check(&self, stage: &str) -> Result<(), Error> {
        if self.is_valid() {
            return Ok(());
        }
        Err(Error::BadBackoff {
            stage: stage.to_owned(),
            factor: self.factor,
        })
    }
}

/// What a fallible stage does with an item that failed. Set it with
/// [`Pipeline::on_error`](crate::Pipeline::on_error) right after
/// [`try_map`](crate::Pipeline::try_map) or
/// [`try_then`](crate::Pipeline::try_then).
///
/// - [`fail_fast`](OnError::fail_fast), the default: the run fails with
///   [`Error::Stage`], the item's error as its source.
/// - [`skip`](OnError::skip): the item is dropped and counted as skipped.
/// - [`retry`](OnError::retry): the item is tried again, up to a number of
///   attempts, waiting between them; if the last attempt fails, the item
///   fails (or is skipped, or dead-lettered, with
///   [`or_skip`](OnError::or_skip) and
///   [`or_dead_letter`](OnError::or_dead_letter)).
/// - [`dead_letter`](OnError::dead_letter): the item and its error go to a
///   channel that the caller reads (as a channel or as a `Stream`).
///
/// Retry and dead-letter keep a clone of each item while it is processed,
/// so they need `T: Clone`.
///
/// # Examples
///
/// ```
/// use flowgate::OnError;
///
/// let parsed: Vec<u8> = flowgate::from_iter(["1", "x", "3"])
///     .try_map(|s| s.parse::<u8>())
///     .on_error(OnError::skip())
///     .collect()
///     .run()?;
/// assert_eq!(parsed, [1, 3]);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub struct OnError<T, E> {
    rule: Rule<T, E>,
    retry: Option<(u32, Backoff)>,
    clone: Option<fn(&T) -> T>,
}

/// What happens to an item once it has failed for good.
enum Rule<T, E> {
    Fail,
    Skip,
    DeadLetter(Sender<DeadLetter<T, E>>),
}

/// What a stage does next with a failed item.
pub(super) enum Step<'a, T, E> {
    Retry(Duration),
    Fail,
    Skip,
    DeadLetter(&'a Sender<DeadLetter<T, E>>),
}

impl<T, E> OnError<T, E> {
    /// The run fails on the first failed item. This is the default.
    pub fn fail_fast() -> Self {
        OnError {
            rule: Rule::Fail,
            retry: None,
            clone: None,
        }
    }

    /// A failed item is dropped and counted as skipped; the run goes on.
    pub fn skip() -> Self {
        OnError {
            rule: Rule::Skip,
            ..Self::fail_fast()
        }
    }

    /// A copy of `item`, kept while it is tried, if the policy may need it
    /// again (to retry it or to dead-letter it).
    pub(super) fn copy_of(&self, item: &T) -> Option<T> {
        self.clone.map(|clone| clone(item))
    }

    /// What to do after `attempt` attempts have failed.
    pub(super) fn step(&self, attempt: u32) -> Step<'_, T, E> {
        if let Some((attempts, backoff)) = self.retry {
            if attempt < attempts {
                return Step::Retry(backoff.delay(attempt));
            }
        }
        match &self.rule {
            Rule::Fail => Step::Fail,
            Rule::Skip => Step::Skip,
            Rule::DeadLetter(tx) => Step::DeadLetter(tx),
        }
    }

    /// Checks the policy for the stage called `stage`.
    pub(crate) fn check(&self, stage: &str) -> Result<(), Error> {
        match self.retry {
            Some((0, _)) => Err(Error::ZeroAttempts {
                stage: stage.to_owned(),
            }),
            Some((_, backoff)) if !backoff.is_valid() => Err(Error::BadBackoff {
                stage: stage.to_owned(),
                factor: backoff.factor,
            }),
            _ => Ok(()),
        }
    }
}

impl<T: Clone, E> OnError<T, E> {
    /// A failed item goes, with its error, to `output`, and the run goes
    /// on. If `output` is full the stage waits for room; if its receiver is
    /// gone the item fails as with [`fail_fast`](OnError::fail_fast).
    ///
    /// Read the dead letters while the run goes on, not after it: a full
    /// `output` holds the stage up (the report shows it blocked sending),
    /// so dead letters read only once `run()` returns would stop a run that
    /// has more of them than `output` holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::OnError;
    ///
    /// let (letters, letters_rx) = flowgate::async_channel::bounded(4);
    /// // Drained beside the run, so that any number of bad lines pass.
    /// let drain = std::thread::spawn(move || {
    ///     std::iter::from_fn(|| letters_rx.recv_blocking().ok()).count()
    /// });
    /// let good = flowgate::from_iter((0..100).map(|n| if n % 3 == 0 { "x".to_owned() } else { n.to_string() }))
    ///     .try_map(|s| s.parse::<u32>())
    ///     .on_error(OnError::dead_letter(letters))
    ///     .count()
    ///     .run()?;
    /// assert_eq!((good, drain.join().unwrap()), (66, 34));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn dead_letter(output: Sender<DeadLetter<T, E>>) -> Self {
        OnError {
            rule: Rule::DeadLetter(output),
            retry: None,
            clone: Some(T::clone),
        }
    }

    /// A failed item is tried again, up to `attempts` attempts in all,
    /// waiting `backoff` before each new one. If the last attempt fails the
    /// item fails and the run fails. `attempts == 0` makes the run fail with
    /// [`Error::ZeroAttempts`]; 1 means no retry.
    pub fn retry(attempts: u32, backoff: Backoff) -> Self {
        OnError {
            rule: Rule::Fail,
            retry: Some((attempts, backoff)),
            clone: Some(T::clone),
        }
    }

    /// Skips an item whose last attempt failed, instead of failing the run.
    pub fn or_skip(mut self) -> Self {
        self.rule = Rule::Skip;
        self
    }

    /// Sends an item whose last attempt failed to `output`, instead of
    /// failing the run.
    pub fn or_dead_letter(mut self, output: Sender<DeadLetter<T, E>>) -> Self {
        self.rule = Rule::DeadLetter(output);
        self
    }
}

impl<T, E> fmt::Debug for OnError<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.rule {
            Rule::Fail => "fail",
            Rule::Skip => "skip",
            Rule::DeadLetter(_) => "dead-letter",
        };
        f.debug_struct("OnError")
            .field("retry", &self.retry)
            .field("then", &rule)
            .finish()
    }
}
