//! Scale: 10,000 pipelines of 10 stages each (a source, 8 maps and a
//! sink: 100,000 stages) on one single-threaded executor, in two shapes:
//! `fused`, as the builder makes them by default (the maps run in the
//! sink's task: two tasks and one hop per pipeline), and `unfused`, with
//! every stage's hop configured (ten tasks and nine hops).
//!
//! - `scale/spawn-100k-stages/{fused,unfused}`: build the 10,000 pipelines
//!   and spawn them.
//! - `scale/run-100k-stages/{fused,unfused}`: the same, then run them all to
//!   the end, with 10 items through each pipeline.
//!
//! Before the timed runs it prints the memory of an idle stage: resident
//! memory (`VmRSS` from `/proc/self/status`) before and after spawning the
//! 100,000 stages with every source waiting for input, divided by the
//! stages, at hop capacity 16 and at the default 1024, in each shape. For the
//! coroutine, thread and process comparison of Python's coroutine tutorials it also prints the resident
//! memory of an idle OS thread and of an idle small process.
//!
//! Run with: cargo bench --bench scale

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use flowgate::{Job, JobHandle};
use smol::LocalExecutor;

#[path = "shared/memory.rs"]
mod memory;

use memory::{rss_kib, status_kib};

const PIPELINES: usize = 10_000;
/// Stages per pipeline: a source, 8 maps and a sink.
const STAGES: usize = 10;

/// How the stages of a pipeline run.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// As the builder makes them: the maps fused into the sink's task.
    Fused,
    /// Every stage a task of its own, each hop configured.
    Unfused,
}

impl Shape {
    const ALL: [Shape; 2] = [Shape::Fused, Shape::Unfused];

    fn name(self) -> &'static str {
        match self {
            Shape::Fused => "fused",
            Shape::Unfused => "unfused",
        }
    }
}

/// One pipeline of [`STAGES`] stages over `items`, with hops of `capacity`.
fn pipeline<I>(items: I, capacity: usize, shape: Shape) -> Job<usize>
where
    I: futures_lite::Stream<Item = u64> + Send + 'static,
{
    let mut p = flowgate::from_stream(items).capacity(capacity);
    for _ in 0..STAGES - 2 {
        p = p.map(|x: u64| x + 1);
        if let Shape::Unfused = shape {
            p = p.capacity(capacity);
        }
    }
    p.count()
}

fn spawn_all<'a>(ex: &LocalExecutor<'a>, jobs: Vec<Job<usize>>) -> Vec<JobHandle<usize>> {
    jobs.into_iter().map(|job| job.spawn_local(ex)).collect()
}

/// Bytes of resident memory per stage of 100,000 idle ones.
fn idle_stage_bytes(capacity: usize, shape: Shape) -> Option<f64> {
    let before = rss_kib()?;
    let ex = LocalExecutor::new();
    let (tx, rx) = async_channel::bounded::<u64>(1);
    let jobs = (0..PIPELINES)
        .map(|_| pipeline(rx.clone(), capacity, shape))
        .collect();
    let handles = spawn_all(&ex, jobs);
    // Every stage starts and goes to sleep on its input.
    while ex.try_tick() {}
    let after = rss_kib()?;
    tx.close();
    for handle in handles {
        handle.detach();
    }
    while ex.try_tick() {}
    Some((after.saturating_sub(before) * 1024) as f64 / (PIPELINES * STAGES) as f64)
}

/// Prints the memory of an idle stage at each capacity, each measured in a
/// fresh copy of this process, as memory freed by one measurement would
/// stay resident and hide the next one's.
fn memory() {
    for shape in Shape::ALL {
        for capacity in [16, flowgate::DEFAULT_CAPACITY] {
            let measured = std::env::current_exe().and_then(|exe| {
                std::process::Command::new(exe)
                    .args([IDLE_MEMORY, &capacity.to_string(), shape.name()])
                    .output()
            });
            match measured {
                Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
                Err(err) => println!("scale: could not measure memory: {err}"),
            }
        }
    }
    if let Some(bytes) = idle_thread_bytes() {
        println!("scale: 1000 idle OS threads: {bytes:.0} bytes of resident memory each");
    }
    if let Some(kib) = idle_process_kib() {
        println!("scale: an idle process (cat): {kib} KiB resident");
    }
}

/// Bytes of resident memory per OS thread of 1,000 idle ones, each blocked
/// on a channel, with the default stack size.
fn idle_thread_bytes() -> Option<f64> {
    const THREADS: usize = 1000;
    let before = rss_kib()?;
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(THREADS);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (rx, ready) = (rx.clone(), ready_tx.clone());
            std::thread::spawn(move || {
                let _ = ready.send(());
                let _ = rx.recv();
            })
        })
        .collect();
    for _ in 0..THREADS {
        ready_rx.recv().ok()?;
    }
    let after = rss_kib()?;
    drop(tx);
    for thread in threads {
        let _ = thread.join();
    }
    Some((after.saturating_sub(before) * 1024) as f64 / THREADS as f64)
}

/// Resident memory of a small idle process (`cat` waiting on its input).
fn idle_process_kib() -> Option<u64> {
    let mut child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(100));
    let kib = status_kib(&child.id().to_string(), "VmRSS:");
    drop(child.stdin.take());
    let _ = child.wait();
    kib
}

/// The argument that makes this process measure the memory of idle stages
/// at the capacity that follows it, and exit.
const IDLE_MEMORY: &str = "--idle-memory";

fn print_idle_memory(capacity: usize, shape: Shape) {
    match idle_stage_bytes(capacity, shape) {
        Some(bytes) => println!(
            "scale: {} idle stages, {}, at hop capacity {capacity}: {bytes:.0} bytes of resident memory each",
            PIPELINES * STAGES,
            shape.name(),
        ),
        None => println!("scale: /proc/self/status is not readable; no memory figure"),
    }
}

fn scale(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for shape in Shape::ALL {
        group.bench_function(format!("spawn-100k-stages/{}", shape.name()), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let ex = LocalExecutor::new();
                    let start = Instant::now();
                    let jobs = (0..PIPELINES)
                        .map(|_| pipeline(futures_lite::stream::iter(0..10u64), 16, shape))
                        .collect();
                    let handles = spawn_all(&ex, jobs);
                    spent += start.elapsed();
                    // Dropping the handles cancels the runs; the executor
                    // then drops the tasks, outside the timed part.
                    drop(black_box(handles));
                    while ex.try_tick() {}
                }
                spent
            })
        });
        group.bench_function(format!("run-100k-stages/{}", shape.name()), |b| {
            b.iter(|| {
                let ex = LocalExecutor::new();
                let jobs = (0..PIPELINES)
                    .map(|_| pipeline(futures_lite::stream::iter(0..10u64), 16, shape))
                    .collect();
                let handles = spawn_all(&ex, jobs);
                smol::block_on(ex.run(async {
                    let mut total = 0;
                    for handle in handles {
                        total += handle.await.expect("the pipeline runs");
                    }
                    assert_eq!(total, PIPELINES * 10);
                }))
            })
        });
    }
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == IDLE_MEMORY) {
        let capacity = args.get(at + 1).and_then(|c| c.parse().ok()).unwrap_or(16);
        let shape = match args.get(at + 2).map(String::as_str) {
            Some("unfused") => Shape::Unfused,
            _ => Shape::Fused,
        };
        print_idle_memory(capacity, shape);
        return;
    }
    memory();
    let mut c = Criterion::default().configure_from_args();
    scale(&mut c);
    c.final_summary();
}
