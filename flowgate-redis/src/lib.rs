//! Redis Streams for [`flowgate`] pipelines: spread one pipeline's work
//! over processes and machines through a broker you already run.
//!
//! - [`StreamSource`] reads a stream through a consumer group into a
//!   pipeline, as much at a time as the pipeline has room for, and settles
//!   each entry once its fate in the pipeline is final: acknowledged
//!   (`XACK`, many per round trip) when delivered, filtered or skipped;
//!   written to a dead-letter stream and acknowledged, in one `MULTI`,
//!   when a stage dead-lettered it; left pending, to be delivered again,
//!   when the run dropped it. Entries held by a consumer that crashed are
//!   claimed (`XAUTOCLAIM`) by the others, and one delivered too often goes
//!   to the dead letters.
//! - [`StreamSink`] writes a pipeline's items with `XADD`, a chunk per
//!   round trip ([`WriteStream::write_stream`]).
//! - [`RemoteService`] and [`Client`] carry the generator-style
//!   `reply = consumer.send(item)` across processes: a client's `send`
//!   gives the reply that a flowgate service in another process computed.
//! - A [`Codec`] turns items into payloads: [`Bytes`] and [`Utf8`] built in,
//!   `Json` with the `serde` feature.
//!
//! Delivery is at least once: an entry is acknowledged only after the
//! pipeline is done with it, so a crash or a cancel leaves it to be
//! delivered again, and [`Delivery::deliveries`] tells a stage which
//! delivery it holds. Everything runs on smol, through the `redis` crate's
//! smol support, with a connection of its own for each source's blocking
//! reads and one shared by acknowledgements and writes; both reconnect
//! after the server restarts.
//!
//! # Examples
//!
//! A worker that takes orders from one stream and writes invoices to
//! another; start as many as you like, under names of their own:
//!
//! ```no_run
//! use flowgate_redis::{Redis, StreamSink, StreamSource, Utf8, WriteStream};
//!
//! let redis = Redis::open("redis://127.0.0.1:6379/")?;
//! let (orders, acks) = StreamSource::new(&redis, "orders", "billing", "worker-1")
//!     .codec(Utf8)
//!     .create_group(true)
//!     .open()?;
//! orders
//!     .map(|order| format!("invoice for {}", order.value))
//!     .write_stream(StreamSink::new(&redis, "invoices").codec(Utf8))
//!     .run()?; // until shut down; each order is acknowledged once its invoice is written
//! smol::block_on(acks.finished());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod connect;
mod entry;
mod error;
mod reader;
mod remote;
mod serve;
mod settle;
mod sink;
mod source;

#[cfg(feature = "serde")]
pub use codec::Json;
pub use codec::{Bytes, Codec, DecodeError, Utf8};
pub use connect::Redis;
pub use entry::Delivery;
pub use error::Error;
pub use remote::{Client, Pipelined, Reply};
pub use serve::{RemoteService, Serving, Stop};
pub use settle::Tally;
pub use sink::{StreamSink, WriteStream};
pub use source::{Acks, PAYLOAD_FIELD, StreamPipeline, StreamSource};
