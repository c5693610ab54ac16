//! Remote send and reply: clients whose sends are answered by a flowgate
//! service in another thread or process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowgate::OnError;
use flowgate_redis::{Client, Error, Redis, RemoteService, Utf8};

use crate::helpers::{conn, pending, with_server};

/// Serves `requests` in a thread of its own, as server `name`: each
/// request `s` is answered `s!`; `skip` is refused, `none` gets no output.
fn serve(url: &str, name: &str, claim_idle: Duration) -> flowgate_redis::Serving {
    let redis = Redis::open(url).unwrap();
    RemoteService::new(&redis, "requests", "servers", name)
        .codecs(Utf8, Utf8)
        .block(Duration::from_millis(50))
        .claim_idle(Some(claim_idle))
        .claim_every(claim_idle / 4)
        .serve(|requests| {
            requests
                .filter(|s: &String| s != "none")
                .try_map(|s: String| {
                    if s == "skip" {
                        Err(std::io::Error::other("skipped on purpose"))
                    } else {
                        Ok(format!("{s}!"))
                    }
                })
                .on_error(OnError::skip())
        })
        .unwrap()
}

#[test]
fn sends_get_their_own_replies_in_order_one_at_a_time_and_pipelined() {
    with_server(|server| {
        let url = server.url();
        let serving = serve(&url, "s1", Duration::from_secs(30));
        let stop = serving.clone_stop();
        let running = std::thread::spawn(move || smol::block_on(serving.run()));
        let redis = Redis::open(&url).unwrap();
        let mut client = Client::new(&redis, "requests").codecs(Utf8, Utf8);
        smol::block_on(async {
            assert_eq!(client.send("hi".to_owned()).await.unwrap(), ["hi!"]);
            assert_eq!(
                client.send("none".to_owned()).await.unwrap(),
                Vec::<String>::new()
            );
            let refused = client.send("skip".to_owned()).await.unwrap_err();
            assert!(matches!(refused, Error::Refused(_)), "{refused}");
            let mut calls = client.pipelined(32).unwrap();
            let mut replies = Vec::new();
            for i in 0..1000 {
                if let Some(reply) = calls.send(i.to_string()).await.unwrap() {
                    replies.push(reply.unwrap());
                }
            }
            while let Some(reply) = calls.next().await.unwrap() {
                replies.push(reply.unwrap());
            }
            let want: Vec<Vec<String>> = (0..1000).map(|i| vec![format!("{i}!")]).collect();
            assert_eq!(replies, want);
        });
        stop.stop();
        let tally = running.join().unwrap().unwrap();
        assert_eq!(tally.acked, 1003, "{tally:?}");
        assert_eq!(pending(server, "requests", "servers"), 0);
        assert_eq!(client.duplicates(), 0);
    });
}

/// The environment variable that makes this test binary a server or a
/// client process.
const ROLE: &str = "FLOWGATE_REDIS_TEST_ROLE";

/// Not a test: the body of the processes the multi-process test starts.
#[test]
#[ignore = "the body of the remote test's server and client processes"]
fn remote_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let parts: Vec<&str> = role.split(' ').collect();
    match parts.as_slice() {
        ["server", url, name] => {
            let serving = serve(url, name, Duration::from_millis(500));
            smol::block_on(serving.run()).unwrap();
        }
        ["client", url, name, k] => {
            let k: usize = k.parse().unwrap();
            let redis = Redis::open(url).unwrap();
            let mut client = Client::new(&redis, "requests")
                .codecs(Utf8, Utf8)
                .timeout(Duration::from_secs(30));
            let replies = smol::block_on(async {
                let mut calls = client.pipelined(64).unwrap();
                let mut replies = Vec::new();
                for i in 0..k {
                    if let Some(reply) = calls.send(format!("{name}:{i}")).await.unwrap() {
                        replies.push(reply.unwrap());
                    }
                }
                while let Some(reply) = calls.next().await.unwrap() {
                    replies.push(reply.unwrap());
                }
                replies
            });
            let want: Vec<Vec<String>> = (0..k).map(|i| vec![format!("{name}:{i}!")]).collect();
            assert!(
                replies == want,
                "client {name}: replies out of order or foreign"
            );
            println!("duplicates {}", client.duplicates());
        }
        other => panic!("unknown role {other:?}"),
    }
}

fn process(role: String) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "remote::remote_process",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(ROLE, role)
        .stdout(Stdio::piped());
    command
}

#[test]
fn client_processes_get_their_own_replies_in_order_when_a_server_is_killed() {
    with_server(|server| {
        const CLIENTS: usize = 3;
        const K: usize = 3000;
        let url = server.url();
        let mut servers: Vec<_> = ["s1", "s2"]
            .iter()
            .map(|name| process(format!("server {url} {name}")).spawn().unwrap())
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| process(format!("client {url} c{c} {K}")).spawn().unwrap())
            .collect();
        // Kill a server once a third of the requests are in.
        let mut probe = conn(server);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let sent: u64 = redis::cmd("XLEN")
                .arg("requests")
                .query(&mut probe)
                .unwrap_or(0);
            if sent as usize >= CLIENTS * K / 3 {
                break;
            }
            assert!(Instant::now() < deadline, "the clients made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        servers[0].kill().unwrap();
        let _ = servers[0].wait();
        // The survivor claims what the dead server held.
        let mut duplicates = 0;
        for client in clients {
            let out = client.wait_with_output().unwrap();
            assert!(out.status.success(), "a client failed: {}", out.status);
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(n) = text.lines().find_map(|l| l.strip_prefix("duplicates ")) {
                duplicates += n.trim().parse::<u64>().unwrap();
            }
        }
        eprintln!(
            "{CLIENTS} clients x {K} requests, one of two servers killed: {duplicates} duplicate replies dropped"
        );
        for mut s in servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        assert_eq!(pending(server, "requests", "servers"), 0);
    });
}
