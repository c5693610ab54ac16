//! Typed producer-consumer pipelines on [smol], joined by bounded
//! [async-channel]s.
//!
//! A pipeline is a chain of stages. Each stage is a task with one loop —
//! receive, work, send — and each is joined to the next by a bounded *hop*.
//! A full hop makes the sender wait: that wait is the only flow control, so
//! no lock is ever taken to hand an item on, and memory stays bounded by the
//! sum of the hops' capacities however long the run.
//!
//! Cheap synchronous stages (`map`, `filter`, `filter_map`, `flat_map`,
//! `inspect`, `enumerate`, `skip`, `skip_while`, `dedup_by_key`, and a
//! `from_iter` source) are *fused* by default: they run inside the task of the stage
//! after them, one loop over each chunk, with no hop between, like
//! operator fusion in Akka Streams. Each still has its own name, counts and
//! state in the report. [`boundary`](Pipeline::boundary) keeps a hop after
//! a stage, and [`fusion`](Pipeline::fusion) turns fusion off.
//!
//! ```
//! let sum = flowgate::from_iter(0..1_000u64)
//!     .map(|x| x.wrapping_mul(3))
//!     .filter(|x| x % 2 == 0)
//!     .fold(0u64, |acc, x| acc.wrapping_add(x))
//!     .run()?;
//! assert_eq!(sum, (0..1_000u64).map(|x| x * 3).filter(|x| x % 2 == 0).sum::<u64>());
//! # Ok::<(), flowgate::Error>(())
//! ```
//!
//! # Concepts
//!
//! - **Sources.** A pipeline starts from an iterator ([`from_iter`]) or from
//!   any [`Stream`](futures_lite::Stream) ([`from_stream`]).
//! - **Stages.** [`map`](Pipeline::map), [`filter`](Pipeline::filter),
//!   [`filter_map`](Pipeline::filter_map), [`flat_map`](Pipeline::flat_map),
//!   [`inspect`](Pipeline::inspect) and the async [`then`](Pipeline::then).
//!   Types are checked when the pipeline is built: a stage taking `A` can only
//!   follow one that gives `A`. Order is preserved. The `Iterator` words
//!   that keep state are there too: [`enumerate`](Pipeline::enumerate),
//!   [`skip`](Pipeline::skip), [`skip_while`](Pipeline::skip_while),
//!   [`dedup_by_key`](Pipeline::dedup_by_key), and
//!   [`take`](Pipeline::take), [`take_while`](Pipeline::take_while) and
//!   [`scan`](Pipeline::scan), which end the input early.
//! - **Fallible stages.** [`try_map`](Pipeline::try_map),
//!   [`try_then`](Pipeline::try_then) and the parallel
//!   [`try_par_map`](Pipeline::try_par_map) family, with an error policy
//!   ([`OnError`]) each; a stage may also
//!   [restart after a panic](Pipeline::restart_on_panic).
//! - **Flow.** [`throttle`](Pipeline::throttle) keeps a stage to a
//!   [`Rate`] that can change while it runs;
//!   [`overflow`](Pipeline::overflow) lets a full hop shed items
//!   ([`Overflow`]) instead of waiting; [`windows`](Pipeline::windows)
//!   groups items by time.
//! - **Parallel stages.** [`par_map`](Pipeline::par_map) and
//!   [`par_then`](Pipeline::par_then) run N workers on one stage, each a
//!   task of its own, with outputs in input order; the `_unordered` forms
//!   hand outputs on as they finish, and the `_by_key` forms keep each key's
//!   items in order, one at a time, while different keys run in parallel.
//!   [`chunks`](Pipeline::chunks) and
//!   [`chunks_timeout`](Pipeline::chunks_timeout) group items into batches.
//! - **Fan-out and fan-in.** [`broadcast`](Pipeline::broadcast) (every
//!   branch gets every item), [`partition`](Pipeline::partition) (each item
//!   to one branch, by key) and [`balance`](Pipeline::balance) (competing
//!   branches); [`merge`](merge()) joins pipelines of one type. Branches
//!   merge again or end in sinks of their own ([`Branch`]); the graph stays
//!   one run, with one report, and a cycle cannot be written.
//! - **Sinks.** [`for_each`](Pipeline::for_each),
//!   [`for_each_async`](Pipeline::for_each_async),
//!   [`try_for_each`](Pipeline::try_for_each), [`fold`](Pipeline::fold),
//!   [`collect`](Pipeline::collect), [`count`](Pipeline::count), or
//!   [`into_stream`](Pipeline::into_stream). A sink gives a [`Job`].
//! - **Running.** [`Job::run`] blocks until the sink is done, like Python's
//!   `asyncio.run`; [`Job::spawn`] puts the stages on an app's executor and
//!   gives a [`JobHandle`]; and `job.await` drives the whole pipeline as one
//!   future under any executor, tokio's included.
//! - **Closing.** When the source ends, its stage closes its hop; each stage
//!   ends once its input is closed and drained, then closes its own output.
//!   The run ends when the sink does, with every item delivered.
//! - **Errors.** A panic in any stage becomes [`Error::StagePanicked`] from
//!   the run, and the other stages are stopped; a pipeline never ends `Ok`
//!   with part of its input missing. Bad settings give a typed [`Error`].
//!
//! # Batching and capacity
//!
//! Moving one item per channel operation costs far more than the work most
//! stages do, so items cross hops in chunks. After its first receive, a
//! stage takes every chunk already waiting, processes them, and sends its
//! output on in chunks of up to [`chunk_limit`](Pipeline::chunk_limit) items,
//! flushing as soon as its input has nothing ready. Under load, chunks fill
//! and the cost per item falls towards that of a plain loop; under light
//! load an item goes on alone, at once. There is no timer.
//!
//! [`capacity`](Pipeline::capacity) still counts items: a hop never holds
//! more items than its capacity. Beyond the hops, each stage holds at most
//! the chunk it is draining and the chunk it is filling.
//!
//! A stage whose input is always ready still yields to its executor every
//! few thousand items, so timers and other tasks on its thread keep running.
//!
//! # Send and acknowledge
//!
//! In Python, `r = consumer.send(n)` resumes a generator with an item and
//! gives back its reply. flowgate offers the same, with backpressure
//! instead of locks:
//!
//! - A [`Consumer`] holds a state, like a generator's locals, and a handler
//!   (a sync or async closure, or your own [`Handler`]) that answers each
//!   item. When it ends, its final state comes back, like a generator's
//!   return value.
//! - [`Consumer::inline`] drives it in the caller's task: each
//!   [`InlineConsumer::send`] runs the handler at once, as `gen.send` does.
//! - [`Consumer::spawn`] runs it as its own task behind a bounded queue, and
//!   gives a cloneable [`Producer`] whose [`send`](Producer::send) resolves to
//!   the reply for that item. A send to a closed consumer gives the item
//!   back in [`SendError::Closed`].
//! - [`Producer::pipelined`] keeps many sends in flight, with the replies
//!   read in send order from [`Replies`], so throughput is not capped by
//!   round trips.
//! - [`service`] opens a whole pipeline as a consumer: each input resolves
//!   to its outputs from the last stage, an end-to-end acknowledgement.
//!
//! ```
//! # futures_lite::future::block_on(async {
//! let mut consumer = flowgate::Consumer::new(0u32, |consumed: &mut u32, n: u32| {
//!     *consumed += 1;
//!     "200 OK"
//! })
//! .inline();
//! for n in 1..=5 {
//!     assert_eq!(consumer.send(n).await?, "200 OK");
//! }
//! assert_eq!(consumer.close(), 5);
//! # Ok::<(), flowgate::SendError<u32>>(())
//! # }).unwrap();
//! ```
//!
//! # Examples
//!
//! The output as a stream, read inside another async program:
//!
//! ```
//! use futures_lite::StreamExt;
//!
//! # futures_lite::future::block_on(async {
//! let mut lines = flowgate::from_iter(1..=3u32).map(|n| format!("line {n}")).into_stream();
//! assert_eq!(lines.next().await.transpose()?, Some("line 1".to_owned()));
//! # Ok::<(), flowgate::Error>(())
//! # }).unwrap();
//! ```
//!
//! [smol]: https://docs.rs/smol
//! [async-channel]: https://docs.rs/async-channel

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod ack;
mod control;
mod engine;
mod error;
mod job;
mod limits;
mod pipeline;
mod report;
mod service;
mod stages;

/// The channel crate flowgate is built on, re-exported so that the channel
/// types in flowgate's own signatures (the dead-letter output of
/// [`OnError::dead_letter`], say) can be named without a dependency of
/// your own, at the same version.
///
/// # Examples
///
/// ```
/// use flowgate::{DeadLetter, OnError};
/// use flowgate::async_channel;
///
/// let (letters, _rx) = async_channel::bounded::<DeadLetter<String, std::num::ParseIntError>>(16);
/// let _policy = OnError::dead_letter(letters);
/// ```
pub use async_channel;

pub use ack::consumer::{Consumer, ConsumerHandle};
pub use ack::fate::{Acknowledge, Outcome};
pub use ack::handler::{AsyncHandler, Handler, SyncHandler};
pub use ack::inline::InlineConsumer;
pub use ack::pipelined::PipelinedSender;
pub use ack::producer::Producer;
pub use ack::replies::{Replies, ReplyChunk};
#[cfg(feature = "sink")]
pub use ack::sink::ProducerSink;
pub use control::{Control, Watch};
pub use engine::hop::Overflow;
pub use error::{
    Error, ItemError, Panicked, SendError, SendTimeoutError, StageError, TimedOut, TrySendError,
};
pub use job::future::JobFuture;
pub use job::handle::JobHandle;
pub use job::run::Job;
pub use job::stream::PipelineStream;
pub use limits::{
    DEFAULT_CAPACITY, DEFAULT_CHUNK_LIMIT, DEFAULT_CONSUMER_CAPACITY, MAX_CONSUMER_CAPACITY,
    MAX_THREADS, MAX_WORKERS,
};
pub use pipeline::builder::Pipeline;
pub use report::run::{Report, WAITED_ON};
pub use report::stage::StageReport;
pub use report::state::State;
pub use service::builder::{Service, service};
pub use stages::fallible::{Fallible, TryMapped, TryThened};
pub use stages::fanout::Branch;
pub use stages::merge::merge;
pub use stages::policy::{Backoff, DeadLetter, OnError};
pub use stages::source::{
    from_iter, from_iter_acked, from_reads_acked, from_stream, from_stream_acked,
};
pub use stages::throttle::Rate;

/// The README's Rust snippets, compiled and run as doctests so that the
/// README and the code cannot drift apart.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
