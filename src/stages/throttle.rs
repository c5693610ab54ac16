//! `throttle`: a rate limit on a stage's output, as a token bucket whose
//! rate can change while the pipeline runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smol::Timer;

use crate::engine::feed::run_fed;
use crate::engine::hop::{Chunk, Outlet};
use crate::engine::stage_loop::Work;
use crate::error::Error;
use crate::pipeline::builder::Pipeline;

/// The longest a throttled stage sleeps before it looks at its rate again,
/// so that a change is seen soon even when the rate was very low.
const LOOK_AGAIN: Duration = Duration::from_millis(50);

/// The shortest wait a throttled stage plans: at a high rate it waits for
/// as many tokens as come in this time, and lets them through as a chunk,
/// rather than waking for each one.
const QUANTUM: Duration = Duration::from_millis(1);

/// A rate limit, `items` per `per`, shared between the code that sets it
/// and the [`throttle`](Pipeline::throttle_with) stages that keep to it.
///
/// Clone it to keep a handle: [`set`](Rate::set) changes the rate while the
/// pipeline runs, and the stages keep to the new rate from their next
/// wait, within one period of the old rate (and within 50 ms whatever the
/// rate). Reading and setting take no lock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowgate::Rate;
///
/// let rate = Rate::new(1_000, Duration::from_secs(1));
/// assert_eq!(rate.get(), (1_000, Duration::from_secs(1)));
/// rate.set(50, Duration::from_millis(100))?;
/// assert_eq!(rate.get(), (50, Duration::from_millis(100)));
/// assert!(rate.set(0, Duration::from_secs(1)).is_err());
/// # Ok::<(), flowgate::Error>(())
/// ```
#[derive(Clone)]
pub struct Rate(Arc<Setting>);

/// A rate as atomics, with a version that is odd while a change is being
/// written, so that a reader never sees half of one.
struct Setting {
    items: AtomicU64,
    per_nanos: AtomicU64,
    version: AtomicU64,
}

impl Rate {
    /// A rate of `items` per `per`. A rate with either at 0 makes the
    /// stage that keeps to it fail its run with [`Error::ZeroRate`].
    pub fn new(items: u64, per: Duration) -> Self {
        Rate(Arc::new(Setting {
            items: AtomicU64::new(items),
            per_nanos: AtomicU64::new(nanos(per)),
            version: AtomicU64::new(0),
        }))
    }

    /// Changes the rate to `items` per `per`, for every stage that keeps
    /// to it. Either at 0 gives [`Error::ZeroRate`], and the rate stays as
    /// it was.
    pub fn set(&self, items: u64, per: Duration) -> Result<(), Error> {
        check(items, per)?;
        let setting = &self.0;
        setting.version.fetch_add(1, Ordering::AcqRel);
        setting.items.store(items, Ordering::Release);
        setting.per_nanos.store(nanos(per), Ordering::Release);
        setting.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The rate now: `items` per `per`.
    pub fn get(&self) -> (u64, Duration) {
        let (items, per, _) = self.read();
        (items, Duration::from_nanos(per))
    }

    /// The rate, with per in nanoseconds, and its version.
    fn read(&self) -> (u64, u64, u64) {
        let setting = &self.0;
        loop {
            let before = setting.version.load(Ordering::Acquire);
            let items = setting.items.load(Ordering::Acquire);
            let per = setting.per_nanos.load(Ordering::Acquire);
            let after = setting.version.load(Ordering::Acquire);
            if before == after && before % 2 == 0 {
                return (items, per, before);
            }
            std::hint::spin_loop();
        }
    }
}

impl std::fmt::Debug for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (items, per) = self.get();
        f.debug_struct("Rate")
            .field("items", &items)
            .field("per", &per)
            .finish()
    }
}

/// `d` in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A rate must let something through, over some time.
fn check(items: u64, per: Duration) -> Result<(), Error> {
    if items == 0 || nanos(per) == 0 {
        return Err(Error::ZeroRate { items, per });
    }
    Ok(())
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that lets at most `items` items through per `per`, on
    /// average, passing them on unchanged and in order.
    ///
    /// It is a token bucket: it holds up to `items` tokens, starts full,
    /// and gains them back at the rate; each item takes one. So a burst of
    /// up to `items` goes through at once after a quiet spell, and over any
    /// longer run no more than the rate does. Items that have their tokens
    /// move on together, in chunks, as through any stage. The time the
    /// stage waits for tokens is reported apart, as
    /// [`throttled`](crate::StageReport::throttled), not as busy, and a
    /// throttle upstream is not mistaken for a slow stage.
    ///
    /// A rate of 0 items, or over 0 seconds, makes the run fail with
    /// [`Error::ZeroRate`]. To change the rate while the pipeline runs, use
    /// [`throttle_with`](Pipeline::throttle_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // 20 items at 100 per second: the first 10 at once, the rest over
    /// // about 0.1 s.
    /// let n = flowgate::from_iter(0..20u32)
    ///     .throttle(10, Duration::from_millis(100))
    ///     .count()
    ///     .run()?;
    /// assert_eq!(n, 20);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn throttle(self, items: u64, per: Duration) -> Pipeline<T> {
        self.throttle_with(&Rate::new(items, per))
    }

    /// Like [`throttle`](Pipeline::throttle), keeping to `rate`, which can
    /// be changed while the pipeline runs (see [`Rate`]). A slower rate
    /// also lowers the tokens saved up to the new burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowgate::Rate;
    ///
    /// let rate = Rate::new(5, Duration::from_millis(10));
    /// let speed_up = rate.clone();
    /// let n = flowgate::from_iter(0..200u32)
    ///     .inspect(move |&x| if x == 20 { speed_up.set(1_000, Duration::from_millis(10)).unwrap() })
    ///     .throttle_with(&rate)
    ///     .count()
    ///     .run()?;
    /// assert_eq!(n, 200);
    /// assert_eq!(rate.get().0, 1_000);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn throttle_with(self, rate: &Rate) -> Pipeline<T> {
        let rate = rate.clone();
        let (items, per, _) = rate.read();
        let built = self.chain("throttle", false, move |input, setup| async move {
            let mut work = Throttle::new(setup.out, rate);
            run_fed(input, &mut work).await
        });
        match check(items, Duration::from_nanos(per)) {
            Ok(()) => built,
            Err(err) => built.fail(err),
        }
    }
}

/// The work of a throttled stage: a token bucket.
struct Throttle<T> {
    out: Outlet<T>,
    rate: Rate,
    /// The rate's version last read, and the rate then.
    version: u64,
    items: u64,
    per: u64,
    /// Tokens in the bucket, at most `items`.
    tokens: u64,
    /// Tokens gained in part, as nanoseconds × items not yet a whole token.
    part: u128,
    /// When tokens were last counted in.
    last: Instant,
}

impl<T> Throttle<T> {
    fn new(out: Outlet<T>, rate: Rate) -> Self {
        let (items, per, version) = rate.read();
        Throttle {
            out,
            rate,
            version,
            items: items.max(1),
            per: per.max(1),
            tokens: items.max(1),
            part: 0,
            last: Instant::now(),
        }
    }

    /// Counts in the tokens gained since last time, at the rate now.
    fn refill(&mut self) {
        let (items, per, version) = self.rate.read();
        if version != self.version {
            self.version = version;
            self.items = items.max(1);
            self.per = per.max(1);
            self.tokens = self.tokens.min(self.items);
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = now;
        let gained = elapsed * u128::from(self.items) + self.part;
        let whole = gained / u128::from(self.per);
        self.part = gained % u128::from(self.per);
        let tokens = u128::from(self.tokens) + whole;
        if tokens >= u128::from(self.items) {
            self.tokens = self.items;
            self.part = 0;
        } else {
            self.tokens = tokens as u64;
        }
    }

    /// How long until the bucket holds `want` tokens.
    fn time_for(&self, want: u64) -> Duration {
        let need = u128::from(want.saturating_sub(self.tokens));
        let nanos = (need * u128::from(self.per))
            .saturating_sub(self.part)
            .div_ceil(u128::from(self.items));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many tokens to wait for when `left` items are waiting: as many
    /// as come in a [`QUANTUM`], at least one, at most a full bucket.
    fn batch(&self, left: usize) -> u64 {
        let per_quantum = u128::from(self.items) * QUANTUM.as_nanos() / u128::from(self.per);
        let per_quantum = u64::try_from(per_quantum).unwrap_or(u64::MAX);
        per_quantum
            .clamp(1, self.items)
            .min(u64::try_from(left).unwrap_or(u64::MAX))
    }
}

impl<I> Work<Chunk<I>> for Throttle<I> {
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        while !chunk.items.is_empty() {
            self.refill();
            if self.tokens == 0 {
                // Hand on what got through, then wait for the next tokens.
                self.out.flush().await?;
                let wait = self.time_for(self.batch(chunk.items.len()));
                let _waiting = self.out.stats().waiting_for_tokens();
                Timer::after(wait.min(LOOK_AGAIN)).await;
                continue;
            }
            let n = usize::try_from(self.tokens)
                .unwrap_or(usize::MAX)
                .min(chunk.items.len());
            self.out.put_front(chunk, n).await?;
            self.tokens -= n as u64;
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}
