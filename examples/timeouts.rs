//! Python's `asyncio.wait_for` and `asyncio.timeout`, rebuilt on flowgate:
//! a send with a time limit, and a deadline on a whole run. Like the usual
//! asyncio demo, where a coroutine sleeps longer than the limit it is given,
//! both print `timeout!`, and then say what became of the work.
//!
//! Run with: cargo run --example timeouts -- [--sleep-ms 2000] [--limit-ms 1000]

use std::time::{Duration, Instant};

use clap::Parser;
use flowgate::{Consumer, Error, SendTimeoutError};

#[derive(Parser, Debug)]
#[command(about = "wait_for and timeout, on flowgate")]
struct Args {
    /// How long the slow work sleeps, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    sleep_ms: u64,
    /// The time limit, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    limit_ms: u64,
}

fn log(start: Instant, what: &str) {
    println!("{:>7.3}s  {what}", start.elapsed().as_secs_f64());
}

fn main() {
    let args = Args::parse();
    let (sleep, limit) = (
        Duration::from_millis(args.sleep_ms),
        Duration::from_millis(args.limit_ms),
    );
    let start = Instant::now();

    // 3.1 wait_for: a consumer that sleeps before it replies, and a send
    // that waits at most `limit` for the reply.
    println!("3.1 wait_for: send_timeout");
    let ex = smol::LocalExecutor::new();
    let (mut producer, _consumer) = Consumer::new_async((), move |_: &mut (), value: String| {
        async move {
            log(start, &format!("before print {value}"));
            smol::Timer::after(sleep).await;
            log(start, &format!("after print {value}")); // not printed
        }
    })
    .spawn_local(&ex);
    let sent = smol::block_on(ex.run(producer.send_timeout("value".to_owned(), limit)));
    match sent {
        Ok(()) => log(start, "done"),
        Err(SendTimeoutError::Unanswered) => log(start, "timeout!"),
        Err(err) => log(start, &format!("failed: {err}")),
    }
    drop(ex);

    // 3.2 timeout: a deadline on a whole pipeline run. The stage is
    // cancelled at the deadline, and the report accounts for the item.
    println!("\n3.2 timeout: a run deadline");
    let start = Instant::now();
    let run = flowgate::from_iter(["value"])
        .then(move |value| async move {
            log(start, &format!("before print {value}"));
            smol::Timer::after(sleep).await;
            log(start, &format!("after print {value}")); // not printed
        })
        .name("timeout_print")
        .count()
        .deadline(limit)
        .run();
    match run {
        Ok(n) => log(start, &format!("done: {n} item(s)")),
        Err(Error::DeadlineElapsed { report, .. }) => {
            log(start, "timeout!");
            println!("\n{report}");
        }
        Err(err) => log(start, &format!("failed: {err}")),
    }
}
