//! The clocks behind a stage's wait times: how long it waited for room in
//! its output hop and for input.
//!
//! Everything is an atomic. A clock is read only when a stage is about to
//! wait, so a stage whose hops never make it wait reads no clock at all,
//! and one that does reads two per wait: at most a couple per chunk.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// `d` in nanoseconds, in 64-bit arithmetic (this runs on every timed
/// wait); it saturates after some 584 years.
#[inline]
pub(super) fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// The total time a stage spent in one kind of wait, and the start of the
/// wait it is in now, if any, so that a live report counts it too.
#[derive(Default)]
pub(crate) struct WaitClock {
    /// Nanoseconds of finished waits.
    total: AtomicU64,
    /// When the current wait began, as a [`stamp`]; 0 when not waiting.
    since: AtomicU64,
}

impl WaitClock {
    /// The time waited up to `now` (nanoseconds since `epoch`), counting
    /// the wait in progress. A live value may be off by the one wait that
    /// ends while it is read.
    pub(super) fn waited(&self, now: u64) -> Duration {
        let since = self.since.load(Relaxed);
        let current = if since == 0 {
            0
        } else {
            now.saturating_sub(since)
        };
        Duration::from_nanos(self.total.load(Relaxed).saturating_add(current))
    }
}

impl WaitClock {
    /// Starts timing a wait, for a stage whose times are kept as stamps
    /// since `epoch`; `None` when the stage does not time its waits.
    pub(crate) fn start(&self, epoch: Instant, timed: bool) -> Option<Instant> {
        if !timed {
            return None;
        }
        let from = Instant::now();
        self.since.store(stamp(epoch, from), Relaxed);
        Some(from)
    }

    /// Ends the wait that [`start`](WaitClock::start) began at `from`.
    ///
    /// Only the task of the stage that owns the clock writes it, so a load
    /// and a store do: no read-modify-write is needed.
    pub(crate) fn stop(&self, from: Instant) {
        let waited = nanos(from.elapsed());
        let total = self.total.load(Relaxed).saturating_add(waited);
        self.total.store(total, Relaxed);
        self.since.store(0, Relaxed);
    }
}

/// A wait in progress: dropping it, when the wait ends or when the future
/// waiting is dropped, adds its length to the clock.
pub(crate) struct Waiting<'a> {
    clock: &'a WaitClock,
    from: Option<Instant>,
}

impl<'a> Waiting<'a> {
    /// Starts timing a wait on `clock`, as [`WaitClock::start`] does.
    pub(crate) fn start(clock: &'a WaitClock, epoch: Instant, timed: bool) -> Self {
        Waiting {
            clock,
            from: clock.start(epoch, timed),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(from) = self.from {
            self.clock.stop(from);
        }
    }
}

/// `at` as nanoseconds since `epoch`, plus one, so that 0 can mean unset.
#[inline]
pub(super) fn stamp(epoch: Instant, at: Instant) -> u64 {
    nanos(at.saturating_duration_since(epoch)).saturating_add(1)
}
