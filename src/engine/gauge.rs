//! A hop's gauge: the items in it, which is also what admits a sender's
//! chunk or makes it wait, and the most it has held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};

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
    /// Set when the receiving stage had all it needed (a `take`) and
    /// closed the hop: the sender then ends as done, not as cut off.
    released: AtomicBool,
}

impl Gauge {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Gauge {
            items: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            capacity,
            released: AtomicBool::new(false),
        })
    }

    /// Claims room for `n` more items, if they fit.
    #[inline]
    pub(super) fn try_add(&self, n: usize) -> bool {
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

    /// Records that the receiving stage needs nothing more.
    pub(super) fn release(&self) {
        self.released.store(true, SeqCst);
    }

    /// Whether the receiving stage needs nothing more.
    pub(super) fn is_released(&self) -> bool {
        self.released.load(SeqCst)
    }
}
