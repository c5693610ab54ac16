//! Writing a pipeline's items to a stream, a chunk per round trip.

use std::time::{Duration, Instant};

use flowgate::{Job, Pipeline};
use redis::Value;

use crate::codec::{Bytes, Codec};
use crate::connect::Redis;
use crate::error::{Error, transient};
use crate::source::PAYLOAD_FIELD;

/// How long a failing write is retried before the run fails.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Writes items to a Redis stream with `XADD`: each chunk of items that
/// reaches the sink is written in one pipelined round trip, optionally
/// trimming the stream to about a set length (`MAXLEN ~`).
///
/// A write that fails for a reason that may pass (the server restarting)
/// is retried for up to 30 s; so an entry may be written twice, if Redis
/// took it but the answer was lost. A write that still fails fails the run
/// with [`flowgate::Error::Stage`], and the items not written are dropped:
/// a source with acknowledgements leaves them to be delivered again.
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Redis, StreamSink, Utf8, WriteStream};
///
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// flowgate::from_iter(1..=1000u32)
///     .map(|n| format!("order {n}"))
///     .write_stream(StreamSink::new(&redis, "orders").codec(Utf8).max_len(100_000))
///     .run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamSink<C> {
    redis: Redis,
    key: String,
    codec: C,
    field: String,
    max_len: Option<usize>,
}

impl StreamSink<Bytes> {
    /// Writes to the stream `key`, payloads as bytes (set another
    /// [`codec`](StreamSink::codec)).
    pub fn new(redis: &Redis, key: &str) -> StreamSink<Bytes> {
        StreamSink {
            redis: redis.clone(),
            key: key.to_owned(),
            codec: Bytes,
            field: PAYLOAD_FIELD.to_owned(),
            max_len: None,
        }
    }
}

impl<C: Codec> StreamSink<C> {
    /// Encodes items with `codec`.
    pub fn codec<D: Codec>(self, codec: D) -> StreamSink<D> {
        StreamSink {
            redis: self.redis,
            key: self.key,
            codec,
            field: self.field,
            max_len: self.max_len,
        }
    }

    /// Trims the stream to about `n` entries as it writes (`MAXLEN ~ n`):
    /// Redis trims whole nodes, so the stream may hold a few more.
    pub fn max_len(mut self, n: usize) -> Self {
        self.max_len = Some(n);
        self
    }

    /// The entry field that holds the payload; `payload` by default.
    pub fn payload_field(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    /// Writes `items`, in order, in one round trip, retried while it fails
    /// for a reason that may pass; gives the ids of the new entries.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// let redis = flowgate_redis::Redis::open("redis://127.0.0.1:6379/")?;
    /// let sink = flowgate_redis::StreamSink::new(&redis, "raw");
    /// let ids = sink.write(&[b"a".to_vec(), b"b".to_vec()]).await?;
    /// assert_eq!(ids.len(), 2);
    /// # Ok::<(), flowgate_redis::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn write(&self, items: &[C::Item]) -> Result<Vec<String>, Error>
    where
        C::Item: Sync,
    {
        let pipe = self.xadds(items);
        self.send(pipe).await
    }

    /// One `XADD` for each of `items`.
    fn xadds(&self, items: &[C::Item]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for item in items {
            let xadd = pipe.cmd("XADD").arg(&self.key);
            if let Some(n) = self.max_len {
                xadd.arg("MAXLEN").arg("~").arg(n);
            }
            xadd.arg("*").arg(&self.field).arg(self.codec.encode(item));
        }
        pipe
    }

    /// Sends `pipe`'s writes, retried while they fail for a reason that may
    /// pass; gives the ids of the new entries.
    async fn send(&self, pipe: redis::Pipeline) -> Result<Vec<String>, Error> {
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis.shared();
        let started = Instant::now();
        let mut wait = Duration::from_millis(20);
        loop {
            match pipe.query_async::<Vec<Value>>(&mut conn).await {
                Ok(ids) => {
                    return ids
                        .into_iter()
                        .map(|id| crate::entry::text("XADD", id))
                        .collect();
                }
                Err(err) if transient(&err) && started.elapsed() < GIVE_UP_AFTER => {
                    smol::Timer::after(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Ends a pipeline in a [`StreamSink`]: `pipeline.write_stream(sink)`.
///
/// # Examples
///
/// ```no_run
/// use flowgate_redis::{Redis, StreamSink, WriteStream};
///
/// let redis = Redis::open("redis://127.0.0.1:6379/")?;
/// flowgate::from_iter([b"a".to_vec(), b"b".to_vec()])
///     .write_stream(StreamSink::new(&redis, "letters"))
///     .run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait WriteStream<T> {
    /// Ends the pipeline in a sink that writes each chunk of items to the
    /// stream in one round trip. The items count as delivered once Redis
    /// has them.
    fn write_stream<C: Codec<Item = T>>(self, sink: StreamSink<C>) -> Job<()>;
}

impl<T: Send + 'static, S> WriteStream<T> for Pipeline<T, S> {
    fn write_stream<C: Codec<Item = T>>(self, sink: StreamSink<C>) -> Job<()> {
        self.try_for_each_chunk(move |items: Vec<T>| {
            let sink = sink.clone();
            let pipe = sink.xadds(&items);
            drop(items);
            async move { sink.send(pipe).await.map(drop) }
        })
    }
}
