//! A configuration and an operation script, decoded from arbitrary bytes,
//! and the checks on how flowgate handles them.
//!
//! Shared by `tests/fuzz_config.rs` (proptest) and by the cargo-fuzz target
//! in `fuzz/` (libFuzzer), so both drive the same scripts.
//!
//! Every byte string is a valid script: a byte picks among choices that
//! include the edge values (capacity 0 and `usize::MAX`, chunk limit 0,
//! workers 0 and too many, zero and huge timeouts, 0 retries, ...), and a
//! script that runs out of bytes reads zeros. [`run`] panics, so that the
//! caller sees a failure, when a case
//! - panics inside flowgate (the script's own panics are caught by flowgate
//!   and must come back as errors),
//! - does not finish within [`LIMIT`],
//! - ends `Ok` with output the model does not allow, or with an error the
//!   script did not ask for,
//! - leaves an item alive, or a report that does not balance.

#![allow(dead_code)]

#[path = "tracked.rs"]
mod tracked;

use std::future::IntoFuture;
use std::sync::mpsc;
use std::time::Duration;

use flowgate::{
    Backoff, Error, MAX_THREADS, MAX_WORKERS, OnError, Overflow, Pipeline, SendError,
    SendTimeoutError, TrySendError,
};
use futures_lite::StreamExt;
use futures_lite::future::{block_on, yield_now};
use tracked::{Live, Tracked};

/// How long one script may take before it counts as hung.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The message of every panic the script itself raises; anything else is a
/// panic from flowgate.
pub const SCRIPTED: &str = "scripted panic";

/// The bytes of a script, read one choice at a time.
struct Bytes {
    data: Vec<u8>,
    at: usize,
}

impl Bytes {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.byte() as usize % choices.len()]
    }

    fn below(&mut self, n: u64) -> u64 {
        u64::from(u16::from_le_bytes([self.byte(), self.byte()])) % n.max(1)
    }
}

const CAPACITIES: [usize; 7] = [0, 1, 2, 7, 64, 1 << 40, usize::MAX];
const CHUNK_LIMITS: [usize; 6] = [0, 1, 3, 256, 1 << 40, usize::MAX];
const WORKERS: [usize; 6] = [0, 1, 2, 5, MAX_WORKERS + 1, usize::MAX];
const BATCHES: [usize; 5] = [0, 1, 3, 1 << 40, usize::MAX];
const WAITS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_micros(50),
    Duration::from_secs(3600),
    Duration::MAX,
];
const ATTEMPTS: [u32; 4] = [0, 1, 3, u32::MAX];
const FACTORS: [f64; 5] = [1.0, 2.0, 0.5, f64::NAN, f64::INFINITY];
const THREADS: [usize; 5] = [0, 1, 2, MAX_THREADS + 1, usize::MAX];
const WINDOWS: [usize; 5] = [0, 1, 8, 1 << 40, usize::MAX];

/// Runs the script in `data` and checks the outcome; panics on a failure.
pub fn run(data: &[u8]) {
    let data = data.to_vec();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut bytes = Bytes { data, at: 0 };
        match bytes.byte() % 3 {
            0 | 1 => pipeline(&mut bytes),
            _ => consumer(&mut bytes),
        }
        let _ = tx.send(());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: no result within {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// Whether `err` is one of the errors for a bad setting.
fn is_config_error(err: &Error) -> bool {
    matches!(
        err,
        Error::ZeroCapacity { .. }
            | Error::ZeroChunkLimit { .. }
            | Error::ZeroWorkers { .. }
            | Error::TooManyWorkers { .. }
            | Error::ZeroBatchSize { .. }
            | Error::ZeroAttempts { .. }
            | Error::BadBackoff { .. }
            | Error::ZeroBranches { .. }
            | Error::ZeroThreads
            | Error::TooManyThreads { .. }
            | Error::ZeroRate { .. }
    )
}

/// What the script did that may end a run early.
#[derive(Debug, Default)]
struct Expect {
    bad_setting: bool,
    panic: bool,
    cancel: bool,
    deadline: bool,
    /// Items may be lost on purpose (skipped after a timeout, a drained
    /// shutdown): the output need only be part of the model's.
    partial: bool,
    /// The model's items may come in another order (after an unordered or
    /// fan-out stage), so stages that count places cannot be modelled.
    unordered: bool,
    /// A `take` may end the input before the item a scripted panic waits
    /// for reaches its stage: the panic may not come.
    ends_early: bool,
}

#[derive(Debug, Clone, Copy)]
enum Runner {
    Run,
    Threads(usize),
    Future,
    Stream(u64),
    DropHandle(u8),
}

fn stage(
    p: Pipeline<Tracked>,
    b: &mut Bytes,
    model: &mut Vec<u64>,
    expect: &mut Expect,
) -> Pipeline<Tracked> {
    let positional = !expect.unordered && !expect.partial;
    let p = match b.byte() % 17 {
        0 => {
            model.iter_mut().for_each(|v| *v += 1);
            p.map(|t| t.with(t.value + 1))
        }
        1 => {
            model.retain(|v| v % 3 != 0);
            p.filter(|t| t.value % 3 != 0)
        }
        2 => {
            let workers = b.pick(&WORKERS);
            expect.bad_setting |= workers == 0 || workers > MAX_WORKERS;
            expect.unordered = true;
            model.iter_mut().for_each(|v| *v *= 2);
            p.par_map_unordered(workers, |t| t.with(t.value * 2))
        }
        3 => {
            let workers = b.pick(&WORKERS);
            expect.bad_setting |= workers == 0 || workers > MAX_WORKERS;
            model.iter_mut().for_each(|v| *v *= 2);
            p.par_then(workers, |t| async move {
                yield_now().await;
                t.with(t.value * 2)
            })
        }
        4 => {
            let size = b.pick(&BATCHES);
            expect.bad_setting |= size == 0;
            p.chunks(size).flat_map(|batch| batch)
        }
        5 => {
            let (size, wait) = (b.pick(&BATCHES), b.pick(&WAITS));
            expect.bad_setting |= size == 0;
            p.chunks_timeout(size, wait).flat_map(|batch| batch)
        }
        6 => {
            model.retain(|v| v % 5 != 0);
            let attempts = b.pick(&ATTEMPTS).min(3);
            let factor = b.pick(&FACTORS);
            expect.bad_setting |= attempts == 0 || !(factor.is_finite() && factor >= 1.0);
            let backoff = Backoff::exponential(Duration::ZERO, factor);
            p.try_map(|t| {
                if t.value % 5 == 0 {
                    Err(Refused)
                } else {
                    Ok(t)
                }
            })
            .on_error(OnError::retry(attempts, backoff).or_skip())
            .map(|t| t)
        }
        7 => {
            // Any wait may be too short for a busy machine: items may time
            // out and be skipped.
            expect.partial = true;
            p.try_then(|t| async move { Ok::<_, Refused>(t) })
                .timeout(b.pick(&WAITS))
                .on_error(OnError::skip())
                .map(|t| t)
        }
        8 => {
            let n = b.pick(&[0usize, 1, 2, 3]);
            expect.bad_setting |= n == 0;
            expect.unordered |= n > 1;
            let m = n as u64;
            *model = model
                .iter()
                .flat_map(|&v| (0..m).map(move |i| v * m + i))
                .collect();
            p.broadcast(n, move |i, branch| {
                branch.map(move |t| t.with(t.value * m + i as u64))
            })
        }
        10 if positional => {
            // Ends the input: the source stops, the rest drains as filtered.
            let n = b.below(400) as usize;
            model.truncate(n);
            expect.ends_early = true;
            p.take(n)
        }
        11 if positional => {
            let n = b.below(50) as usize;
            model.drain(..n.min(model.len()));
            p.skip(n)
        }
        12 if positional => {
            let keep: Vec<u64> = model.iter().step_by(2).copied().collect();
            *model = keep;
            p.enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, t)| t)
        }
        13 => {
            let workers = b.pick(&WORKERS);
            expect.bad_setting |= workers == 0 || workers > MAX_WORKERS;
            expect.unordered = true;
            model.retain(|v| v % 4 != 1);
            p.try_par_map_unordered(workers, |t| {
                if t.value % 4 == 1 {
                    Err(Refused)
                } else {
                    Ok(t)
                }
            })
            .on_error(OnError::skip())
            .map(|t| t)
        }
        14 => {
            // Fast enough to only batch; a zero rate is a bad setting.
            let items = b.pick(&[0u64, 1 << 40]);
            expect.bad_setting |= items == 0;
            p.throttle(items, Duration::from_millis(1))
        }
        15 => {
            // A hop that sheds when full gives up on some items.
            expect.partial = true;
            let policy = b.pick(&[Overflow::DropOldest, Overflow::DropNewest]);
            p.overflow(policy).map(|t| t)
        }
        16 => {
            // Panics on some items, and goes on after each.
            model.retain(|v| v % 11 != 10);
            p.map(|t| {
                assert!(t.value % 11 != 10, "a panic the stage restarts after");
                t
            })
            .restart_on_panic(u32::MAX, Backoff::fixed(Duration::ZERO))
        }
        _ => p.then(|t| async move {
            if t.value % 2 == 0 {
                yield_now().await;
            }
            t
        }),
    };
    configure_hop(p, b, expect)
}

/// Configures the newest stage's hop with picked settings, or, one time in
/// three, leaves it as it is, so that the stage may be fused into the
/// next one.
fn configure_hop<T: Send + 'static>(
    p: Pipeline<T>,
    b: &mut Bytes,
    expect: &mut Expect,
) -> Pipeline<T> {
    if b.byte() % 3 == 0 {
        return p;
    }
    let (capacity, chunk_limit) = (b.pick(&CAPACITIES), b.pick(&CHUNK_LIMITS));
    expect.bad_setting |= capacity == 0 || chunk_limit == 0;
    p.capacity(capacity).chunk_limit(chunk_limit)
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

fn pipeline(b: &mut Bytes) {
    let live = Live::new();
    let items = b.below(300);
    let mut expect = Expect::default();
    let mut model: Vec<u64> = (0..items).collect();
    let source = {
        let live = live.clone();
        flowgate::from_iter((0..items).map(move |v| live.item(v)))
    };
    let source = source.fusion(b.byte() % 4 != 0);
    let mut p = configure_hop(source, b, &mut expect);
    let control = p.control();
    // What stops the run, at which source item.
    let (stop, at) = (b.byte() % 5, b.below(items + 10));
    p = match stop {
        0 => {
            expect.panic |= at < items;
            p.inspect(move |t| assert!(t.value != at, "{SCRIPTED}"))
        }
        1 => {
            expect.cancel = true;
            let control = control.clone();
            p.inspect(move |t| {
                if t.value == at {
                    control.cancel();
                }
            })
        }
        2 => {
            expect.partial = true;
            let control = control.clone();
            p.inspect(move |t| {
                if t.value == at {
                    control.shutdown();
                }
            })
        }
        _ => p,
    }
    .name("script");
    for _ in 0..b.below(7) {
        p = stage(p, b, &mut model, &mut expect);
    }
    let deadline = (b.byte() % 4 == 0).then(|| b.pick(&WAITS));
    expect.deadline = deadline.is_some();
    let runner = match b.byte() % 5 {
        0 => Runner::Run,
        1 => Runner::Threads(b.pick(&THREADS)),
        2 => Runner::Future,
        3 => Runner::Stream(b.below(400)),
        _ => Runner::DropHandle(b.byte()),
    };
    if let Runner::Threads(n) = runner {
        expect.bad_setting |= n == 0 || n > MAX_THREADS;
    }
    let result = run_pipeline(p, runner, deadline, &mut expect);
    check(result, &model, &expect);
    let report = control.report();
    if !expect.bad_setting {
        assert!(report.state.is_finished(), "{report}");
        assert!(report.is_balanced(), "{report}");
    }
    assert_eq!(live.count(), 0, "items left alive");
}

fn run_pipeline(
    p: Pipeline<Tracked>,
    runner: Runner,
    deadline: Option<Duration>,
    expect: &mut Expect,
) -> Result<Vec<u64>, Error> {
    let values = |items: Vec<Tracked>| items.iter().map(|t| t.value).collect();
    if let Runner::Stream(read) = runner {
        // The output stream, dropped after `read` items.
        let mut stream = p.into_stream();
        let mut out = Vec::new();
        let ended = block_on(async {
            while let Some(item) = stream.next().await {
                out.push(item?.value);
                if out.len() as u64 == read {
                    return Ok::<bool, Error>(false);
                }
            }
            Ok(true)
        })?;
        // Stopped reading early: the rest is dropped with the stream.
        expect.partial |= !ended;
        drop(stream);
        return Ok(out);
    }
    let mut job = p.collect::<Vec<_>>();
    if let Some(after) = deadline {
        job = job.deadline(after);
    }
    match runner {
        Runner::Run => job.run().map(values),
        Runner::Threads(n) => job.run_on_threads(n).map(values),
        Runner::Future => block_on(job.into_future()).map(values),
        Runner::DropHandle(ticks) => {
            // A handle dropped after a few ticks cancels the run.
            let ex = smol::LocalExecutor::new();
            let handle = job.spawn_local(&ex);
            for _ in 0..ticks {
                ex.try_tick();
            }
            if handle.state().is_finished() {
                return block_on(ex.run(handle)).map(values);
            }
            drop(handle);
            while ex.try_tick() {}
            expect.cancel = true;
            Err(Error::Cancelled {
                report: Box::default(),
            })
        }
        Runner::Stream(_) => unreachable!("handled above"),
    }
}

/// Checks a run's result against what the script allows.
fn check(result: Result<Vec<u64>, Error>, model: &[u64], expect: &Expect) {
    match result {
        Ok(mut out) => {
            assert!(!expect.bad_setting, "a bad setting was accepted");
            let mut want = model.to_vec();
            out.sort_unstable();
            want.sort_unstable();
            if expect.partial || expect.cancel || expect.deadline {
                // Part of the model's output, each value at most as often.
                let mut rest = want.into_iter().peekable();
                for v in out {
                    while rest.next_if(|&w| w < v).is_some() {}
                    assert_eq!(rest.next(), Some(v), "an output the model does not give");
                }
            } else {
                assert!(
                    !expect.panic || expect.ends_early,
                    "a scripted panic was not reported"
                );
                assert_eq!(out, want, "wrong output");
            }
        }
        Err(err) if is_config_error(&err) => {
            assert!(expect.bad_setting, "unexpected {err:?}");
        }
        Err(Error::StagePanicked { stage, message }) => {
            assert!(expect.panic, "unexpected panic in {stage}: {message}");
            assert_eq!((stage.as_str(), message.as_str()), ("script", SCRIPTED));
        }
        Err(Error::Cancelled { .. }) => assert!(expect.cancel, "unexpected cancel"),
        Err(Error::DeadlineElapsed { .. }) => assert!(expect.deadline, "unexpected deadline"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// A task consumer driven by a script of sends, closes and drops.
fn consumer(b: &mut Bytes) {
    let live = Live::new();
    let panic_at = (b.byte() % 4 == 0).then(|| b.below(64));
    let capacity = b.pick(&CAPACITIES);
    let ex = smol::LocalExecutor::new();
    let (first, handle) = flowgate::Consumer::new(0u64, move |n: &mut u64, t: Tracked| {
        assert!(Some(t.value) != panic_at, "{SCRIPTED}");
        *n += 1;
        t.value + 1
    })
    .capacity(capacity)
    .spawn_local(&ex);
    let mut producers = vec![first];
    let mut answered = 0u64;
    let mut closed = false;
    let mut panicked = false;
    let steps = b.below(24);
    for step in 0..steps {
        let v = step;
        let which = b.byte() as usize % producers.len().max(1);
        let op = b.byte() % 8;
        let Some(p) = producers.get_mut(which) else {
            break;
        };
        // A reply is v + 1; anything that comes back is the item sent.
        let mut took = |reply: Option<u64>, back: Option<Tracked>| {
            if let Some(reply) = reply {
                assert!(capacity > 0, "a consumer of capacity 0 replied");
                assert_eq!(reply, v + 1);
                answered += 1;
            }
            if let Some(back) = back {
                assert_eq!(back.value, v, "another item came back");
            }
        };
        let item = live.item(v);
        match op {
            0 | 1 => match block_on(ex.run(p.send(item))) {
                Ok(r) => took(Some(r), None),
                Err(SendError::Closed(back)) => took(None, Some(back)),
                Err(SendError::Panicked { .. }) => panicked = true,
                Err(other) => panic!("unexpected {other:?}"),
            },
            2 => match block_on(ex.run(p.try_send(item))) {
                Ok(r) => took(Some(r), None),
                Err(TrySendError::Full(back) | TrySendError::Send(SendError::Closed(back))) => {
                    took(None, Some(back))
                }
                Err(TrySendError::Send(SendError::Panicked { .. })) => panicked = true,
                Err(other) => panic!("unexpected {other:?}"),
            },
            3 => {
                let wait = b.pick(&WAITS);
                match block_on(ex.run(p.send_timeout(item, wait))) {
                    Ok(r) => took(Some(r), None),
                    Err(
                        SendTimeoutError::Timeout(back)
                        | SendTimeoutError::Send(SendError::Closed(back)),
                    ) => took(None, Some(back)),
                    Err(SendTimeoutError::Unanswered) => {}
                    Err(SendTimeoutError::Send(SendError::Panicked { .. })) => panicked = true,
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            4 => {
                drop(item);
                closed |= p.close();
            }
            5 => {
                drop(item);
                producers.swap_remove(which);
            }
            6 => {
                drop(item);
                let clone = p.clone();
                producers.push(clone);
            }
            _ => {
                drop(item);
                let window = b.pick(&WINDOWS);
                match p.pipelined(window) {
                    Err(Error::ZeroWindow) => assert_eq!(window, 0),
                    Err(other) => panic!("unexpected {other:?}"),
                    Ok((mut tx, replies)) => {
                        let count = b.below(50);
                        let live = live.clone();
                        let send = async move {
                            for n in 0..count {
                                let _ = tx.send(live.item(1_000 + n)).await;
                            }
                            tx.close().await;
                        };
                        let read = replies.for_each(|(_, reply)| match reply {
                            Ok(r) => assert!(r > 1_000),
                            Err(SendError::Closed(back)) => assert!(back.value >= 1_000),
                            Err(SendError::Panicked { .. } | SendError::Cancelled) => {}
                            Err(other) => panic!("unexpected {other:?}"),
                        });
                        block_on(ex.run(futures_lite::future::zip(send, read)));
                    }
                }
            }
        }
    }
    drop(producers);
    let end = block_on(ex.run(handle));
    match end {
        Ok(n) => {
            assert!(!panicked, "the consumer panicked but ended Ok");
            assert!(n >= answered, "{n} handled, {answered} answered");
        }
        Err(Error::StagePanicked { message, .. }) => assert_eq!(message, SCRIPTED),
        // A consumer of capacity 0 never starts: every send was refused.
        Err(Error::ZeroCapacity { .. }) => assert_eq!((capacity, answered), (0, 0)),
        Err(other) => panic!("unexpected {other:?}"),
    }
    let _ = closed;
    while ex.try_tick() {}
    assert_eq!(live.count(), 0, "items left alive");
}
