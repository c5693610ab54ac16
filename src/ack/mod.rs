//! Send and acknowledge: a producer sends an item and gets the consumer's
//! reply back, the way a Python generator's `send` does.
//!
//! [`protocol`] is the request and answer between the two sides; the
//! consumer side is a [`Handler`](handler::Handler) run by a task
//! [`Consumer`](consumer::Consumer) or an [`InlineConsumer`](inline::InlineConsumer);
//! the producer side sends one item at a time ([`Producer`](producer::Producer))
//! or many in flight ([`pipelined`], read back through [`replies`]).

pub(crate) mod consumer;
pub(crate) mod fate;
pub(crate) mod handler;
pub(crate) mod inline;
pub(crate) mod pipelined;
pub(crate) mod producer;
pub(crate) mod protocol;
pub(crate) mod replies;
#[cfg(feature = "sink")]
pub(crate) mod sink;
