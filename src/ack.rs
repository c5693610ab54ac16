//! The request/answer protocol between producers and a task consumer.
//!
//! A producer sends a [`Request`]: a chunk of items, an empty buffer for
//! their replies, and the sender of its own answer channel. The consumer
//! moves the items through its handler, fills the reply buffer, and sends
//! back an [`Answer`]. Buffers travel back with the answer, so a producer in
//! steady state allocates nothing per send.
//!
//! Every request is answered exactly once. A request that is dropped
//! unanswered (because the consumer ended, was cancelled, or panicked)
//! answers itself from `Drop`, giving back the items it still holds. Answer
//! channels always have room for every request in flight, so that answer
//! cannot be lost.

use std::panic::AssertUnwindSafe;

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::error::panic_message;
use crate::Handler;

/// A chunk of items on its way to a consumer.
pub(crate) struct Request<T, R> {
    /// The items not yet taken, in reverse order, so that taking the next
    /// one is a `pop` and the rest stay owned by the request.
    pending: Vec<T>,
    replies: Vec<R>,
    answer_to: Option<Sender<Answer<T, R>>>,
}

/// What became of a request's items, in order: `replies` answers the first
/// items; then, if `failure` is set, the next item was used up by a failed
/// consumer; `returned` holds the items the consumer never took.
pub(crate) struct Answer<T, R> {
    pub(crate) replies: Vec<R>,
    pub(crate) failure: Option<Failure>,
    pub(crate) returned: Vec<T>,
}

/// Why an item taken by the consumer got no reply.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The handler panicked with this message.
    Panicked(String),
    /// The consumer was stopped while it held the item.
    Cancelled,
}

impl<T, R> Request<T, R> {
    /// Makes a request for `items` (in send order), to be answered on
    /// `answer_to`. `replies` is an empty buffer for the replies.
    pub(crate) fn new(mut items: Vec<T>, replies: Vec<R>, answer_to: Sender<Answer<T, R>>) -> Self {
        items.reverse();
        Request {
            pending: items,
            replies,
            answer_to: Some(answer_to),
        }
    }

    /// Takes the items back out of a request that was never delivered, in
    /// send order, with the reply buffer. The request will not answer.
    pub(crate) fn into_parts(mut self) -> (Vec<T>, Vec<R>) {
        self.answer_to = None;
        let mut items = std::mem::take(&mut self.pending);
        items.reverse();
        (items, std::mem::take(&mut self.replies))
    }

    /// Sends the answer. `failure` says why the item taken last got no
    /// reply, if it did not.
    fn answer(&mut self, failure: Option<Failure>) {
        let Some(answer_to) = self.answer_to.take() else {
            return;
        };
        let mut returned = std::mem::take(&mut self.pending);
        returned.reverse();
        // The producer keeps room in its answer channel for every request it
        // has in flight, so this only fails if the producer is gone.
        let _ = answer_to.try_send(Answer {
            replies: std::mem::take(&mut self.replies),
            failure,
            returned,
        });
    }
}

impl<T, R> Drop for Request<T, R> {
    fn drop(&mut self) {
        // A request dropped unanswered gives back the items it still holds.
        self.answer(None);
    }
}

/// The consumer's end of its request channel. Dropping it, however the
/// consumer ends, closes the channel and answers every request still
/// queued, giving the items back to their producers.
pub(crate) struct Inbox<T, R>(pub(crate) Receiver<Request<T, R>>);

impl<T, R> Drop for Inbox<T, R> {
    fn drop(&mut self) {
        self.0.close();
        while let Ok(request) = self.0.try_recv() {
            drop(request);
        }
    }
}

/// Runs `handler` on one item, turning a panic into its message.
pub(crate) async fn call<S, T, H: Handler<S, T>>(
    handler: &mut H,
    state: &mut S,
    item: T,
) -> Result<H::Reply, String> {
    let reply = std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(state, item)))
        .map_err(panic_message)?;
    AssertUnwindSafe(reply)
        .catch_unwind()
        .await
        .map_err(panic_message)
}

/// Handles every item of `request` and answers it. Returns the panic
/// message if the handler panicked; the request is answered either way.
pub(crate) async fn serve<S, T, H>(
    handler: &mut H,
    state: &mut S,
    mut request: Request<T, H::Reply>,
) -> Result<(), String>
where
    H: Handler<S, T>,
{
    while let Some(item) = request.pending.pop() {
        // If this future is dropped here, the request answers from `Drop`
        // without a reply for `item`: the producer hears `Cancelled`.
        let guard = TakenGuard(&mut request);
        match call(handler, state, item).await {
            Ok(reply) => {
                guard.0.replies.push(reply);
                std::mem::forget(guard);
            }
            Err(message) => {
                guard.0.answer(Some(Failure::Panicked(message.clone())));
                std::mem::forget(guard);
                return Err(message);
            }
        }
    }
    request.answer(None);
    Ok(())
}

/// Marks the item in hand as cancelled if the consumer stops while it is
/// being handled.
struct TakenGuard<'a, T, R>(&'a mut Request<T, R>);

impl<T, R> Drop for TakenGuard<'_, T, R> {
    fn drop(&mut self) {
        self.0.answer(Some(Failure::Cancelled));
    }
}

/// The consumer loop shared by task consumers: serve requests until every
/// producer has gone or closed the channel, then give the final state.
pub(crate) async fn consume<S, T, H>(
    inbox: Inbox<T, H::Reply>,
    mut handler: H,
    mut state: S,
    name: std::sync::Arc<str>,
) -> Result<S, crate::Error>
where
    H: Handler<S, T>,
{
    let mut served = 0usize;
    while let Ok(request) = inbox.0.recv().await {
        if let Err(message) = serve(&mut handler, &mut state, request).await {
            // `inbox` drops on return: later and queued sends get their
            // items back.
            return Err(crate::Error::StagePanicked {
                stage: name.to_string(),
                message,
            });
        }
        served += 1;
        if served % 64 == 0 {
            futures_lite::future::yield_now().await;
        }
    }
    Ok(state)
}
