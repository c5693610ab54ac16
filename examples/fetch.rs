//! The classic asyncio `wget` example, rebuilt on flowgate: several HTTP
//! requests at once, on one thread, through a parallel stage. (In Python,
//! each request is a coroutine that opens a connection with
//! `asyncio.open_connection`, writes a GET and prints the response's header
//! lines; `asyncio.gather` runs them together.)
//!
//! The example first starts its own HTTP/1.0 server on 127.0.0.1 (port 0, so
//! the system picks a free one), which answers each `GET /delay/<ms>/<n>`
//! after waiting `<ms>` milliseconds. Then a pipeline fetches the paths with
//! up to `--concurrency` requests in flight, printing each response's
//! header lines as the Python example does, and `Done <path>` when a page
//! is read.
//! Server and client are both pipelines on one single-threaded executor;
//! the total time comes out close to the slowest response, not the sum of
//! them.
//!
//! Run with: cargo run --example fetch -- [--requests 6] [--concurrency 6] [--unit-ms 100]

use std::time::{Duration, Instant};

use clap::Parser;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt, stream};
use smol::io::BufReader;
use smol::net::{TcpListener, TcpStream};
use smol::{LocalExecutor, Timer};

#[derive(Parser, Debug)]
#[command(about = "Fetch pages concurrently from a local HTTP server, on one thread")]
struct Args {
    /// How many pages to fetch.
    #[arg(long, default_value_t = 6)]
    requests: u32,
    /// How many requests may be in flight at once.
    #[arg(long, default_value_t = 6)]
    concurrency: usize,
    /// The server's delay unit, in milliseconds: page n takes 1 to 3 units.
    #[arg(long, default_value_t = 100)]
    unit_ms: u64,
}

/// What one fetch found.
struct Page {
    path: String,
    headers: Vec<String>,
    body_len: usize,
}

fn main() {
    let args = Args::parse();
    let ex = LocalExecutor::new();
    let result = smol::block_on(ex.run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // The server is a pipeline too, on the same thread: connections in,
        // up to 256 answered at once.
        let connections = stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        flowgate::from_stream(connections)
            .filter_map(Result::ok)
            .par_then_unordered(256, answer)
            .name("server")
            .for_each(|answered| {
                if let Err(err) = answered {
                    eprintln!("server: {err}");
                }
            })
            .spawn_local(&ex)
            .detach();

        let paths: Vec<String> = (1..=args.requests)
            .map(|n| format!("/delay/{}/{n}", args.unit_ms * (u64::from(n - 1) % 3 + 1)))
            .collect();
        let slowest = paths.iter().map(|p| delay_of(p)).max().unwrap_or_default();
        let total: Duration = paths.iter().map(|p| delay_of(p)).sum();

        let start = Instant::now();
        let pages = flowgate::from_iter(paths)
            .par_then_unordered(args.concurrency, move |path| wget(addr.to_string(), path))
            .name("wget")
            .fold(0usize, |n, page| match page {
                Ok(page) => {
                    let status = page.headers.first().map_or("no status line", String::as_str);
                    println!("Done {} ({status}, {} bytes of body)", page.path, page.body_len);
                    n + 1
                }
                Err(err) => {
                    eprintln!("fetch failed: {err}");
                    n
                }
            })
            .spawn_local(&ex)
            .await?;
        let took = start.elapsed();
        println!(
            "fetched {pages} of {} pages in {:.0?} with {} in flight: slowest response {:.0?}, sum of responses {:.0?}",
            args.requests, took, args.concurrency, slowest, total
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    }));
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

/// The delay a path asks the server for.
fn delay_of(path: &str) -> Duration {
    let ms = path
        .split('/')
        .nth(2)
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    Duration::from_millis(ms)
}

/// Fetches `path` from `host` over HTTP/1.0, printing each header line as
/// it arrives, as the Python `wget` example does.
async fn wget(host: String, path: String) -> std::io::Result<Page> {
    println!("wget {host}{path}...");
    let mut stream = TcpStream::connect(host.as_str()).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut reader = BufReader::new(stream);
    let mut headers = Vec::new();
    let mut lines = (&mut reader).lines();
    while let Some(line) = lines.next().await {
        let line = line?;
        if line.is_empty() {
            break;
        }
        println!("{host}{path} header > {line}");
        headers.push(line);
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body).await?;
    Ok(Page {
        path,
        headers,
        body_len: body.len(),
    })
}

/// Reads one `GET`, waits the delay its path asks for, and answers.
async fn answer(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    // Skip the rest of the request's headers.
    let mut line = String::new();
    while reader.read_line(&mut line).await? > 2 {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let delay = delay_of(&path);
    Timer::after(delay).await;
    let body = format!("page {path}\n");
    let response = format!(
        "HTTP/1.0 200 OK\r\nServer: flowgate-fetch\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Delay-Ms: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        delay.as_millis(),
    );
    let mut stream = stream;
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}
