//! Redis Streams for [flowgate](flowgate) pipelines.
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
pub use source::{Acks, PAYLOAD_FIELD, StreamSource};
