//! What the tests share: a server per test, Redis queried directly, and a
//! watchdog.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use redis::{Commands, Value};

use crate::server::Server;

/// How long any one test may take before it counts as hung.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` with a fresh server, on its own thread, and fails if it has
/// not finished within [`WATCHDOG`]. Does nothing, after a notice, when
/// there is no `redis-server` and none is required.
pub fn with_server(f: impl FnOnce(&mut Server) + Send + 'static) {
    let Some(mut server) = Server::start() else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f(&mut server);
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: not done within {WATCHDOG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// A plain connection for the tests' own commands.
pub fn conn(server: &Server) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|client| client.get_connection())
        .expect("a connection to the test server")
}

/// Writes `n` entries `0..n` (as text) to `key`.
pub fn fill(server: &Server, key: &str, n: usize) {
    let mut conn = conn(server);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("payload")
                .arg(i.to_string())
                .ignore();
        }
        let () = pipe.query(&mut conn).expect("XADD");
    }
}

/// Entries pending in `group` of `key`, on every consumer.
pub fn pending(server: &Server, key: &str, group: &str) -> u64 {
    let summary: Value = redis::cmd("XPENDING")
        .arg(key)
        .arg(group)
        .query(&mut conn(server))
        .expect("XPENDING");
    match summary {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(n)) => *n as u64,
            other => panic!("XPENDING: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

/// Entries in the stream `key`.
pub fn len(server: &Server, key: &str) -> u64 {
    conn(server).xlen(key).expect("XLEN")
}

/// The entries of `key`, each as its fields.
pub fn entries(server: &Server, key: &str) -> Vec<Vec<(String, String)>> {
    let answer: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(&mut conn(server))
        .expect("XRANGE");
    let Value::Array(list) = answer else {
        panic!("XRANGE: {answer:?}")
    };
    list.into_iter()
        .map(|entry| {
            let Value::Array(mut parts) = entry else {
                panic!()
            };
            let Some(Value::Array(flat)) = parts.pop() else {
                panic!()
            };
            flat.chunks(2)
                .map(|pair| (text(&pair[0]), text(&pair[1])))
                .collect()
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The id of the server's current run, new at each start.
pub fn run_id(server: &Server) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut conn(server))
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .expect("a run_id")
        .trim()
        .to_owned()
}
