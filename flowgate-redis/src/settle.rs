//! Settling entries with Redis once the pipeline is done with them: the
//! acknowledgements (`XACK`) and dead letters of many entries in one round
//! trip, and the credit that bounds how many entries a consumer holds.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use redis::Value;
use redis::aio::ConnectionManager;

use crate::entry::Fields;
use crate::error::transient;

/// The most entries settled in one round trip.
const MAX_BATCH: usize = 4096;

/// How long a failing round trip is retried before its entries are left
/// pending, to be delivered again.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// What to do with one entry.
#[derive(Debug)]
pub(crate) enum Settle {
    /// Acknowledge it: the pipeline is done with it.
    Ack(String),
    /// Write it to the dead-letter stream, then acknowledge it.
    Dead(Letter),
    /// Leave it pending, to be delivered again.
    Leave,
}

/// An entry bound for the dead-letter stream.
#[derive(Debug)]
pub(crate) struct Letter {
    pub(crate) id: String,
    pub(crate) stage: String,
    pub(crate) error: String,
    pub(crate) deliveries: u64,
    pub(crate) fields: Fields,
}

/// Where settled entries go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) key: String,
    pub(crate) group: String,
    pub(crate) dead_key: String,
}

/// The entries a consumer holds, read but not yet settled, against the
/// most it may: reads wait for credit, and settling gives it back.
pub(crate) struct Credit {
    held: AtomicUsize,
    max: usize,
    bell: Sender<()>,
    rung: Receiver<()>,
}

impl Credit {
    pub(crate) fn new(max: usize) -> Arc<Credit> {
        let (bell, rung) = async_channel::bounded(1);
        Arc::new(Credit {
            held: AtomicUsize::new(0),
            max,
            bell,
            rung,
        })
    }

    /// Waits until an entry more may be held: how many more, at most `want`.
    pub(crate) async fn available(&self, want: usize) -> usize {
        loop {
            let held = self.held.load(Ordering::SeqCst);
            if held < self.max {
                return want.min(self.max - held);
            }
            // The settler rings after each release, and the bell keeps one
            // ring: a release after the load above is not missed.
            if self.rung.recv().await.is_err() {
                return 0;
            }
        }
    }

    /// Counts `n` entries more as held.
    pub(crate) fn take(&self, n: usize) {
        self.held.fetch_add(n, Ordering::SeqCst);
    }

    /// Counts `n` entries as no longer held.
    pub(crate) fn release(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::SeqCst);
        let _ = self.bell.try_send(());
    }

    /// Entries held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

/// How many entries a source has settled, and how.
///
/// # Examples
///
/// ```
/// let tally = flowgate_redis::Tally::default();
/// assert_eq!(tally.acked + tally.dead_lettered + tally.left_pending, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tally {
    /// Entries acknowledged after the pipeline delivered, filtered or
    /// skipped them (dead letters not included).
    pub acked: u64,
    /// Entries written to the dead-letter stream and acknowledged: those a
    /// stage dead-lettered, those that could not be decoded, and those
    /// delivered more often than the limit.
    pub dead_lettered: u64,
    /// Entries left pending, to be delivered again: dropped by a cancel or
    /// failed by the run, or whose acknowledgement Redis could not take.
    pub left_pending: u64,
    /// Round trips to Redis (reads and acknowledgements) that failed and
    /// were tried again.
    pub retries: u64,
}

/// The running counts behind a [`Tally`].
#[derive(Default)]
pub(crate) struct Counts {
    acked: AtomicU64,
    dead_lettered: AtomicU64,
    left_pending: AtomicU64,
    retries: AtomicU64,
}

impl Counts {
    /// Counts a failed round trip that will be tried again.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` entries acknowledged.
    pub(crate) fn acked(&self, n: usize) {
        self.acked.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts `n` entries left pending.
    pub(crate) fn left(&self, n: usize) {
        self.left_pending.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn tally(&self) -> Tally {
        Tally {
            acked: self.acked.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            left_pending: self.left_pending.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// The settling of one consumer's entries: where to send how each entry
/// ends, the credit it holds, the counts, and the work that settles them
/// with Redis, to be run.
pub(crate) struct Settler<F> {
    pub(crate) inbox: Sender<Settle>,
    pub(crate) credit: Arc<Credit>,
    pub(crate) counts: Arc<Counts>,
    pub(crate) work: F,
}

/// A settler of up to `in_flight` entries held at once, into `target`.
pub(crate) fn settler(
    conn: ConnectionManager,
    target: Target,
    in_flight: usize,
) -> Settler<impl Future<Output = ()> + Send + 'static> {
    // Each entry held sends one message, and no more are held than the
    // credit allows: the inbox never fills.
    let (inbox, rx) = async_channel::bounded(in_flight);
    let credit = Credit::new(in_flight);
    let counts = Arc::new(Counts::default());
    let work = settle(rx, conn, target, Arc::clone(&credit), Arc::clone(&counts));
    Settler {
        inbox,
        credit,
        counts,
        work,
    }
}

/// Settles what comes in on `inbox` until every sender is gone: what is
/// ready at once goes to Redis in one round trip, retried while it fails
/// for a reason that may pass.
async fn settle(
    inbox: Receiver<Settle>,
    mut conn: ConnectionManager,
    target: Target,
    credit: Arc<Credit>,
    counts: Arc<Counts>,
) {
    let mut batch = Vec::new();
    while let Ok(first) = inbox.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let mut acks = Vec::new();
        let mut letters = Vec::new();
        let mut left = 0;
        for settle in batch.drain(..) {
            match settle {
                Settle::Ack(id) => acks.push(id),
                Settle::Dead(letter) => letters.push(letter),
                Settle::Leave => left += 1,
            }
        }
        if acks.is_empty() && letters.is_empty() {
            counts.left_pending.fetch_add(left, Ordering::Relaxed);
        } else if send(&mut conn, &target, &acks, &letters, &counts).await {
            counts.acked.fetch_add(acks.len() as u64, Ordering::Relaxed);
            counts
                .dead_lettered
                .fetch_add(letters.len() as u64, Ordering::Relaxed);
            counts.left_pending.fetch_add(left, Ordering::Relaxed);
        } else {
            counts.left_pending.fetch_add(n as u64, Ordering::Relaxed);
        }
        credit.release(n);
    }
}

/// One round trip: the dead letters written and every entry acknowledged,
/// in one transaction when there are dead letters, so that none is acked
/// without its letter. Gives whether Redis took it.
async fn send(
    conn: &mut ConnectionManager,
    target: &Target,
    acks: &[String],
    letters: &[Letter],
    counts: &Counts,
) -> bool {
    let mut pipe = redis::pipe();
    if !letters.is_empty() {
        pipe.atomic();
    }
    for letter in letters {
        let xadd = pipe
            .cmd("XADD")
            .arg(&target.dead_key)
            .arg("*")
            .arg("source_id")
            .arg(&letter.id)
            .arg("stage")
            .arg(&letter.stage)
            .arg("error")
            .arg(&letter.error)
            .arg("deliveries")
            .arg(letter.deliveries);
        for (field, value) in &letter.fields {
            xadd.arg(field).arg(value);
        }
        xadd.ignore();
    }
    let xack = pipe.cmd("XACK").arg(&target.key).arg(&target.group);
    for id in acks.iter().chain(letters.iter().map(|letter| &letter.id)) {
        xack.arg(id);
    }
    let started = Instant::now();
    let mut wait = Duration::from_millis(20);
    loop {
        match pipe.query_async::<Value>(conn).await {
            Ok(_) => return true,
            Err(err) if transient(&err) && started.elapsed() < GIVE_UP_AFTER => {
                counts.retried();
                smol::Timer::after(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(_) => return false,
        }
    }
}
