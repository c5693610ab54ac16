//! The generator producer/consumer of Python's coroutine tutorials, rebuilt
//! on flowgate:
//! the producer hands each item to the consumer with `send` and gets the
//! consumer's reply back, "200 OK", then closes the consumer.
//!
//! With no flags it replays the tutorial's dialog for 5 items. With `--quiet`
//! it becomes a throughput demo that prints a summary with round trips per
//! second and the checksum of the replies.
//!
//! With `--stages K` the items pass through K extra map stages before the
//! consumer, and each reply comes back end to end through the whole
//! pipeline.
//!
//! With `--quiet` (and without `--inline`), while it runs, a progress line
//! on stderr shows the items done and items per second, and with
//! `--stages K` how full each stage's input queue is. The line is drawn only
//! when stderr is a terminal. With `--stages K` the pipeline's report is
//! printed at the end: each stage's counts, items/s, busy and waiting
//! shares, peak queue, and the bottleneck.
//!
//! Run with: cargo run --release --example producer_consumer -- [--items N] [--capacity C] [--stages K] [--inline] [--pipelined] [--quiet]

use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use flowgate::{Consumer, Control, Report, SendError};
use futures_lite::{FutureExt, Stream, StreamExt, future};
use indicatif::{ProgressBar, ProgressStyle};
use smol::LocalExecutor;

#[derive(Parser, Debug)]
#[command(about = "A producer sends items to a consumer and gets each one's reply")]
struct Args {
    /// How many items the producer sends.
    #[arg(long, default_value_t = 5)]
    items: u64,
    /// How many sends can wait for the task consumer.
    #[arg(long, default_value_t = flowgate::DEFAULT_CONSUMER_CAPACITY)]
    capacity: usize,
    /// Extra map stages between the producer and the consumer; replies then
    /// come back end to end through all of them.
    #[arg(long, default_value_t = 0)]
    stages: usize,
    /// Drive a generator-style consumer inline, in the producer's task,
    /// instead of a consumer task.
    #[arg(long, conflicts_with = "stages")]
    inline: bool,
    /// Keep many sends in flight (task consumer only); replies are read as
    /// they come.
    #[arg(long, conflicts_with = "inline")]
    pipelined: bool,
    /// No line per item; print a summary at the end.
    #[arg(long)]
    quiet: bool,
    /// With `--stages`, print the pipeline's report as JSON at the end
    /// (needs `--features serde`).
    #[arg(long, requires = "stages")]
    json: bool,
}

/// The tutorial's consumer: it prints what it consumes and answers
/// "200 OK". Its state counts the items, like a generator's local.
fn consumer(
    quiet: bool,
    done: Arc<AtomicU64>,
) -> Consumer<u64, flowgate::SyncHandler<impl FnMut(&mut u64, u64) -> &'static str>> {
    Consumer::new(0u64, move |consumed: &mut u64, n: u64| {
        if !quiet {
            println!("[Consumer]Consuming {n}...");
        }
        *consumed += 1;
        done.store(*consumed, Ordering::Relaxed);
        "200 OK"
    })
    .name("consumer")
}

/// What the producer keeps of the replies: their count and a checksum.
#[derive(Default)]
struct Tally {
    ok: u64,
    checksum: u64,
}

impl Tally {
    fn add(&mut self, n: u64, reply: &str, quiet: bool) {
        if !quiet {
            println!("[PRODUCER]Consumer return: {reply}");
        }
        if reply == "200 OK" {
            self.ok += 1;
            self.checksum = self.checksum.wrapping_add(n);
        }
    }
}

/// Sends items `1..=items` through a pipelined sender while reading the
/// replies, in one task; `text` picks the reply's text out of `R`.
async fn pipelined_round_trips<R>(
    mut tx: flowgate::PipelinedSender<u64, R>,
    mut replies: flowgate::Replies<u64, R>,
    items: u64,
    quiet: bool,
    text: impl Fn(&R) -> &str,
) -> Result<Tally, SendError<u64>> {
    let send = async move {
        for n in 1..=items {
            announce(n, quiet);
            tx.send(n).await?;
        }
        tx.close().await;
        Ok::<_, SendError<u64>>(())
    };
    let read = async move {
        let mut tally = Tally::default();
        while let Some((ticket, reply)) = futures_lite::StreamExt::next(&mut replies).await {
            tally.add(ticket + 1, text(&reply?), quiet);
        }
        Ok::<_, SendError<u64>>(tally)
    };
    let (sent, tally) = future::zip(send, read).await;
    sent?;
    tally
}

fn announce(n: u64, quiet: bool) {
    if !quiet {
        println!("[Producer]Producing {n}...");
    }
}

fn run_inline(args: &Args) -> Result<(Tally, u64), SendError<u64>> {
    let mut c = consumer(args.quiet, Arc::default()).inline();
    let mut tally = Tally::default();
    future::block_on(async {
        for n in 1..=args.items {
            announce(n, args.quiet);
            let reply = c.send(n).await?;
            tally.add(n, reply, args.quiet);
        }
        Ok::<_, SendError<u64>>(())
    })?;
    Ok((tally, c.close()))
}

fn run_task(args: &Args) -> Result<(Tally, u64), Box<dyn std::error::Error>> {
    let done = Arc::default();
    let progress = args
        .quiet
        .then(|| Progress::start(None, Arc::clone(&done), args.items));
    let ex = LocalExecutor::new();
    let (mut producer, handle) = consumer(args.quiet, done)
        .capacity(args.capacity)
        .spawn_local(&ex);
    let _progress = progress.map(Progress::on_drop);
    future::block_on(ex.run(async {
        let mut tally = Tally::default();
        for n in 1..=args.items {
            announce(n, args.quiet);
            let reply = producer.send(n).await?;
            tally.add(n, reply, args.quiet);
        }
        producer.close();
        Ok((tally, handle.await?))
    }))
}

/// The producer sends through `--stages` map stages and then the consumer,
/// all opened as one service: each reply is the consumer's answer, carried
/// back through the whole pipeline.
fn run_stages(args: &Args) -> Result<(Tally, u64, Report), Box<dyn std::error::Error>> {
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&consumed);
    let (stages, quiet, capacity) = (args.stages, args.quiet, args.capacity);
    let (mut producer, job) = flowgate::service(move |s| {
        let mut s = s;
        for i in 0..stages {
            s = s
                .map(|n: u64| n)
                .name(format!("pass{}", i + 1))
                .capacity(capacity);
        }
        s.map(move |n| {
            if !quiet {
                println!("[Consumer]Consuming {n}...");
            }
            counter.fetch_add(1, Ordering::Relaxed);
            "200 OK"
        })
        .name("consumer")
    });
    let control = job.control();
    let progress = args
        .quiet
        .then(|| Progress::start(Some(control.clone()), Arc::clone(&consumed), args.items));
    let ex = LocalExecutor::new();
    let running = job.spawn_local(&ex);
    // The producer is a task too: the executor then switches between tasks
    // without waking the thread that blocks on it.
    let producing = ex.spawn(async {
        let mut tally = Tally::default();
        if args.pipelined {
            let (tx, replies) = producer.pipelined(4096)?;
            drop(producer);
            tally = pipelined_round_trips(tx, replies, args.items, quiet, |reply: &Vec<&str>| {
                reply.first().copied().unwrap_or("dropped")
            })
            .await?;
        } else {
            for n in 1..=args.items {
                announce(n, quiet);
                let reply = producer.send(n).await?;
                tally.add(n, reply.first().copied().unwrap_or("dropped"), quiet);
            }
            drop(producer);
        }
        running.await?;
        Ok::<_, Box<dyn std::error::Error>>(tally)
    });
    let tally = future::block_on(ex.run(producing));
    if let Some(progress) = progress {
        progress.finish();
    }
    Ok((tally?, consumed.load(Ordering::Relaxed), control.report()))
}

/// The live progress line: a thread redraws it on stderr ten times a
/// second, from the consumer's count and, when the consumer runs in a
/// pipeline, the pipeline's live reports (`Control::watch`).
struct Progress {
    stop: async_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    /// `control` is the pipeline's, if the consumer runs in one: the line
    /// then shows each stage's queue.
    fn start(control: Option<Control>, consumed: Arc<AtomicU64>, items: u64) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(items)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:20} {human_pos}/{human_len} items, {msg}")
                .expect("the template is valid"),
        );
        let every = Duration::from_millis(100);
        // A live report at each tick from a pipeline, a bare tick otherwise.
        let mut ticks: Pin<Box<dyn Stream<Item = Option<Report>> + Send>> = match control {
            Some(control) => Box::pin(control.watch(every).expect("a tick of 100 ms").map(Some)),
            None => Box::pin(smol::Timer::interval(every).map(|_| None)),
        };
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let stop = async {
                let _ = stopped.recv().await;
                None
            };
            smol::block_on(async {
                let mut stop = std::pin::pin!(stop);
                while let Some(report) = ticks.next().or(stop.as_mut()).await {
                    let done = consumed.load(Ordering::Relaxed);
                    bar.set_position(done);
                    let rate = done as f64 / start.elapsed().as_secs_f64() / 1e6;
                    let queues = report.as_ref().map(queues).unwrap_or_default();
                    bar.set_message(format!("{rate:.2} M/s{queues}"));
                }
            });
            bar.finish_and_clear();
        });
        Progress { stop, thread }
    }

    fn finish(self) {
        self.stop.close();
        let _ = self.thread.join();
    }

    /// Finishes the line when the guard is dropped, however the run ends.
    fn on_drop(self) -> impl Drop {
        struct Finish(Option<Progress>);
        impl Drop for Finish {
            fn drop(&mut self) {
                if let Some(progress) = self.0.take() {
                    progress.finish();
                }
            }
        }
        Finish(Some(self))
    }
}

/// Each stage's input queue as `name fill%`, for the progress line.
fn queues(report: &Report) -> String {
    let fill: Vec<String> = report
        .stages
        .iter()
        .filter(|stage| stage.queue_capacity > 0)
        .map(|stage| {
            let percent = 100 * stage.queued / stage.queue_capacity;
            format!("{} {percent}%", stage.name)
        })
        .collect();
    format!(" | queues: {}", fill.join(", "))
}

fn run_pipelined(args: &Args) -> Result<(Tally, u64), Box<dyn std::error::Error>> {
    let done = Arc::default();
    let progress = args
        .quiet
        .then(|| Progress::start(None, Arc::clone(&done), args.items));
    let _progress = progress.map(Progress::on_drop);
    let ex = LocalExecutor::new();
    let (producer, handle) = consumer(args.quiet, done)
        .capacity(args.capacity)
        .spawn_local(&ex);
    let (tx, replies) = producer.pipelined(4096)?;
    drop(producer);
    future::block_on(ex.run(async {
        let tally =
            pipelined_round_trips(tx, replies, args.items, args.quiet, |r: &&str| r).await?;
        Ok((tally, handle.await?))
    }))
}

/// The report as JSON.
#[cfg(feature = "serde")]
fn json(report: &Report) -> Result<String, Box<dyn std::error::Error>> {
    Ok(serde_json::to_string_pretty(report)?)
}

/// The report as JSON: not without the `serde` feature.
#[cfg(not(feature = "serde"))]
fn json(_: &Report) -> Result<String, Box<dyn std::error::Error>> {
    Err("--json needs the serde feature: cargo run --release --features serde --example producer_consumer -- --stages 2 --json".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let start = Instant::now();
    let mut report = None;
    let (tally, consumed) = if args.inline {
        run_inline(&args)?
    } else if args.stages > 0 {
        let (tally, consumed, run) = run_stages(&args)?;
        report = Some(run);
        (tally, consumed)
    } else if args.pipelined {
        run_pipelined(&args)?
    } else {
        run_task(&args)?
    };
    let elapsed = start.elapsed();
    if args.quiet {
        let mode = match (args.inline, args.pipelined) {
            (true, _) => "inline",
            (false, true) => "pipelined",
            (false, false) => "sequential",
        };
        println!(
            "{} round trips ({mode}, {} extra stages) in {:.3} s: {:.2} M/s, {} replies \"200 OK\", checksum {}",
            args.items,
            args.stages,
            elapsed.as_secs_f64(),
            args.items as f64 / elapsed.as_secs_f64() / 1e6,
            tally.ok,
            tally.checksum,
        );
        if let Some(report) = &report {
            println!("\n{report}");
        }
    }
    if let (true, Some(report)) = (args.json, &report) {
        println!("{}", json(report)?);
    }
    if consumed != args.items || tally.ok != args.items {
        return Err(format!(
            "sent {} items, but the consumer took {consumed} and {} replies came back",
            args.items, tally.ok
        )
        .into());
    }
    Ok(())
}
