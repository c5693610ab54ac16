//! The standard workloads, each as one function that runs it and returns
//! its checksum. Shared by `examples/throughput.rs` and the criterion
//! benches, so that the table and the benches measure the same code.
//!
//! Pipeline workload: a source of `0..n` u64, `map(x.wrapping_mul(3))`,
//! `map(x ^ 0x5555)`, and a wrapping sum. Round-trip workload: `n` sends of
//! `x`, each answered with `x + 1`, the replies summed.

#![allow(dead_code)] // each includer uses some of the workloads

use futures_lite::future;
use smol::LocalExecutor;

#[inline]
pub fn stage1(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[inline]
pub fn stage2(x: u64) -> u64 {
    x ^ 0x5555
}

/// The builder API, exactly as a user would write it. With the default
/// capacity (1024) and chunk limit (256) the whole pipeline is fused into
/// one task, the sink's; other settings are set on the source, which then
/// keeps its own task and hop.
pub fn flowgate_pipeline(n: u64, capacity: usize, chunk_limit: usize) -> u64 {
    flowgate_metered(n, capacity, chunk_limit, true)
}

/// The same pipeline with the timing of waits on or off.
pub fn flowgate_metered(n: u64, capacity: usize, chunk_limit: usize, timed: bool) -> u64 {
    let source = flowgate::from_iter(0..n).metrics(timed);
    let defaults = (flowgate::DEFAULT_CAPACITY, flowgate::DEFAULT_CHUNK_LIMIT);
    if (capacity, chunk_limit) == defaults {
        two_maps_and_sum(source)
    } else {
        two_maps_and_sum(source.capacity(capacity).chunk_limit(chunk_limit))
    }
}

/// The same pipeline with the source on a task of its own, behind its
/// configured hop, and the two maps fused into the sink's task: two tasks,
/// one hop.
pub fn flowgate_source_hop(n: u64, capacity: usize, chunk_limit: usize) -> u64 {
    let source = flowgate::from_iter(0..n)
        .capacity(capacity)
        .chunk_limit(chunk_limit);
    two_maps_and_sum(source)
}

/// The standard workload's stages after `source`, run to the end.
fn two_maps_and_sum(source: flowgate::Pipeline<u64>) -> u64 {
    source
        .map(stage1)
        .map(stage2)
        .fold(0u64, u64::wrapping_add)
        .run()
        .expect("the pipeline is well formed")
}

/// The same pipeline with every stage a task of its own, each hop
/// configured: four tasks and three hops, as before stage fusion.
pub fn flowgate_unfused(n: u64, capacity: usize, chunk_limit: usize) -> u64 {
    flowgate::from_iter(0..n)
        .fusion(false)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .map(stage1)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .map(stage2)
        .capacity(capacity)
        .chunk_limit(chunk_limit)
        .fold(0u64, u64::wrapping_add)
        .run()
        .expect("the pipeline is well formed")
}

/// Hand-written stages on smol, one item per channel operation.
pub fn per_item(n: u64, capacity: usize) -> u64 {
    let ex = LocalExecutor::new();
    let (tx0, rx0) = async_channel::bounded::<u64>(capacity);
    let (tx1, rx1) = async_channel::bounded::<u64>(capacity);
    let (tx2, rx2) = async_channel::bounded::<u64>(capacity);
    ex.spawn(async move {
        for x in 0..n {
            tx0.send(x).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx0.recv().await {
            tx1.send(stage1(x)).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(x) = rx1.recv().await {
            tx2.send(stage2(x)).await.unwrap();
        }
    })
    .detach();
    future::block_on(ex.run(async move {
        let mut sum = 0u64;
        while let Ok(x) = rx2.recv().await {
            sum = sum.wrapping_add(x);
        }
        sum
    }))
}

/// Items per chunk of the hand-written chunked pipelines.
const CHUNK: usize = 256;

/// A hop of a hand-written chunked pipeline.
type ChunkHop = (
    async_channel::Sender<Vec<u64>>,
    async_channel::Receiver<Vec<u64>>,
);

/// The three hops of a hand-written chunked pipeline, each holding as many
/// chunks of [`CHUNK`] items as `capacity` items make.
fn chunk_hops(capacity: usize) -> [ChunkHop; 3] {
    let slots = (capacity / CHUNK).max(1);
    std::array::from_fn(|_| async_channel::bounded(slots))
}

/// Hand-written stages on smol, moving `Vec` chunks of 256 items.
pub fn batched_256(n: u64, capacity: usize) -> u64 {
    let ex = LocalExecutor::new();
    let [(tx0, rx0), (tx1, rx1), (tx2, rx2)] = chunk_hops(capacity);
    ex.spawn(async move {
        let mut chunk = Vec::with_capacity(CHUNK);
        for x in 0..n {
            chunk.push(x);
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                tx0.send(full).await.unwrap();
            }
        }
        if !chunk.is_empty() {
            tx0.send(chunk).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(mut chunk) = rx0.recv().await {
            chunk.iter_mut().for_each(|x| *x = stage1(*x));
            tx1.send(chunk).await.unwrap();
        }
    })
    .detach();
    ex.spawn(async move {
        while let Ok(mut chunk) = rx1.recv().await {
            chunk.iter_mut().for_each(|x| *x = stage2(*x));
            tx2.send(chunk).await.unwrap();
        }
    })
    .detach();
    future::block_on(ex.run(async move {
        let mut sum = 0u64;
        while let Ok(chunk) = rx2.recv().await {
            sum = chunk.into_iter().fold(sum, u64::wrapping_add);
        }
        sum
    }))
}

/// Hand-written stages on smol, `Vec` chunks of 256 items mapped in place
/// as in [`batched_256`], with each emptied buffer sent back to the source
/// on a return channel, as flowgate's hops do, so that no chunk is
/// allocated after the first few. On our machine the return channel costs
/// more than the allocations it saves.
pub fn batched_in_place(n: u64, capacity: usize) -> u64 {
    let ex = LocalExecutor::new();
    let [(tx0, rx0), (tx1, rx1), (tx2, rx2)] = chunk_hops(capacity);
    let (back_tx, back_rx) = async_channel::bounded::<Vec<u64>>(3 * capacity / CHUNK + 3);
    ex.spawn(async move {
        let mut x = 0;
        while x < n {
            let mut chunk = back_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            let end = n.min(x + CHUNK as u64);
            chunk.extend(x..end);
            x = end;
            tx0.send(chunk).await.unwrap();
        }
    })
    .detach();
    let map = |rx: async_channel::Receiver<Vec<u64>>,
               tx: async_channel::Sender<Vec<u64>>,
               f: fn(u64) -> u64| async move {
        while let Ok(mut chunk) = rx.recv().await {
            chunk.iter_mut().for_each(|x| *x = f(*x));
            tx.send(chunk).await.unwrap();
        }
    };
    ex.spawn(map(rx0, tx1, stage1)).detach();
    ex.spawn(map(rx1, tx2, stage2)).detach();
    future::block_on(ex.run(async move {
        let mut sum = 0u64;
        while let Ok(mut chunk) = rx2.recv().await {
            sum = chunk.drain(..).fold(sum, u64::wrapping_add);
            let _ = back_tx.try_send(chunk);
        }
        sum
    }))
}

/// No channels: one iterator chain, the upper bound.
pub fn fused(n: u64) -> u64 {
    (0..n).map(stage1).map(stage2).fold(0u64, u64::wrapping_add)
}

/// One iterator chain with a `black_box` on every stage's output, so that
/// the compiler cannot merge the stages into one vectorized loop: what a
/// loop that runs each stage's closure, one item at a time, costs.
pub fn fused_black_box(n: u64) -> u64 {
    use std::hint::black_box;
    (0..n)
        .map(|x| black_box(stage1(black_box(x))))
        .map(|x| black_box(stage2(x)))
        .fold(0u64, |acc, x| black_box(acc.wrapping_add(x)))
}

fn reply(_: &mut (), n: u64) -> u64 {
    n.wrapping_add(1)
}

/// Sequential sends to a generator-style consumer, in the caller's task.
pub fn ack_inline(n: u64) -> u64 {
    let mut consumer = flowgate::Consumer::new((), reply).inline();
    future::block_on(async {
        let mut sum = 0u64;
        for x in 0..n {
            // Opaque to the optimizer, so that the loop is not folded into
            // a formula: each send is made and answered.
            let x = std::hint::black_box(x);
            sum = sum.wrapping_add(consumer.send(x).await.expect("the consumer replies"));
        }
        sum
    })
}

/// Sequential sends to a consumer task on a single-threaded executor. The
/// producer is a task too, so the executor switches between two tasks.
pub fn ack_task(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (mut producer, _consumer) = flowgate::Consumer::new((), reply).spawn_local(&ex);
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for x in 0..n {
            sum = sum.wrapping_add(producer.send(x).await.expect("the consumer replies"));
        }
        sum
    });
    future::block_on(ex.run(producer))
}

/// Sequential sends to a consumer driven as a future beside the producer,
/// in one `zip` on one thread: no executor queue between them.
pub fn ack_future(n: u64) -> u64 {
    let (mut producer, consumer) = flowgate::Consumer::new((), reply).into_future();
    let produce = async move {
        let mut sum = 0u64;
        for x in 0..n {
            sum = sum.wrapping_add(producer.send(x).await.expect("the consumer replies"));
        }
        sum
    };
    future::block_on(future::zip(produce, consumer)).0
}

/// Many sends in flight to a consumer task, replies read in send order, a
/// chunk at a time.
pub fn ack_pipelined(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (producer, _consumer) = flowgate::Consumer::new((), reply).spawn_local(&ex);
    let (mut tx, mut replies) = producer.pipelined(4096).expect("the window is not 0");
    future::block_on(ex.run(async move {
        let send = async move {
            for x in 0..n {
                tx.send(x).await.expect("the consumer is running");
            }
            tx.close().await;
        };
        let read = async move {
            let mut sum = 0u64;
            while let Some(chunk) = replies.next_chunk().await {
                for (_, reply) in chunk {
                    sum = sum.wrapping_add(reply.expect("the consumer replies"));
                }
            }
            sum
        };
        future::zip(send, read).await.1
    }))
}

/// Many sends in flight through a service of one `map`, replies read in
/// send order: the end-to-end acknowledgement, with each reply a `Vec` of
/// the input's outputs.
pub fn service_pipelined(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (producer, job) = flowgate::service(|s| s.map(|x: u64| x + 1));
    let running = job.spawn_local(&ex);
    let (mut tx, mut replies) = producer.pipelined(4096).expect("the window is not 0");
    drop(producer);
    future::block_on(ex.run(async move {
        let send = async move {
            for x in 0..n {
                tx.send(x).await.expect("the service is running");
            }
            tx.close().await;
        };
        let read = async move {
            let mut sum = 0u64;
            while let Some(chunk) = replies.next_chunk().await {
                for (_, reply) in chunk {
                    let outputs = reply.expect("the service replies");
                    sum = sum.wrapping_add(outputs.iter().sum::<u64>());
                }
            }
            sum
        };
        let sum = future::zip(send, read).await.1;
        running.await.expect("the service ends cleanly");
        sum
    }))
}

/// The baseline for a task round trip: two async-channels between two
/// tasks on one single-threaded executor.
pub fn ping_pong(n: u64) -> u64 {
    let ex = LocalExecutor::new();
    let (req_tx, req_rx) = async_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = async_channel::bounded::<u64>(1);
    ex.spawn(async move {
        while let Ok(x) = req_rx.recv().await {
            if rep_tx.send(x.wrapping_add(1)).await.is_err() {
                break;
            }
        }
    })
    .detach();
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for x in 0..n {
            req_tx.send(x).await.expect("the consumer is running");
            sum = sum.wrapping_add(rep_rx.recv().await.expect("the consumer replies"));
        }
        sum
    });
    future::block_on(ex.run(producer))
}

/// The floor of a round trip between two tasks on smol's single-threaded
/// executor: a one-slot exchange with direct wakers, no channel, nothing
/// shared between threads. Each round trip is two wake-ups and two task
/// switches, all the executor's own work: no task round trip on this
/// executor can be faster.
pub fn two_task_floor(n: u64) -> u64 {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::task::{Poll, Waker};

    /// One slot each way, and the waker of the side waiting on it.
    #[derive(Default)]
    struct Exchange {
        request: Cell<Option<u64>>,
        reply: Cell<Option<u64>>,
        consumer: RefCell<Option<Waker>>,
        producer: RefCell<Option<Waker>>,
        closed: Cell<bool>,
    }

    fn wake(slot: &RefCell<Option<Waker>>) {
        if let Some(waker) = slot.borrow_mut().take() {
            waker.wake();
        }
    }

    let ex = LocalExecutor::new();
    let shared = Rc::new(Exchange::default());
    let consumer = Rc::clone(&shared);
    ex.spawn(async move {
        loop {
            let request = std::future::poll_fn(|cx| match consumer.request.take() {
                Some(x) => Poll::Ready(Some(x)),
                None if consumer.closed.get() => Poll::Ready(None),
                None => {
                    *consumer.consumer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            let Some(x) = request else { break };
            consumer.reply.set(Some(x.wrapping_add(1)));
            wake(&consumer.producer);
        }
    })
    .detach();
    let producer = ex.spawn(async move {
        let mut sum = 0u64;
        for x in 0..n {
            shared.request.set(Some(x));
            wake(&shared.consumer);
            let reply = std::future::poll_fn(|cx| match shared.reply.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    *shared.producer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            sum = sum.wrapping_add(reply);
        }
        shared.closed.set(true);
        wake(&shared.consumer);
        sum
    });
    future::block_on(ex.run(producer))
}
