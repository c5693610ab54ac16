//! An item that counts how many of its kind are alive, so a test can show
//! that every item was dropped exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The live count shared by a family of [`Tracked`] items.
#[derive(Debug, Clone, Default)]
pub struct Live(Arc<AtomicI64>);

impl Live {
    pub fn new() -> Self {
        Live::default()
    }

    /// How many items of this family exist right now.
    pub fn count(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// A new live item.
    pub fn item(&self, value: u64) -> Tracked {
        self.0.fetch_add(1, Ordering::SeqCst);
        Tracked {
            value,
            live: self.clone(),
        }
    }
}

/// A value whose creation and drop move its family's [`Live`] count.
#[derive(Debug)]
pub struct Tracked {
    pub value: u64,
    live: Live,
}

impl Tracked {
    /// A new item of the same family.
    pub fn with(&self, value: u64) -> Tracked {
        self.live.item(value)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.with(self.value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.0.fetch_sub(1, Ordering::SeqCst);
    }
}
