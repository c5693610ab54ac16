//! The clocks and gauges behind a stage's metrics: how long it waited on
//! its hops, and how full its input hops are.
//!
//! Everything is an atomic. A clock is read only when a stage is about to
//! wait, so a stage whose hops never make it wait reads no clock at all,
//! and one that does reads two per wait: at most a couple per chunk.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::run::Cell;

/// The items in one hop: how many now, the most there have been, and how
/// many fit.
///
/// The sender adds a chunk's items before sending it and the receiver takes
/// them off once it has the chunk, so `items` is also what makes the sender
/// wait when the hop is full.
pub(crate) struct Gauge {
    items: AtomicUsize,
    peak: AtomicUsize,
    capacity: usize,
}

impl Gauge {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Gauge {
            items: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            capacity,
        })
    }

    /// Claims room for `n` more items, if they fit.
    #[inline]
    pub(crate) fn try_add(&self, n: usize) -> bool {
        let capacity = self.capacity;
        match self.items.fetch_update(SeqCst, SeqCst, |held| {
            (held + n <= capacity).then_some(held + n)
        }) {
            Ok(held) => {
                let now = held + n;
                // A plain load first: the peak rarely rises, so the
                // read-modify-write is rare.
                if now > self.peak.load(Relaxed) {
                    self.peak.fetch_max(now, Relaxed);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back the room of `n` items that left the hop.
    #[inline]
    pub(crate) fn take(&self, n: usize) {
        self.items.fetch_sub(n, SeqCst);
    }

    /// Items in the hop now.
    pub(crate) fn items(&self) -> usize {
        self.items.load(Relaxed)
    }

    /// The most items the hop has held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }

    /// The most items the hop can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

/// `d` in nanoseconds, in 64-bit arithmetic (this runs on every timed
/// wait); it saturates after some 584 years.
#[inline]
pub(crate) fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// What feeds a stage: the stage that sends into one of its input hops,
/// and that hop's gauge.
#[derive(Clone)]
pub(crate) struct Feed {
    pub(crate) from: Arc<Cell>,
    pub(crate) hop: Arc<Gauge>,
}

/// The total time a stage spent in one kind of wait, and the start of the
/// wait it is in now, if any, so that a live report counts it too.
#[derive(Default)]
pub(crate) struct WaitClock {
    /// Nanoseconds of finished waits.
    total: AtomicU64,
    /// When the current wait began, in nanoseconds since the cell's epoch
    /// plus one; 0 when not waiting.
    since: AtomicU64,
}

impl WaitClock {
    /// The time waited up to `now` (nanoseconds since `epoch`), counting
    /// the wait in progress. A live value may be off by the one wait that
    /// ends while it is read.
    pub(crate) fn waited(&self, now: u64) -> Duration {
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
    /// Starts timing a wait of the stage whose cell is `cell`; `None` when
    /// the stage does not time its waits.
    pub(crate) fn start(&self, cell: &Cell) -> Option<Instant> {
        if !cell.is_timed() {
            return None;
        }
        let from = Instant::now();
        self.since.store(cell.stamp(from), Relaxed);
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

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(from) = self.from {
            self.clock.stop(from);
        }
    }
}

impl Cell {
    /// Starts timing a wait for room in an output hop: backpressure.
    pub(crate) fn waiting_to_send(&self) -> Waiting<'_> {
        Waiting {
            clock: &self.send_wait,
            from: self.send_wait.start(self),
        }
    }

    /// Starts timing a wait for input: starvation.
    pub(crate) fn waiting_to_receive(&self) -> Waiting<'_> {
        Waiting {
            clock: &self.recv_wait,
            from: self.recv_wait.start(self),
        }
    }
}
