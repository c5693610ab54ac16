//! The sending side of remote send and reply: a client whose `send` gives
//! the reply that a flowgate service in another process computed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::ConnectionManager;

use crate::codec::{Bytes, Codec};
use crate::connect::Redis;
use crate::entry::{Entry, parse_read};
use crate::error::{Error, transient};
use crate::serve::{CORR_FIELD, ERROR_FIELD, REPLY_FIELD};
use crate::source::PAYLOAD_FIELD;

/// How long a blocking read of replies waits at most.
const BLOCK: Duration = Duration::from_millis(500);

/// Replies read between two trims of the reply stream.
const TRIM_EVERY: usize = 1024;

/// The reply to one request: every output the service made from it, or
/// [`Error::Refused`] if a stage skipped, dead-lettered or failed on it,
/// [`Error::NoReply`] if none came in time.
pub type Reply<T> = Result<Vec<T>, Error>;

/// Sends requests to a [`RemoteService`](crate::RemoteService) through a
/// Redis stream, and gives each one's reply: the generator-style
/// `reply = consumer.send(item)`, with the consumer in another process.
///
/// Each client has a reply stream of its own (`<requests>:reply:<unique>`,
/// which expires an hour after its last reply). A request carries a
/// correlation id and the name of that stream; the reply carries the id
/// back. [`send`](Client::send) waits for one reply at a time;
/// [`pipelined`](Client::pipelined) keeps a window of requests in flight
/// and gives the replies in send order. A request whose server crashed is
/// answered by another after the claim time; if two answers come, the
/// second is dropped and counted in [`duplicates`](Client::duplicates).
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Client, Redis, Utf8};
///
/// # smol::block_on(async {
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// let mut client = Client::new(&redis, "shout").codecs(Utf8, Utf8);
/// assert_eq!(client.send("hello".to_owned()).await?, ["HELLO"]);
/// # Ok::<(), flowgate_redis::Error>(())
/// # }).unwrap();
/// ```
pub struct Client<I: Codec, O: Codec> {
    conn: ConnectionManager,
    reads: ConnectionManager,
    requests: String,
    reply_key: String,
    input: I,
    output: O,
    timeout: Duration,
    next_corr: u64,
    /// Requests without a reply yet, in send order, sent or not.
    waiting: VecDeque<u64>,
    waiting_set: HashSet<u64>,
    /// Requests not yet sent.
    unsent: Vec<(u64, Vec<u8>)>,
    /// Replies read before they were asked for.
    early: HashMap<u64, Reply<O::Item>>,
    /// The id of the last reply read.
    last_id: String,
    read_since_trim: usize,
    duplicates: u64,
}

impl Client<Bytes, Bytes> {
    /// A client of the service that reads the stream `requests`, with
    /// requests and replies as bytes (set others with
    /// [`codecs`](Client::codecs)).
    pub fn new(redis: &Redis, requests: &str) -> Client<Bytes, Bytes> {
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "{}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos()),
            CLIENTS.fetch_add(1, Ordering::Relaxed)
        );
        // A blocking read of replies cannot fail to connect: the URL was
        // read when `redis` was made.
        let reads = redis
            .for_blocking_reads(BLOCK)
            .unwrap_or_else(|_| redis.shared());
        Client {
            conn: redis.shared(),
            reads,
            requests: requests.to_owned(),
            reply_key: format!("{requests}:reply:{unique}"),
            input: Bytes,
            output: Bytes,
            timeout: Duration::from_secs(60),
            next_corr: 0,
            waiting: VecDeque::new(),
            waiting_set: HashSet::new(),
            unsent: Vec::new(),
            early: HashMap::new(),
            last_id: "0".to_owned(),
            read_since_trim: 0,
            duplicates: 0,
        }
    }
}

impl<I: Codec, O: Codec> Client<I, O> {
    /// Encodes requests with `input` and decodes replies with `output`.
    /// Set before the first send.
    pub fn codecs<J: Codec, P: Codec>(self, input: J, output: P) -> Client<J, P> {
        Client {
            conn: self.conn,
            reads: self.reads,
            requests: self.requests,
            reply_key: self.reply_key,
            input,
            output,
            timeout: self.timeout,
            next_corr: self.next_corr,
            waiting: VecDeque::new(),
            waiting_set: HashSet::new(),
            unsent: Vec::new(),
            early: HashMap::new(),
            last_id: self.last_id,
            read_since_trim: 0,
            duplicates: self.duplicates,
        }
    }

    /// How long to wait for a reply before giving [`Error::NoReply`] (60 s
    /// by default). Keep it above the servers' claim time, so that a
    /// request whose server crashed can be answered by another.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This client's reply stream.
    pub fn reply_stream(&self) -> &str {
        &self.reply_key
    }

    /// Replies that came twice (a request answered again after its server
    /// crashed) and were dropped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Sends `item` and waits for its reply.
    ///
    /// The outer error is Redis failing; the reply itself may be
    /// [`Error::Refused`] or [`Error::NoReply`], flattened here.
    pub async fn send(&mut self, item: I::Item) -> Result<Vec<O::Item>, Error> {
        let corr = self.push(&item);
        self.flush().await?;
        self.wait_for(corr).await?
    }

    /// A window of up to `window` requests in flight, with replies in send
    /// order: see [`Pipelined`]. Fails with [`Error::Setting`] for a window
    /// of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate_redis::{Client, Error, Redis};
    ///
    /// let redis = Redis::open("redis://127.0.0.1:6379/")?;
    /// let mut client = Client::new(&redis, "requests");
    /// assert!(matches!(client.pipelined(0), Err(Error::Setting(_))));
    /// assert!(client.pipelined(64).is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn pipelined(&mut self, window: usize) -> Result<Pipelined<'_, I, O>, Error> {
        if window == 0 {
            return Err(Error::Setting("the window must be at least 1"));
        }
        Ok(Pipelined {
            client: self,
            window,
        })
    }

    /// Queues the request for `item`, to be sent at the next flush.
    fn push(&mut self, item: &I::Item) -> u64 {
        let corr = self.next_corr;
        self.next_corr += 1;
        self.unsent.push((corr, self.input.encode(item)));
        self.waiting.push_back(corr);
        self.waiting_set.insert(corr);
        corr
    }

    /// Sends the queued requests in one round trip.
    async fn flush(&mut self) -> Result<(), Error> {
        if self.unsent.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (corr, payload) in &self.unsent {
            pipe.cmd("XADD")
                .arg(&self.requests)
                .arg("*")
                .arg(CORR_FIELD)
                .arg(*corr)
                .arg(REPLY_FIELD)
                .arg(&self.reply_key)
                .arg(PAYLOAD_FIELD)
                .arg(payload)
                .ignore();
        }
        retry(&mut self.conn, &pipe).await?;
        self.unsent.clear();
        Ok(())
    }

    /// Waits for the reply to `corr`, reading replies as they come.
    async fn wait_for(&mut self, corr: u64) -> Result<Reply<O::Item>, Error> {
        let started = Instant::now();
        loop {
            if let Some(reply) = self.early.remove(&corr) {
                self.forget(corr);
                return Ok(reply);
            }
            let left = self.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                self.forget(corr);
                return Ok(Err(Error::NoReply(self.timeout)));
            }
            self.read_replies(left.min(BLOCK)).await?;
        }
    }

    /// No longer waits for `corr`: a reply that comes later is a duplicate.
    fn forget(&mut self, corr: u64) {
        self.waiting_set.remove(&corr);
        if let Some(at) = self.waiting.iter().position(|&c| c == corr) {
            self.waiting.remove(at);
        }
    }

    /// Reads the replies that have come, waiting up to `block` for one.
    async fn read_replies(&mut self, block: Duration) -> Result<(), Error> {
        let answer: Value = match redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1024)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&self.reply_key)
            .arg(&self.last_id)
            .query_async(&mut self.reads)
            .await
        {
            Ok(answer) => answer,
            Err(err) if transient(&err) => {
                smol::Timer::after(Duration::from_millis(50)).await;
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        };
        let entries = parse_read(answer)?;
        let Some(last) = entries.last() else {
            return Ok(());
        };
        self.last_id.clone_from(&last.id);
        self.read_since_trim += entries.len();
        for entry in entries {
            self.take_reply(entry);
        }
        if self.read_since_trim >= TRIM_EVERY {
            self.read_since_trim = 0;
            // Replies read are not needed again.
            let _: Result<Value, _> = redis::cmd("XTRIM")
                .arg(&self.reply_key)
                .arg("MINID")
                .arg(&self.last_id)
                .query_async(&mut self.conn)
                .await;
        }
        Ok(())
    }

    /// Keeps a reply for the request it answers, if that one still waits.
    fn take_reply(&mut self, entry: Entry) {
        let corr = entry
            .field(CORR_FIELD)
            .and_then(|corr| std::str::from_utf8(corr).ok())
            .and_then(|corr| corr.parse::<u64>().ok());
        let Some(corr) = corr else { return };
        if !self.waiting_set.contains(&corr) || self.early.contains_key(&corr) {
            self.duplicates += 1;
            return;
        }
        let reply = match entry.field(ERROR_FIELD) {
            Some(why) => Err(Error::Refused(String::from_utf8_lossy(why).into_owned())),
            None => entry
                .fields
                .iter()
                .filter(|(field, _)| field == PAYLOAD_FIELD.as_bytes())
                .map(|(_, bytes)| {
                    self.output.decode(bytes).map_err(|err| Error::Decode {
                        id: entry.id.clone(),
                        message: err.to_string(),
                    })
                })
                .collect(),
        };
        self.early.insert(corr, reply);
    }
}

impl<I: Codec, O: Codec> std::fmt::Debug for Client<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("requests", &self.requests)
            .field("reply_stream", &self.reply_key)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

/// Pipelined remote sends: up to a window of requests in flight, sent many
/// per round trip, with replies given in send order. Made by
/// [`Client::pipelined`].
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Client, Redis, Utf8};
///
/// # smol::block_on(async {
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// let mut client = Client::new(&redis, "shout").codecs(Utf8, Utf8);
/// let mut calls = client.pipelined(64)?;
/// let mut replies = Vec::new();
/// for word in ["a", "b", "c"] {
///     // Gives the oldest reply once the window is full.
///     replies.extend(calls.send(word.to_owned()).await?);
/// }
/// while let Some(reply) = calls.next().await? {
///     replies.push(reply);
/// }
/// assert_eq!(replies.len(), 3);
/// # Ok::<(), flowgate_redis::Error>(())
/// # }).unwrap();
/// ```
pub struct Pipelined<'a, I: Codec, O: Codec> {
    client: &'a mut Client<I, O>,
    window: usize,
}

impl<I: Codec, O: Codec> Pipelined<'_, I, O> {
    /// Queues a request for `item`. If the window is full, first sends
    /// the queued requests and waits for the oldest reply, which it gives.
    pub async fn send(&mut self, item: I::Item) -> Result<Option<Reply<O::Item>>, Error> {
        let oldest = if self.client.waiting.len() >= self.window {
            self.next().await?
        } else {
            None
        };
        self.client.push(&item);
        Ok(oldest)
    }

    /// Sends the queued requests and waits for the oldest reply; `None`
    /// when no request waits.
    pub async fn next(&mut self) -> Result<Option<Reply<O::Item>>, Error> {
        let Some(&oldest) = self.client.waiting.front() else {
            return Ok(None);
        };
        self.client.flush().await?;
        self.client.wait_for(oldest).await.map(Some)
    }

    /// Requests sent or queued that have no reply yet.
    pub fn waiting(&self) -> usize {
        self.client.waiting.len()
    }
}

impl<I: Codec, O: Codec> std::fmt::Debug for Pipelined<'_, I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelined")
            .field("window", &self.window)
            .field("client", &self.client)
            .finish()
    }
}

/// Sends `pipe`, retried while it fails for a reason that may pass, for up
/// to 30 s.
async fn retry(conn: &mut ConnectionManager, pipe: &redis::Pipeline) -> Result<(), Error> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(20);
    loop {
        match pipe.query_async::<()>(conn).await {
            Ok(()) => return Ok(()),
            Err(err) if transient(&err) && started.elapsed() < Duration::from_secs(30) => {
                smol::Timer::after(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
