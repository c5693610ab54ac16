//! A `redis-server` of the tests' own: started on a free loopback port in
//! a fresh folder, stopped and removed when dropped. Shared by the tests,
//! the examples and the benches.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the tests must have a server (`FLOWGATE_REDIS_REQUIRED=1`), so
/// that a missing one fails them instead of skipping them.
pub fn required() -> bool {
    std::env::var("FLOWGATE_REDIS_REQUIRED").is_ok_and(|v| v == "1")
}

/// Whether `redis-server` can be started.
pub fn available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A running `redis-server`.
pub struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    durable: bool,
}

impl Server {
    /// Starts a server that writes its append-only file to disk on every
    /// command, so that a restart keeps every acknowledged write; or gives
    /// `None` after a notice when there is no `redis-server` and none is
    /// required. Panics when one is required but cannot start.
    pub fn start() -> Option<Server> {
        Server::start_with(true)
    }

    /// Starts a server that keeps nothing on disk, as for a benchmark of
    /// the network path rather than of the disk.
    pub fn start_in_memory() -> Option<Server> {
        Server::start_with(false)
    }

    fn start_with(durable: bool) -> Option<Server> {
        if !available() {
            assert!(
                !required(),
                "FLOWGATE_REDIS_REQUIRED=1, but `redis-server` is not on PATH \
                 (apt-get install -y redis-server)"
            );
            // Once per process, past the test harness's capture of output.
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: the Redis tests are skipped: `redis-server` is not on PATH; \
                     install it (apt-get install -y redis-server), or set \
                     FLOWGATE_REDIS_REQUIRED=1 to make its absence fail them"
                );
            });
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "flowgate-redis-{}-{port}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("a folder for redis-server");
        let mut server = Server {
            child: None,
            port,
            dir,
            durable,
        };
        server.spawn();
        Some(server)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server without warning and starts it again on the same
    /// port, from its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the server without warning.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args([
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING in 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Whether a server on `port` answers `PING`, and has loaded its data.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}
