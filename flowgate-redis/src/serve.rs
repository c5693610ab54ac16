//! The serving side of remote send and reply: requests read from a stream
//! through a consumer group, answered by a flowgate service, each reply
//! written to its client's reply stream and the request acknowledged in
//! the same transaction.

use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use flowgate::{Pipeline, SendError};
use futures_lite::future;
use redis::aio::ConnectionManager;

use crate::codec::{Bytes, Codec};
use crate::connect::Redis;
use crate::entry::Entry;
use crate::error::{Error, transient};
use crate::reader::{Group, Reader};
use crate::settle::{Counts, Letter, Settle, Settler, Tally, Target, settler};
use crate::source::PAYLOAD_FIELD;

/// The field of a request or reply that holds the correlation id.
pub(crate) const CORR_FIELD: &str = "corr";
/// The field of a request that names the client's reply stream.
pub(crate) const REPLY_FIELD: &str = "reply";
/// The field of a reply that holds why the request was refused.
pub(crate) const ERROR_FIELD: &str = "error";

/// How long a reply stream lives after its last reply, in milliseconds.
const REPLY_TTL_MS: u64 = 3_600_000;

/// A flowgate service that answers requests sent by [`Client`]s in other
/// processes, through Redis Streams.
///
/// The requests are read from a stream through a consumer group, so that
/// several processes share them, with the same reads, claims and poison
/// limit as a [`StreamSource`](crate::StreamSource). Each request goes
/// through the pipeline that `build` makes, exactly as through
/// [`flowgate::service`]: its reply is every output it led to. The reply
/// is written to the client's own reply stream and the request
/// acknowledged in one `MULTI`, so a request is never acknowledged without
/// its reply. A request the service skipped, dead-lettered or failed on
/// gets a reply that says so; one still in flight when the service is
/// cancelled or crashes stays pending, and is answered by another
/// process after the claim time.
///
/// [`Client`]: crate::Client
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Redis, RemoteService, Utf8};
///
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// let service = RemoteService::new(&redis, "shout", "servers", "server-1")
///     .codecs(Utf8, Utf8)
///     .serve(|requests| requests.map(|s: String| s.to_uppercase()))?;
/// let stop = service.clone_stop();
/// # stop.stop();
/// let tally = smol::block_on(service.run())?;
/// println!("{} requests answered", tally.acked);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RemoteService<I, O> {
    redis: Redis,
    group: Group,
    dead_key: String,
    max_deliveries: u64,
    input: I,
    output: O,
}

impl RemoteService<Bytes, Bytes> {
    /// Serves the requests of the stream `key` as consumer `consumer` of
    /// `group`, creating the group if missing, with requests and replies as
    /// bytes (set others with [`codecs`](RemoteService::codecs)).
    pub fn new(redis: &Redis, key: &str, group: &str, consumer: &str) -> Self {
        RemoteService {
            redis: redis.clone(),
            group: Group {
                key: key.to_owned(),
                group: group.to_owned(),
                consumer: consumer.to_owned(),
                create: true,
                block: Duration::from_millis(500),
                claim_idle: Some(Duration::from_secs(30)),
                claim_every: Duration::from_secs(5),
                in_flight: 1024,
            },
            dead_key: format!("{key}:dead"),
            max_deliveries: 5,
            input: Bytes,
            output: Bytes,
        }
    }
}

impl<I: Codec, O: Codec> RemoteService<I, O> {
    /// Decodes requests with `input` and encodes replies with `output`.
    pub fn codecs<J: Codec, P: Codec>(self, input: J, output: P) -> RemoteService<J, P> {
        RemoteService {
            redis: self.redis,
            group: self.group,
            dead_key: self.dead_key,
            max_deliveries: self.max_deliveries,
            input,
            output,
        }
    }

    /// Requests pending on any server for longer than `idle` (30 s by
    /// default) are claimed and answered here; `None` claims nothing.
    pub fn claim_idle(mut self, idle: Option<Duration>) -> Self {
        self.group.claim_idle = idle;
        self
    }

    /// How often to look for requests to claim (5 s by default).
    pub fn claim_every(mut self, every: Duration) -> Self {
        self.group.claim_every = every;
        self
    }

    /// A request delivered more than `n` times (5 by default) goes to the
    /// dead-letter stream (`<key>:dead`) unanswered.
    pub fn max_deliveries(mut self, n: u64) -> Self {
        self.max_deliveries = n;
        self
    }

    /// The most requests held at once (1024 by default).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.group.in_flight = n;
        self
    }

    /// How long a read waits for requests (500 ms by default): also how
    /// long [`Stop::stop`] may wait for the read in progress.
    pub fn block(mut self, block: Duration) -> Self {
        self.group.block = block;
        self
    }

    /// The service, ready to [`run`](Serving::run): `build` chains its
    /// stages onto the requests, as for [`flowgate::service`].
    ///
    /// Fails at once if a setting cannot work.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate_redis::{Error, Redis, RemoteService, Utf8};
    ///
    /// let redis = Redis::open("redis://127.0.0.1:6379/")?;
    /// let bad = RemoteService::new(&redis, "requests", "servers", "s1")
    ///     .codecs(Utf8, Utf8)
    ///     .max_deliveries(0)
    ///     .serve(|requests| requests.map(|s: String| s.len().to_string()));
    /// assert!(matches!(bad, Err(Error::Setting(_))));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn serve<S, F>(self, build: F) -> Result<Serving, Error>
    where
        F: FnOnce(Pipeline<I::Item>) -> Pipeline<O::Item, S>,
    {
        self.group.check(self.max_deliveries)?;
        let in_flight = self.group.in_flight;
        let (producer, job) = flowgate::service(build);
        let (mut tx, mut replies) = producer
            .pipelined(in_flight)
            .map_err(|_| Error::Setting("`max_in_flight` is too large for a pipelined window"))?;
        drop(producer);
        let control = job.control();
        let target = Target {
            key: self.group.key.clone(),
            group: self.group.group.clone(),
            dead_key: self.dead_key.clone(),
        };
        let Settler {
            inbox: settle_tx,
            credit,
            counts,
            work: settler,
        } = settler(self.redis.shared(), target.clone(), in_flight);
        let (metas_tx, metas) = async_channel::bounded::<Meta>(in_flight);
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let mut reader = Reader::new(self.redis.for_blocking_reads(self.group.block)?, self.group);
        let input = self.input;
        let max_deliveries = self.max_deliveries;
        let feed_credit = Arc::clone(&credit);
        let feed_counts = Arc::clone(&counts);
        let feed = async move {
            let mut failures = 0u32;
            while !stop_rx.is_closed() {
                let want = feed_credit.available(in_flight).await;
                let entries = match reader.read(want).await {
                    Ok(entries) => entries,
                    Err(err) if err.is_transient() => {
                        feed_counts.retried();
                        failures += 1;
                        smol::Timer::after(Duration::from_millis(20 << failures.min(6))).await;
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                failures = 0;
                feed_credit.take(entries.len());
                for entry in entries {
                    match admit(entry, &input, max_deliveries) {
                        Ok((item, meta)) => {
                            if tx.send(item).await.is_err() || metas_tx.send(meta).await.is_err() {
                                // The service has ended: what was read
                                // stays pending.
                                return Ok(());
                            }
                        }
                        Err(settle) => {
                            let _ = settle_tx.try_send(settle);
                        }
                    }
                }
                tx.flush().await;
            }
            tx.close().await;
            Ok(())
        };
        let mut conn = self.redis.shared();
        let output = self.output;
        let answer_counts = Arc::clone(&counts);
        let answer = async move {
            while let Some(chunk) = replies.next_chunk().await {
                let mut answered = Vec::new();
                let mut left = 0;
                for (_ticket, reply) in chunk {
                    let Ok(meta) = metas.recv().await else { break };
                    match reply {
                        Ok(outputs) => answered.push((meta, Ok(outputs))),
                        Err(SendError::Cancelled | SendError::Closed(_)) => left += 1,
                        Err(err) => answered.push((meta, Err(err.to_string()))),
                    }
                }
                let n = answered.len() + left;
                let replied = answered.len();
                if answered.is_empty() {
                    answer_counts.left(left);
                } else if send_replies(
                    &mut conn,
                    replies_pipe(&target, &output, answered),
                    &answer_counts,
                )
                .await
                {
                    answer_counts.acked(replied);
                    answer_counts.left(left);
                } else {
                    answer_counts.left(n);
                }
                credit.release(n);
            }
        };
        let run = async move {
            let ((fed, job), ((), ())) = future::zip(
                future::zip(feed, async move { job.await }),
                future::zip(answer, settler),
            )
            .await;
            fed?;
            match job {
                Ok(()) | Err(flowgate::Error::Cancelled { .. }) => Ok(counts.tally()),
                Err(err) => Err(Error::Service(err.to_string())),
            }
        };
        Ok(Serving {
            run: Box::pin(run),
            stop: Stop {
                stop: stop_tx,
                control,
            },
        })
    }
}

/// A [`RemoteService`] ready to run.
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Redis, RemoteService};
///
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// let serving = RemoteService::new(&redis, "requests", "servers", "s1")
///     .serve(|requests| requests.map(|bytes: Vec<u8>| bytes.len().to_le_bytes().to_vec()))?;
/// let stop = serving.clone_stop();
/// let server = std::thread::spawn(move || smol::block_on(serving.run()));
/// // ... and when it is time to go:
/// stop.stop();
/// let tally = server.join().unwrap()?;
/// println!("{} answered, {} left for other servers", tally.acked, tally.left_pending);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Serving {
    run: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Tally, Error>> + Send>>,
    stop: Stop,
}

impl Serving {
    /// Serves until stopped: gives how many requests were answered
    /// (`acked`), dead-lettered, or left pending for another server.
    pub async fn run(self) -> Result<Tally, Error> {
        self.run.await
    }

    /// A handle that stops the service from anywhere.
    pub fn clone_stop(&self) -> Stop {
        self.stop.clone()
    }
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").finish_non_exhaustive()
    }
}

/// Stops a [`Serving`] service, from any thread: see the example of
/// [`Serving`].
#[derive(Clone, Debug)]
pub struct Stop {
    stop: Sender<()>,
    control: flowgate::Control,
}

impl Stop {
    /// Stops reading requests; those read are answered, then the service
    /// ends.
    pub fn stop(&self) {
        self.stop.close();
    }

    /// Stops at once: the requests in flight stay pending, to be answered
    /// by another server.
    pub fn cancel(&self) {
        self.stop();
        self.control.cancel();
    }
}

/// Requests with their replies, or why they were refused.
type Answered<T> = Vec<(Meta, Result<Vec<T>, String>)>;

/// What the answering side needs of a request.
struct Meta {
    id: String,
    corr: Vec<u8>,
    reply: Vec<u8>,
}

/// The item and what its reply needs, or how to settle a request that
/// must not reach the service.
fn admit<I: Codec>(
    entry: Entry,
    codec: &I,
    max_deliveries: u64,
) -> Result<(I::Item, Meta), Settle> {
    if entry.fields.is_empty() {
        return Err(Settle::Ack(entry.id));
    }
    let why = if entry.deliveries > max_deliveries {
        format!(
            "delivered {} times, more than the limit of {max_deliveries}",
            entry.deliveries
        )
    } else {
        match (
            entry.field(CORR_FIELD),
            entry.field(REPLY_FIELD),
            entry.field(PAYLOAD_FIELD).map(|bytes| codec.decode(bytes)),
        ) {
            (Some(corr), Some(reply), Some(Ok(item))) => {
                let meta = Meta {
                    corr: corr.to_vec(),
                    reply: reply.to_vec(),
                    id: entry.id,
                };
                return Ok((item, meta));
            }
            (_, _, Some(Err(err))) => format!("could not decode: {err}"),
            _ => "not a request: it needs `corr`, `reply` and `payload` fields".to_owned(),
        }
    };
    Err(Settle::Dead(Letter {
        id: entry.id,
        stage: "source".to_owned(),
        error: why,
        deliveries: entry.deliveries,
        fields: entry.fields,
    }))
}

/// One transaction that writes each reply to its client's stream and
/// acknowledges the requests.
fn replies_pipe<O: Codec>(
    target: &Target,
    codec: &O,
    answered: Answered<O::Item>,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (meta, reply) in &answered {
        let xadd = pipe
            .cmd("XADD")
            .arg(&meta.reply)
            .arg("*")
            .arg(CORR_FIELD)
            .arg(&meta.corr);
        match reply {
            Ok(outputs) => {
                for output in outputs {
                    xadd.arg(PAYLOAD_FIELD).arg(codec.encode(output));
                }
                if outputs.is_empty() {
                    // An entry needs a field: an empty reply says `none`.
                    xadd.arg("none").arg("");
                }
            }
            Err(why) => {
                xadd.arg(ERROR_FIELD).arg(why);
            }
        }
        xadd.ignore();
        pipe.cmd("PEXPIRE")
            .arg(&meta.reply)
            .arg(REPLY_TTL_MS)
            .ignore();
    }
    let xack = pipe.cmd("XACK").arg(&target.key).arg(&target.group);
    for (meta, _) in answered {
        xack.arg(&meta.id);
    }
    xack.ignore();
    pipe
}

/// Sends the transaction of [`replies_pipe`], retried while it fails for a
/// reason that may pass; gives whether Redis took it.
async fn send_replies(
    conn: &mut ConnectionManager,
    pipe: redis::Pipeline,
    counts: &Counts,
) -> bool {
    let mut wait = Duration::from_millis(20);
    let started = std::time::Instant::now();
    loop {
        match pipe.query_async::<()>(conn).await {
            Ok(()) => return true,
            Err(err) if transient(&err) && started.elapsed() < Duration::from_secs(60) => {
                counts.retried();
                smol::Timer::after(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(_) => return false,
        }
    }
}
