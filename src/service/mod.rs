//! A pipeline opened as a consumer: each input sent in resolves to its
//! outputs from the last stage, an end-to-end acknowledgement.
//!
//! The service is an ordinary [`Pipeline`](crate::Pipeline) between two
//! stages of its own: a front, the source, which takes producers' requests
//! and hands their items on, each with an acknowledgement; and a reply
//! sink, which keeps each item's outputs until the item's acknowledgement
//! says it is done, then answers its request.

pub(crate) mod builder;
mod front;
mod reply;
