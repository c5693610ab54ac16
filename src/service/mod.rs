//! A pipeline opened as a consumer: each input sent in resolves to its
//! outputs from the last stage, an end-to-end acknowledgement.

pub(crate) mod builder;
mod front;
mod message;
mod reply;
