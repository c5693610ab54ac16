//! Worker processes that share one consumer group, killed without warning
//! mid-run: the worker's pipeline, and the run that starts, kills and
//! counts them. Shared by the crash test and the `workers` example.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowgate_redis::{Redis, StreamSink, StreamSource, Utf8, WriteStream};
use redis::Value;

/// The stream of work.
pub const JOBS: &str = "jobs";
/// The stream each processed entry is written to.
pub const DONE: &str = "jobs:done";
/// The consumer group the workers share.
pub const GROUP: &str = "workers";

/// A worker: reads `jobs` as `consumer`, does a little work on each entry,
/// and writes it to `jobs:done`; an entry is acknowledged once its write
/// is in. Claims the entries of a consumer idle for `claim_idle`. Runs
/// until its standard input closes, then shuts down.
pub fn worker(
    url: &str,
    consumer: &str,
    claim_idle: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let redis = Redis::open(url)?;
    let (pipeline, acks) = StreamSource::new(&redis, JOBS, GROUP, consumer)
        .codec(Utf8)
        .create_group(true)
        .block(Duration::from_millis(100))
        .claim_idle(Some(claim_idle))
        .claim_every(claim_idle / 4)
        .max_in_flight(256)
        .open()?;
    let control = pipeline.control();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        control.shutdown();
    });
    pipeline
        .map(|delivery| {
            work(&delivery.value);
            delivery.value
        })
        .write_stream(StreamSink::new(&redis, DONE).codec(Utf8))
        .run()?;
    smol::block_on(acks.finished());
    Ok(())
}

/// About 20 µs of work.
fn work(value: &str) {
    let until = Instant::now() + Duration::from_micros(20);
    let mut h = 0u64;
    while Instant::now() < until {
        for b in value.bytes() {
            h = h.rotate_left(5) ^ u64::from(b);
        }
    }
    std::hint::black_box(h);
}

/// What a crash run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub written: u64,
    pub processed: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub pending: u64,
    pub lost: u64,
    pub killed: u64,
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "| workers killed (SIGKILL)   | {:>9} |", self.killed)?;
        writeln!(f, "| entries written            | {:>9} |", self.written)?;
        writeln!(f, "| processed                  | {:>9} |", self.processed)?;
        writeln!(f, "| processed more than once   | {:>9} |", self.duplicates)?;
        writeln!(
            f,
            "| dead-lettered              | {:>9} |",
            self.dead_lettered
        )?;
        writeln!(f, "| pending at the end         | {:>9} |", self.pending)?;
        write!(f, "| lost                       | {:>9} |", self.lost)
    }
}

/// A kill planned for a crash run: once `at` of the entries are done, the
/// worker in slot `slot` is killed, and replaced by a worker under a new
/// name if `rename`, or under the killed worker's own name otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Kill {
    pub at: f64,
    pub slot: usize,
    pub rename: bool,
}

/// Writes `n` entries, starts `workers` worker processes made by `spawn`
/// (given a consumer name), kills them as `kills` plans, waits until every
/// entry is processed and acknowledged, shuts the rest down and counts.
pub fn crash_run(
    url: &str,
    n: u64,
    workers: usize,
    kills: &[Kill],
    spawn: impl Fn(&str) -> Command,
    limit: Duration,
) -> Table {
    let client = redis::Client::open(url).expect("a redis URL");
    let mut conn = client.get_connection().expect("a connection");
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("XADD")
                .arg(JOBS)
                .arg("*")
                .arg("payload")
                .arg(i.to_string())
                .ignore();
        }
        let () = pipe.query(&mut conn).expect("XADD");
    }
    let start = |name: &str| -> Child {
        spawn(name)
            .stdin(Stdio::piped())
            .spawn()
            .expect("a worker process starts")
    };
    let mut names: Vec<String> = (0..workers).map(|i| format!("worker-{i}")).collect();
    let mut children: Vec<Child> = names.iter().map(|name| start(name)).collect();
    let mut renamed = 0;
    let deadline = Instant::now() + limit;
    let mut killed = 0;
    for kill in kills {
        let target = (kill.at * n as f64) as u64;
        while xlen(&mut conn, DONE) < target {
            assert!(
                Instant::now() < deadline,
                "no progress to {target} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let child = &mut children[kill.slot];
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        killed += 1;
        if kill.rename {
            renamed += 1;
            names[kill.slot] = format!("worker-new-{renamed}");
        }
        children[kill.slot] = start(&names[kill.slot]);
    }
    // Done once the group has read every entry and none is pending.
    loop {
        let (lag, pending) = group_state(&mut conn);
        if lag == 0 && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done within {limit:?}: lag {lag}, pending {pending}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for mut child in children {
        drop(child.stdin.take());
        let status = child.wait().expect("a worker ends");
        assert!(status.success(), "a worker failed: {status}");
    }
    let done = payloads(&mut conn, DONE);
    let distinct: HashSet<&String> = done.iter().collect();
    let dead_lettered = xlen(&mut conn, "jobs:dead");
    let (_, pending) = group_state(&mut conn);
    let processed = done.len() as u64;
    Table {
        written: n,
        processed,
        duplicates: processed - distinct.len() as u64,
        dead_lettered,
        pending: u64::try_from(pending).unwrap_or(u64::MAX),
        lost: n - distinct.len() as u64 - dead_lettered,
        killed,
    }
}

fn xlen(conn: &mut redis::Connection, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query(conn).expect("XLEN")
}

/// The group's lag (entries not yet read) and pending count.
fn group_state(conn: &mut redis::Connection) -> (i64, i64) {
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(JOBS)
        .query(conn)
        .unwrap_or(Value::Nil);
    let Value::Array(groups) = groups else {
        return (i64::MAX, i64::MAX);
    };
    for group in groups {
        let Value::Array(flat) = group else { continue };
        let mut lag = i64::MAX;
        let mut pending = i64::MAX;
        let mut name = String::new();
        for pair in flat.chunks(2) {
            let key = match &pair[0] {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => continue,
            };
            match (key.as_str(), &pair[1]) {
                ("name", Value::BulkString(b)) => name = String::from_utf8_lossy(b).into_owned(),
                ("lag", Value::Int(v)) => lag = *v,
                ("pending", Value::Int(v)) => pending = *v,
                _ => {}
            }
        }
        if name == GROUP {
            return (lag, pending);
        }
    }
    (i64::MAX, i64::MAX)
}

/// Every entry's payload in `key`, in order.
fn payloads(conn: &mut redis::Connection, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = "-".to_owned();
    loop {
        let page: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(5000)
            .query(conn)
            .expect("XRANGE");
        let Value::Array(entries) = page else { break };
        if entries.is_empty() {
            break;
        }
        let mut last = String::new();
        for entry in entries {
            let Value::Array(mut parts) = entry else {
                continue;
            };
            let fields = parts.pop();
            if let Some(Value::BulkString(id)) = parts.pop() {
                last = String::from_utf8_lossy(&id).into_owned();
            }
            if let Some(Value::Array(flat)) = fields {
                for pair in flat.chunks(2) {
                    if let (Value::BulkString(k), Value::BulkString(v)) = (&pair[0], &pair[1]) {
                        if k == b"payload" {
                            out.push(String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
            }
        }
        from = format!("({last}");
    }
    out
}
