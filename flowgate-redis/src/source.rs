//! A pipeline that reads a stream through a consumer group, and settles
//! each entry with Redis once its fate in the pipeline is final.

use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use flowgate::{Acknowledge, Outcome, Pipeline};

use crate::codec::{Bytes, Codec};
use crate::connect::Redis;
use crate::entry::{Delivery, Entry};
use crate::error::Error;
use crate::reader::{Group, Reader};
use crate::settle::{Counts, Credit, Letter, Settle, Tally, Target, settler};

/// The pipeline a [`StreamSource`] opens: each item a [`Delivery`].
pub type StreamPipeline<T> = Pipeline<Delivery<T>>;

/// The field that holds an entry's payload, unless set otherwise.
pub const PAYLOAD_FIELD: &str = "payload";

/// A source that reads a Redis stream through a consumer group, so that
/// several processes share its entries, and acknowledges each entry once
/// the pipeline is done with it.
///
/// - **Reads** (`XREADGROUP … COUNT n BLOCK ms`) ask for as many entries as
///   the pipeline's first hop has room for, and as this consumer may still
///   hold ([`max_in_flight`](StreamSource::max_in_flight)): a slow pipeline
///   reads less, and the entries pending on this consumer never outgrow
///   that bound. On start, the consumer first reads its own entries still
///   pending from an earlier run, then new ones.
/// - **Acknowledgements**: an entry the pipeline delivered, filtered or
///   skipped is acknowledged with `XACK`, many per round trip. One a stage
///   dead-lettered is written to the dead-letter stream with the stage, the
///   error and its delivery count, and acknowledged, in one `MULTI`. One
///   the run dropped (a cancel, a deadline, a failure) or failed on is left
///   pending, to be delivered again.
/// - **Crash recovery**: entries pending on any consumer of the group for
///   longer than [`claim_idle`](StreamSource::claim_idle) are claimed
///   (`XAUTOCLAIM`) and processed here. An entry delivered more than
///   [`max_deliveries`](StreamSource::max_deliveries) times goes to the
///   dead-letter stream instead, so that a poison entry cannot loop for
///   ever; so does one whose payload the codec cannot read.
///
/// Each item is a [`Delivery`]: the decoded payload with its entry id and
/// delivery count. A [`shutdown`](flowgate::Control::shutdown) stops the
/// reads (after the one in progress, at most the block time) and lets the
/// entries in flight finish and be acknowledged.
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Redis, StreamSource, Utf8};
///
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// let (pipeline, acks) = StreamSource::new(&redis, "orders", "billing", "worker-1")
///     .codec(Utf8)
///     .create_group(true)
///     .open()?;
/// let job = pipeline
///     .map(|order| order.value.to_uppercase())
///     .for_each(|order| println!("{order}"));
/// job.run()?; // until shut down or cancelled
/// let tally = smol::block_on(acks.finished());
/// println!("{} acknowledged", tally.acked);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamSource<C> {
    redis: Redis,
    codec: C,
    field: String,
    group: Group,
    dead_key: String,
    max_deliveries: u64,
}

impl StreamSource<Bytes> {
    /// Reads the stream `key` as consumer `consumer` of group `group`, with
    /// payloads as bytes (set another [`codec`](StreamSource::codec)).
    ///
    /// Consumers that share the work of a group need names of their own,
    /// kept across restarts (a host name, a worker number), so that a
    /// restarted consumer finds its own pending entries.
    pub fn new(redis: &Redis, key: &str, group: &str, consumer: &str) -> StreamSource<Bytes> {
        StreamSource {
            redis: redis.clone(),
            codec: Bytes,
            field: PAYLOAD_FIELD.to_owned(),
            group: Group {
                key: key.to_owned(),
                group: group.to_owned(),
                consumer: consumer.to_owned(),
                create: false,
                block: Duration::from_secs(1),
                claim_idle: Some(Duration::from_secs(30)),
                claim_every: Duration::from_secs(5),
                in_flight: 2048,
            },
            dead_key: format!("{key}:dead"),
            max_deliveries: 5,
        }
    }
}

impl<C: Codec> StreamSource<C> {
    /// Decodes payloads with `codec`.
    pub fn codec<D: Codec>(self, codec: D) -> StreamSource<D> {
        StreamSource {
            redis: self.redis,
            codec,
            field: self.field,
            group: self.group,
            dead_key: self.dead_key,
            max_deliveries: self.max_deliveries,
        }
    }

    /// Creates the group, reading the stream from its start, and the
    /// stream itself, if they do not exist (`XGROUP CREATE … 0 MKSTREAM`).
    /// Off by default: a missing group fails the run.
    pub fn create_group(mut self, create: bool) -> Self {
        self.group.create = create;
        self
    }

    /// How long a read waits for new entries before it tries again (1 s by
    /// default): also how long a shutdown may wait for the read in
    /// progress. At least 1 ms.
    pub fn block(mut self, block: Duration) -> Self {
        self.group.block = block;
        self
    }

    /// Entries pending on any consumer for longer than `idle` (30 s by
    /// default) are claimed by this one: those of a consumer that crashed
    /// or hangs. Keep it well above the time an entry takes, or entries
    /// still in progress elsewhere are processed twice. `None` claims
    /// nothing.
    pub fn claim_idle(mut self, idle: Option<Duration>) -> Self {
        self.group.claim_idle = idle;
        self
    }

    /// How often to look for entries to claim (5 s by default).
    pub fn claim_every(mut self, every: Duration) -> Self {
        self.group.claim_every = every;
        self
    }

    /// An entry delivered more than `n` times (5 by default) goes to the
    /// dead-letter stream instead of the pipeline.
    pub fn max_deliveries(mut self, n: u64) -> Self {
        self.max_deliveries = n;
        self
    }

    /// The stream dead letters go to; `<key>:dead` by default.
    pub fn dead_letter_stream(mut self, key: &str) -> Self {
        self.dead_key = key.to_owned();
        self
    }

    /// The most entries this consumer holds at once, read and not yet
    /// settled (2048 by default): the bound on its pending list.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.group.in_flight = n;
        self
    }

    /// The entry field that holds the payload; `payload` by default.
    pub fn payload_field(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    /// The pipeline that reads the stream, and the handle of its
    /// acknowledgements.
    ///
    /// Nothing is read until the pipeline runs. Fails at once if a setting
    /// cannot work: a zero block, claim time or `max_in_flight`, or
    /// `max_deliveries` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate_redis::{Error, Redis, StreamSource};
    ///
    /// // No connection is made until the pipeline runs.
    /// let redis = Redis::open("redis://127.0.0.1:6379/")?;
    /// let err = StreamSource::new(&redis, "jobs", "g", "c1").max_in_flight(0).open().unwrap_err();
    /// assert!(matches!(err, Error::Setting(_)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(self) -> Result<(StreamPipeline<C::Item>, Acks), Error> {
        let (settle_tx, credit, acks) = self.settler()?;
        let counts = Arc::clone(&acks.counts);
        let conn = self.redis.for_blocking_reads(self.group.block)?;
        let name = format!("xreadgroup {}", self.group.key);
        let reads = Reads {
            reader: Reader::new(conn, self.group.clone()),
            codec: self.codec,
            field: self.field,
            max_deliveries: self.max_deliveries,
            settle: settle_tx,
            credit,
            counts,
            failures: 0,
        };
        let (baton_tx, baton_rx) = async_channel::bounded(1);
        let _ = baton_tx.try_send(reads);
        let pipeline = flowgate::from_reads_acked(move |room| {
            let baton = (baton_tx.clone(), baton_rx.clone());
            async move {
                // Reads are one at a time: the state is always there.
                let Ok(mut reads) = baton.1.try_recv() else {
                    return Ok(None);
                };
                let batch = reads.read(room).await;
                let _ = baton.0.try_send(reads);
                batch.map(Some)
            }
        })
        .name(name);
        Ok((pipeline, acks))
    }

    /// Checks the settings, and starts the task that settles entries.
    fn settler(&self) -> Result<(Sender<Settle>, Arc<Credit>, Acks), Error> {
        self.group.check(self.max_deliveries)?;
        let target = Target {
            key: self.group.key.clone(),
            group: self.group.group.clone(),
            dead_key: self.dead_key.clone(),
        };
        let settler = settler(self.redis.shared(), target, self.group.in_flight);
        let acks = Acks {
            task: Some(smol::spawn(settler.work)),
            counts: settler.counts,
            credit: Arc::clone(&settler.credit),
        };
        Ok((settler.inbox, settler.credit, acks))
    }
}

/// The acknowledgements of a [`StreamSource`]'s entries, made in a task of
/// their own as the pipeline finishes with each entry.
///
/// Once the pipeline's run has ended, [`finished`](Acks::finished) waits
/// for the last of them to reach Redis. Dropped, the task goes on by
/// itself until then.
///
/// # Examples
///
/// ```no_run
/// # let redis = flowgate_redis::Redis::open("redis://127.0.0.1:6379/")?;
/// let (pipeline, acks) = flowgate_redis::StreamSource::new(&redis, "jobs", "g", "c").open()?;
/// let control = pipeline.control();
/// let running = pipeline.count().spawn_global();
/// // ... later, from anywhere:
/// control.shutdown();
/// let n = smol::block_on(running)?;
/// let tally = smol::block_on(acks.finished());
/// assert_eq!(tally.acked, n as u64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Acks {
    task: Option<smol::Task<()>>,
    counts: Arc<Counts>,
    credit: Arc<Credit>,
}

impl Acks {
    /// The entries settled so far.
    pub fn tally(&self) -> Tally {
        self.counts.tally()
    }

    /// How many entries this consumer holds now: read, and not yet
    /// settled with Redis.
    pub fn in_flight(&self) -> usize {
        self.credit.held()
    }

    /// Waits until every entry the pipeline held is settled with Redis,
    /// which is once its run has ended and the last acknowledgements are
    /// written; gives the final tally.
    pub async fn finished(mut self) -> Tally {
        if let Some(task) = self.task.take() {
            task.await;
        }
        self.counts.tally()
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl std::fmt::Debug for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acks")
            .field("tally", &self.tally())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// The state of a source's reads.
struct Reads<C> {
    reader: Reader,
    codec: C,
    field: String,
    max_deliveries: u64,
    settle: Sender<Settle>,
    credit: Arc<Credit>,
    counts: Arc<Counts>,
    /// Reads that failed in a row, for the wait before the next.
    failures: u32,
}

impl<C: Codec> Reads<C> {
    /// Reads at most `room` entries, as this consumer's credit allows, and
    /// gives those for the pipeline with their acknowledgements; the others
    /// (poison, unreadable, deleted) are settled here. A read that failed
    /// for a reason that may pass gives nothing, after a wait.
    async fn read(&mut self, room: usize) -> Result<Vec<(Delivery<C::Item>, EntryAck)>, Error> {
        let want = self.credit.available(room).await;
        let entries = match self.reader.read(want).await {
            Ok(entries) => entries,
            Err(err) if err.is_transient() => {
                self.counts.retried();
                self.failures += 1;
                let wait = Duration::from_millis(20 << self.failures.min(6));
                smol::Timer::after(wait).await;
                return Ok(Vec::new());
            }
            Err(err) => return Err(err),
        };
        self.failures = 0;
        self.credit.take(entries.len());
        let mut batch = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.admit(entry) {
                Ok(item) => batch.push(item),
                Err(settle) => {
                    let _ = self.settle.try_send(settle);
                }
            }
        }
        Ok(batch)
    }

    /// The item and acknowledgement of an entry, or how to settle it at
    /// once if it must not reach the pipeline.
    fn admit(&self, entry: Entry) -> Result<(Delivery<C::Item>, EntryAck), Settle> {
        if entry.fields.is_empty() {
            // Deleted from the stream while pending: nothing to process.
            return Err(Settle::Ack(entry.id));
        }
        if entry.deliveries > self.max_deliveries {
            let error = format!(
                "delivered {} times, more than the limit of {}",
                entry.deliveries, self.max_deliveries
            );
            return Err(dead(entry, error));
        }
        let value = match entry
            .field(&self.field)
            .map(|bytes| self.codec.decode(bytes))
        {
            Some(Ok(value)) => value,
            Some(Err(err)) => return Err(dead(entry, format!("could not decode: {err}"))),
            None => {
                let error = format!("no `{}` field", self.field);
                return Err(dead(entry, error));
            }
        };
        let delivery = Delivery {
            id: entry.id.clone(),
            deliveries: entry.deliveries,
            value,
        };
        let ack = EntryAck {
            entry,
            settle: self.settle.clone(),
        };
        Ok((delivery, ack))
    }
}

/// An entry the source itself sends to the dead-letter stream.
fn dead(entry: Entry, error: String) -> Settle {
    Settle::Dead(Letter {
        id: entry.id,
        stage: "source".to_owned(),
        error,
        deliveries: entry.deliveries,
        fields: entry.fields,
    })
}

/// The acknowledgement of one entry: tells the settler what became of it.
struct EntryAck {
    entry: Entry,
    settle: Sender<Settle>,
}

impl Acknowledge for EntryAck {
    fn acknowledge(self, outcome: Outcome) {
        let entry = self.entry;
        let settle = match outcome {
            Outcome::Delivered | Outcome::Filtered | Outcome::Skipped => Settle::Ack(entry.id),
            Outcome::DeadLettered { stage, error } => Settle::Dead(Letter {
                id: entry.id,
                stage,
                error,
                deliveries: entry.deliveries,
                fields: entry.fields,
            }),
            _ => Settle::Leave,
        };
        // The inbox has room for every entry held.
        let _ = self.settle.try_send(settle);
    }
}
