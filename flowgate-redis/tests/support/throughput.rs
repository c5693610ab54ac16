//! End-to-end throughput on a Redis server: a producer writes entries with
//! `XADD` while a consumer of a group reads and acknowledges them, either
//! through a flowgate pipeline (a read and an acknowledgement per chunk)
//! or one entry per round trip (`XREADGROUP COUNT 1`, then `XACK`), the
//! baseline. Shared by the connector's bench and the `workers` example.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flowgate_redis::{Redis, StreamSink, StreamSource};
use redis::Value;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub entries: u64,
    pub seconds: f64,
    /// CPU seconds the Redis server spent, user and system.
    pub redis_cpu: f64,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.entries as f64 / self.seconds
    }

    /// The Redis server's CPU time as a share of the wall time.
    pub fn redis_share(&self) -> f64 {
        self.redis_cpu / self.seconds
    }
}

/// A stream key not used before in this process.
fn fresh_key(kind: &str) -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench:{kind}:{}:{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `n` entries to `key`, 256 per round trip, in a thread.
fn produce(url: &str, key: &str, n: u64) -> std::thread::JoinHandle<()> {
    let redis = Redis::open(url).expect("a redis URL");
    let sink = StreamSink::new(&redis, key);
    std::thread::spawn(move || {
        smol::block_on(async {
            let all: Vec<Vec<u8>> = (0..n).map(|i| i.to_le_bytes().to_vec()).collect();
            for batch in all.chunks(256) {
                sink.write(batch).await.expect("XADD");
            }
        });
    })
}

fn value(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
}

/// The server's CPU seconds so far.
fn redis_cpu(url: &str) -> f64 {
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("a connection");
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut conn)
        .expect("INFO");
    info.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key, "used_cpu_sys" | "used_cpu_user")
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

fn cleanup(url: &str, key: &str) {
    if let Ok(mut conn) = redis::Client::open(url).and_then(|c| c.get_connection()) {
        let _: Result<Value, _> = redis::cmd("DEL").arg(key).query(&mut conn);
    }
}

/// A flowgate pipeline reads and acknowledges `n` entries as a producer
/// writes them: one `XREADGROUP` and one `XACK` per chunk.
pub fn chunked(url: &str, n: u64) -> Measured {
    let key = fresh_key("chunked");
    let redis = Redis::open(url).expect("a redis URL");
    let cpu = redis_cpu(url);
    let started = Instant::now();
    let producer = produce(url, &key, n);
    let (pipeline, acks) = StreamSource::new(&redis, &key, "g", "c")
        .create_group(true)
        .block(Duration::from_millis(10))
        .open()
        .expect("a source");
    let control = pipeline.control();
    let mut seen = 0u64;
    let sum = pipeline
        .map(|d| value(&d.value))
        .fold(0u64, move |sum, x| {
            seen += 1;
            if seen == n {
                control.shutdown();
            }
            sum.wrapping_add(x)
        })
        .run()
        .expect("the pipeline runs");
    let tally = smol::block_on(acks.finished());
    let seconds = started.elapsed().as_secs_f64();
    producer.join().expect("the producer");
    assert_eq!(sum, (0..n).sum::<u64>(), "checksum");
    assert_eq!(tally.acked, n, "acknowledged");
    let redis_cpu = redis_cpu(url) - cpu;
    cleanup(url, &key);
    Measured {
        entries: n,
        seconds,
        redis_cpu,
    }
}

/// The baseline: `n` entries read one per `XREADGROUP COUNT 1` and
/// acknowledged one per `XACK`, as a producer writes them.
pub fn per_entry(url: &str, n: u64) -> Measured {
    let key = fresh_key("per-entry");
    let client = redis::Client::open(url).expect("a redis URL");
    let cpu = redis_cpu(url);
    let started = Instant::now();
    let producer = produce(url, &key, n);
    // A plain blocking connection: the fastest way to make one round trip
    // at a time.
    let mut conn = client.get_connection().expect("a connection");
    let _: Result<Value, _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut conn);
    let mut sum = 0u64;
    let mut seen = 0;
    while seen < n {
        let answer: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query(&mut conn)
            .expect("XREADGROUP");
        let Some((id, payload)) = first_entry(answer) else {
            continue;
        };
        sum = sum.wrapping_add(value(&payload));
        seen += 1;
        let _: i64 = redis::cmd("XACK")
            .arg(&key)
            .arg("g")
            .arg(id)
            .query(&mut conn)
            .expect("XACK");
    }
    let seconds = started.elapsed().as_secs_f64();
    producer.join().expect("the producer");
    assert_eq!(sum, (0..n).sum::<u64>(), "checksum");
    let redis_cpu = redis_cpu(url) - cpu;
    cleanup(url, &key);
    Measured {
        entries: n,
        seconds,
        redis_cpu,
    }
}

/// The id and payload of the one entry of an `XREADGROUP COUNT 1` answer.
fn first_entry(answer: Value) -> Option<(Vec<u8>, Vec<u8>)> {
    let Value::Array(mut streams) = answer else {
        return None;
    };
    let Value::Array(mut stream) = streams.pop()? else {
        return None;
    };
    let Value::Array(mut entries) = stream.pop()? else {
        return None;
    };
    let Value::Array(mut entry) = entries.pop()? else {
        return None;
    };
    let Value::Array(fields) = entry.pop()? else {
        return None;
    };
    let Value::BulkString(id) = entry.pop()? else {
        return None;
    };
    match fields.get(1)? {
        Value::BulkString(payload) => Some((id, payload.clone())),
        _ => None,
    }
}
