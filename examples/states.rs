//! The states of an asyncio task (pending, running, done, cancelled), shown
//! on a flowgate pipeline: Pending before it runs,
//! Running while it does, Done at the end; and a second run, cancelled
//! while it works, that ends Cancelled with its report.
//!
//! Run with: cargo run --example states -- [--items 5] [--cancel-after 3]

use std::time::Duration;

use clap::Parser;
use flowgate::{Error, State};

#[derive(Parser, Debug)]
#[command(about = "Pipeline states, as asyncio task states")]
struct Args {
    /// Items each pipeline handles.
    #[arg(long, default_value_t = 5)]
    items: u64,
    /// The second run is cancelled once this many items have been handled.
    #[arg(long, default_value_t = 3)]
    cancel_after: u64,
}

/// A pipeline that "works" 100 ms on each item, like the sleeping
/// `do_some_work` coroutine of the usual asyncio demo.
fn work(items: u64) -> flowgate::Job<usize> {
    flowgate::from_iter(1..=items)
        .name("tasks")
        .then(|x| async move {
            smol::Timer::after(Duration::from_millis(100)).await;
            x
        })
        .name("do_some_work")
        .count()
        .name("done")
}

fn main() {
    let args = Args::parse();
    let ex = smol::Executor::new();

    println!("run 1: to the end");
    let handle = work(args.items).spawn(&ex);
    let control = handle.control();
    println!("  after spawn:   {}", handle.state());
    let watch = async {
        // Watch from another task, as the pipeline runs.
        smol::Timer::after(Duration::from_millis(50)).await;
        println!("  while working: {}", control.state());
    };
    let (n, ()) = smol::block_on(ex.run(futures_lite::future::zip(handle, watch)));
    println!(
        "  at the end:    {} ({} items)",
        control.state(),
        n.unwrap_or(0)
    );
    println!("\n{}", control.report());

    println!("run 2: cancelled");
    let handle = work(args.items).spawn(&ex);
    let control = handle.control();
    let cancel_after = args.cancel_after;
    let canceller = async {
        while control.report().delivered() < cancel_after && !control.is_finished() {
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        println!("  cancelling:    {}", control.state());
        control.cancel();
    };
    let (result, ()) = smol::block_on(ex.run(futures_lite::future::zip(handle, canceller)));
    match result {
        Err(Error::Cancelled { report }) => {
            assert_eq!(report.state, State::Cancelled);
            println!("  at the end:    {}\n\n{report}", report.state);
        }
        other => println!("  ended without a cancel: {other:?}"),
    }
}
