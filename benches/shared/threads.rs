//! The standard pipeline workload on OS threads and on tokio, one item per
//! channel operation, for the side-by-side table: the same stages as in
//! `workloads.rs`, one thread (or task) per stage, bounded queues of
//! `capacity` items.

#![allow(dead_code)] // each includer uses some of the rows

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::thread;

use super::workloads::{stage1, stage2};

/// Runs the source, both maps and the sum on four threads joined by the
/// bounded queues that `queue` makes.
fn on_threads<S, R>(n: u64, queue: impl Fn() -> (S, R)) -> u64
where
    S: Send + 'static + Fn(u64) -> bool,
    R: Send + 'static + FnMut() -> Option<u64>,
{
    let (tx0, mut rx0) = queue();
    let (tx1, mut rx1) = queue();
    let (tx2, mut rx2) = queue();
    thread::scope(|scope| {
        scope.spawn(move || {
            for x in 0..n {
                if !tx0(x) {
                    break;
                }
            }
        });
        scope.spawn(move || {
            while let Some(x) = rx0() {
                if !tx1(stage1(x)) {
                    break;
                }
            }
        });
        scope.spawn(move || {
            while let Some(x) = rx1() {
                if !tx2(stage2(x)) {
                    break;
                }
            }
        });
        let mut sum = 0u64;
        while let Some(x) = rx2() {
            sum = sum.wrapping_add(x);
        }
        sum
    })
}

/// `crossbeam_channel::bounded`, one thread per stage.
pub fn crossbeam_threads(n: u64, capacity: usize) -> u64 {
    on_threads(n, || {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (move |x| tx.send(x).is_ok(), move || rx.recv().ok())
    })
}

/// `std::sync::mpsc::sync_channel`, one thread per stage.
pub fn std_mpsc_threads(n: u64, capacity: usize) -> u64 {
    on_threads(n, || {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        (move |x| tx.send(x).is_ok(), move || rx.recv().ok())
    })
}

/// A bounded queue under one `Mutex`, with a `Condvar` for each side: the
/// lock-based producer-consumer.
struct LockedQueue {
    state: Mutex<(VecDeque<u64>, bool)>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl LockedQueue {
    fn push(&self, x: u64) {
        let mut state = self.state.lock().unwrap();
        while state.0.len() >= self.capacity {
            state = self.not_full.wait(state).unwrap();
        }
        state.0.push_back(x);
        self.not_empty.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap().1 = true;
        self.not_empty.notify_all();
    }

    fn pop(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(x) = state.0.pop_front() {
                self.not_full.notify_one();
                return Some(x);
            }
            if state.1 {
                return None;
            }
            state = self.not_empty.wait(state).unwrap();
        }
    }
}

/// The sending side closes the queue when dropped.
struct Closer(std::sync::Arc<LockedQueue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// `Mutex<VecDeque>` + `Condvar`, one thread per stage.
pub fn mutex_condvar_threads(n: u64, capacity: usize) -> u64 {
    on_threads(n, || {
        let queue = std::sync::Arc::new(LockedQueue {
            state: Mutex::new((VecDeque::with_capacity(capacity), false)),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity,
        });
        let closer = Closer(std::sync::Arc::clone(&queue));
        (
            move |x| {
                closer.0.push(x);
                true
            },
            move || queue.pop(),
        )
    })
}

/// `tokio::sync::mpsc` channels between tasks on a current-thread runtime.
pub fn tokio_mpsc(n: u64, capacity: usize) -> u64 {
    use tokio::sync::mpsc::channel;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async move {
        let (tx0, mut rx0) = channel::<u64>(capacity);
        let (tx1, mut rx1) = channel::<u64>(capacity);
        let (tx2, mut rx2) = channel::<u64>(capacity);
        tokio::spawn(async move {
            for x in 0..n {
                if tx0.send(x).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(x) = rx0.recv().await {
                if tx1.send(stage1(x)).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(x) = rx1.recv().await {
                if tx2.send(stage2(x)).await.is_err() {
                    break;
                }
            }
        });
        let mut sum = 0u64;
        while let Some(x) = rx2.recv().await {
            sum = sum.wrapping_add(x);
        }
        sum
    })
}

/// The ack workload between two OS threads: each send of `x` crosses a
/// crossbeam channel to a thread that answers `x + 1` on another.
pub fn thread_ping_pong(n: u64) -> u64 {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(1);
    thread::scope(|scope| {
        scope.spawn(move || {
            while let Ok(x) = req_rx.recv() {
                if rep_tx.send(x.wrapping_add(1)).is_err() {
                    break;
                }
            }
        });
        let mut sum = 0u64;
        for x in 0..n {
            req_tx.send(x).expect("the echo thread runs");
            sum = sum.wrapping_add(rep_rx.recv().expect("the echo thread answers"));
        }
        drop(req_tx);
        sum
    })
}

/// The ack workload between two processes: each `x` goes through a pipe to
/// `cat`, which echoes it back on another pipe; the reply is the echo plus
/// one. Returns 0 (a wrong checksum) where `cat` cannot be started.
pub fn process_ping_pong(n: u64) -> u64 {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return 0;
    };
    let (Some(mut to), Some(mut from)) = (child.stdin.take(), child.stdout.take()) else {
        return 0;
    };
    let mut sum = 0u64;
    let mut buf = [0u8; 8];
    for x in 0..n {
        if to.write_all(&x.to_le_bytes()).is_err() || from.read_exact(&mut buf).is_err() {
            return 0;
        }
        sum = sum.wrapping_add(u64::from_le_bytes(buf).wrapping_add(1));
    }
    drop(to);
    let _ = child.wait();
    sum
}
