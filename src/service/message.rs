//! The messages that travel inside a service: each item carries a `last`
//! flag, and each input leaves exactly one message flagged `last` behind
//! its outputs, even when a filter drops it (the message then carries no
//! value). That flag is how the reply sink knows an input is done.

use std::fmt;

use crate::ack::protocol::Request;

/// An item inside a service, with the flag that marks the end of one
/// input's outputs.
pub(super) struct Msg<T> {
    pub(crate) value: Option<T>,
    pub(crate) last: bool,
}

impl<T> fmt::Debug for Msg<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msg")
            .field("value", &self.value.as_ref().map(|_| ".."))
            .field("last", &self.last)
            .finish()
    }
}

/// A producer's request to a service, sent by the front to the reply sink
/// ahead of its items, so the sink knows whom each input's outputs are for.
pub(super) type ServiceRequest<In, Out> = Request<In, Vec<Out>>;

/// The messages one input becomes in a `flat_map`: its outputs, with `last`
/// on the final one, or a bare marker if there are none.
pub(super) struct Expand<I: Iterator> {
    pub(crate) outputs: Option<std::iter::Peekable<I>>,
    pub(crate) last: bool,
    /// Whether the `last` marker still has to be sent.
    pub(crate) marker_due: bool,
}

impl<I: Iterator> Iterator for Expand<I> {
    type Item = Msg<I::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(outputs) = &mut self.outputs {
            if let Some(value) = outputs.next() {
                let last = self.last && outputs.peek().is_none();
                if last {
                    self.marker_due = false;
                }
                return Some(Msg {
                    value: Some(value),
                    last,
                });
            }
        }
        if self.marker_due {
            self.marker_due = false;
            return Some(Msg {
                value: None,
                last: true,
            });
        }
        None
    }
}
