//! Python's `asyncio.gather` and `asyncio.wait`, rebuilt on flowgate: run
//! three delayed jobs at once on one thread.
//! `gather` collects their results in order, in about the time of the
//! slowest (3 units, not 6); `wait` returns when the first completes, with
//! the done and pending sets, then waits for all.
//!
//! Each job is a flowgate pipeline spawned on one executor; the waiting is
//! done with futures-lite's `zip` and `or` on the pipelines' handles.
//!
//! Run with: cargo run --example gather_wait -- [--unit-ms 1000]

use std::time::{Duration, Instant};

use clap::Parser;
use flowgate::{Control, JobHandle};
use futures_lite::future;

#[derive(Parser, Debug)]
#[command(about = "gather and wait, on flowgate handles")]
struct Args {
    /// The length of one delay unit, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    unit_ms: u64,
}

/// A one-item pipeline that waits `units` units, then gives its result,
/// like the `do_some_work(x)` coroutine of the usual asyncio demo, which
/// sleeps `x` seconds and returns a message.
fn do_some_work(ex: &smol::Executor<'_>, units: u64, unit: Duration) -> JobHandle<String> {
    flowgate::from_iter([units])
        .then(move |x| async move {
            println!("Waiting: {x}");
            smol::Timer::after(unit * u32::try_from(x).unwrap_or(u32::MAX)).await;
            format!("Done after {x} unit(s)")
        })
        .name(format!("work{units}"))
        .fold(String::new(), |_, result| result)
        .spawn(ex)
}

fn names(controls: &[(u64, Control)], finished: bool) -> Vec<String> {
    controls
        .iter()
        .filter(|(_, c)| c.is_finished() == finished)
        .map(|(units, c)| format!("work{units} ({})", c.state()))
        .collect()
}

fn main() {
    let args = Args::parse();
    let unit = Duration::from_millis(args.unit_ms);
    let ex = &smol::Executor::new();

    println!("gather:");
    let start = Instant::now();
    let (a, b, c) = (
        do_some_work(ex, 1, unit),
        do_some_work(ex, 2, unit),
        do_some_work(ex, 3, unit),
    );
    let ((a, b), c) = smol::block_on(ex.run(future::zip(future::zip(a, b), c)));
    for result in [a, b, c] {
        println!("Task ret: {}", result.unwrap_or_else(|err| err.to_string()));
    }
    println!(
        "gathered 3 results in {:.2} units\n",
        start.elapsed().as_secs_f64() / unit.as_secs_f64()
    );

    println!("wait (first completed, then all):");
    let start = Instant::now();
    let mut handles: Vec<_> = [1, 2, 3].map(|u| do_some_work(ex, u, unit)).into();
    let controls: Vec<(u64, Control)> = [1u64, 2, 3]
        .into_iter()
        .zip(handles.iter().map(JobHandle::control))
        .collect();
    let (first, rest) = handles.split_at_mut(1);
    let (second, third) = rest.split_at_mut(1);
    let any = future::or(&mut first[0], future::or(&mut second[0], &mut third[0]));
    let result = smol::block_on(ex.run(any));
    println!(
        "first completed: {}",
        result.unwrap_or_else(|err| err.to_string())
    );
    println!("  done:    {:?}", names(&controls, true));
    println!("  pending: {:?}", names(&controls, false));
    for handle in handles {
        if !handle.state().is_finished() {
            let _ = smol::block_on(ex.run(handle));
        }
    }
    println!(
        "all completed in {:.2} units",
        start.elapsed().as_secs_f64() / unit.as_secs_f64()
    );
    println!("  done:    {:?}", names(&controls, true));
    println!("  pending: {:?}", names(&controls, false));
}
