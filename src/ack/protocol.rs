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
//!
//! A pipelined request carries the ticket of its first item, and its answer
//! carries it back, so replies are put in send order whatever order the
//! answers arrive in. Such a request also knows the way back to its sender:
//! if it is dropped before any consumer has received it (the future that
//! was sending it was dropped), its items go back to the sender unanswered,
//! to be sent again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::task::{Poll, Waker};

use async_channel::{Receiver, Sender, TryRecvError};
use futures_lite::FutureExt;

use crate::ack::handler::Handler;
use crate::error::{SendError, panic_message};

/// A chunk of items on its way to a consumer.
pub(crate) struct Request<T, R> {
    /// The items not yet taken, in reverse order, so that taking the next
    /// one is a `pop` and the rest stay owned by the request.
    pending: Vec<T>,
    /// How many items the consumer has taken out of `pending`.
    taken: usize,
    replies: Vec<R>,
    /// The taken items answered with a failure instead of a reply, by
    /// their place in the request.
    failed: Vec<(usize, Failure)>,
    answer_to: Option<Sender<Answer<T, R>>>,
    /// The task waiting for the answer, woken directly once it is sent.
    /// `None` when the answer is awaited through the channel itself.
    waiter: Option<Waker>,
    /// The ticket of the first item, given back with the answer.
    first: u64,
    /// Where the items go back if the request is dropped before a consumer
    /// received it; cleared on receipt.
    unsent_to: Option<Sender<Unsent<T, R>>>,
}

/// The items and reply buffer of a request dropped on its way to the
/// consumer, given back to its sender.
pub(crate) type Unsent<T, R> = (Vec<T>, Vec<R>);

/// What became of a request's items, in order: the first items are
/// answered by `replies`, except those placed in `failed`, which failed
/// each for its own reason; the next `lost` items were used up by a
/// consumer that failed, for the reason in `failure`; `returned` holds the
/// items it never took. `first` is the ticket of the first item.
pub(crate) struct Answer<T, R> {
    pub(crate) first: u64,
    pub(crate) replies: Vec<R>,
    pub(crate) failed: Vec<(usize, Failure)>,
    pub(crate) failure: Failure,
    pub(crate) lost: usize,
    pub(crate) returned: Vec<T>,
}

/// Why an item taken by the consumer got no reply.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The handler panicked with this message.
    Panicked(String),
    /// The consumer was stopped while it held the item.
    Cancelled,
    /// A service's stage skipped the item after an error.
    Skipped,
    /// A service's stage sent the item to its dead-letter output.
    DeadLettered,
    /// A service's stage failed on the item with this error.
    Failed(String),
}

impl<T, R> Request<T, R> {
    /// Makes a request for `items` (in send order), to be answered on
    /// `answer_to`. `replies` is an empty buffer for the replies.
    pub(crate) fn new(
        mut items: Vec<T>,
        replies: Vec<R>,
        answer_to: Sender<Answer<T, R>>,
        waiter: Option<Waker>,
    ) -> Self {
        items.reverse();
        Request {
            pending: items,
            taken: 0,
            replies,
            failed: Vec::new(),
            answer_to: Some(answer_to),
            waiter,
            first: 0,
            unsent_to: None,
        }
    }

    /// Makes a pipelined request: its first item has ticket `first`, and
    /// if it is dropped before a consumer receives it, its items go back
    /// through `unsent_to`, if given, instead of being answered.
    pub(crate) fn ticketed(mut self, first: u64, unsent_to: Option<Sender<Unsent<T, R>>>) -> Self {
        self.first = first;
        self.unsent_to = unsent_to;
        self
    }

    /// Marks the request as received by a consumer: from now on, however it
    /// ends, it answers.
    #[inline]
    pub(crate) fn received(mut self) -> Self {
        self.unsent_to = None;
        self
    }

    /// Takes the items back out of a request that was never delivered, in
    /// send order, with the reply buffer. The request will not answer.
    pub(crate) fn into_parts(mut self) -> (Vec<T>, Vec<R>) {
        self.answer_to = None;
        self.unsent_to = None;
        let mut items = std::mem::take(&mut self.pending);
        items.reverse();
        (items, std::mem::take(&mut self.replies))
    }

    /// Takes every item out, in send order, for a consumer that answers
    /// them later with [`Request::reply`].
    pub(crate) fn take_items(&mut self) -> Vec<T> {
        let mut items = std::mem::take(&mut self.pending);
        items.reverse();
        self.taken += items.len();
        items
    }

    /// Records the reply to the next taken item. Returns `true` once every
    /// taken item has its reply.
    pub(crate) fn reply(&mut self, reply: R) -> bool {
        self.replies.push(reply);
        self.replies.len() + self.failed.len() == self.taken
    }

    /// Records that the next taken item failed, for `failure`, and has no
    /// reply.
    pub(crate) fn fail_one(&mut self, failure: Failure) {
        let at = self.replies.len() + self.failed.len();
        self.failed.push((at, failure));
    }

    /// Sends the answer. Taken items without a reply are reported as lost,
    /// for the reason `failure`.
    pub(crate) fn answer(&mut self, failure: Failure) {
        let Some(answer_to) = self.answer_to.take() else {
            return;
        };
        let mut returned = std::mem::take(&mut self.pending);
        returned.reverse();
        // The producer keeps room in its answer channel for every request it
        // has in flight, so this only fails if the producer is gone.
        let _ = answer_to.try_send(Answer {
            first: self.first,
            lost: self.taken - self.replies.len() - self.failed.len(),
            replies: std::mem::take(&mut self.replies),
            failed: std::mem::take(&mut self.failed),
            failure,
            returned,
        });
        if let Some(waiter) = self.waiter.take() {
            waiter.wake();
        }
    }
}

impl<T, R> Drop for Request<T, R> {
    fn drop(&mut self) {
        if let Some(unsent_to) = self.unsent_to.take() {
            // Never received: the items go back to their sender, to be sent
            // again, if it is still there to take them.
            let mut items = std::mem::take(&mut self.pending);
            items.reverse();
            let replies = std::mem::take(&mut self.replies);
            match unsent_to.try_send((items, replies)) {
                Ok(()) => {
                    self.answer_to = None;
                    return;
                }
                Err(err) => {
                    let (mut items, replies) = err.into_inner();
                    items.reverse();
                    (self.pending, self.replies) = (items, replies);
                }
            }
        }
        // A request dropped unanswered gives back the items it still holds;
        // any it had handed out were lost when its consumer stopped.
        self.answer(Failure::Cancelled);
    }
}

/// Where an idle consumer leaves its waker for the next producer to wake.
///
/// The consumer takes requests with `try_recv` and never sleeps on the
/// channel itself, which would cost an allocation and a notification per
/// wait. Instead it publishes its waker here and checks its queue once more;
/// a producer queues its request and then rings. Each side writes before it
/// reads the other's side, with a full fence between, so at least one of
/// them sees the other: either the consumer finds the request, or the
/// producer finds the waker.
///
/// A consumer is polled by one task nearly always, so the bell keeps the
/// first waker it is given, and a later wait by the same task only raises a
/// flag: a wait and a ring cost an atomic store and an atomic swap, not a
/// channel operation each. A waker of another task goes through a one-slot
/// channel instead.
#[derive(Clone)]
pub(crate) struct Doorbell {
    bell: Arc<Bell>,
}

struct Bell {
    /// The waker of the consumer's first wait.
    first: OnceLock<Waker>,
    /// Raised while the consumer waits to be woken through `first`.
    asleep: AtomicBool,
    /// The waker of a wait by another task than the first one's, if the
    /// consumer waits so.
    give: Sender<Waker>,
    take: Receiver<Waker>,
}

impl Doorbell {
    pub(crate) fn new() -> Self {
        let (give, take) = async_channel::bounded(1);
        Doorbell {
            bell: Arc::new(Bell {
                first: OnceLock::new(),
                asleep: AtomicBool::new(false),
                give,
                take,
            }),
        }
    }

    /// Wakes the consumer if it is waiting.
    #[inline]
    pub(super) fn ring(&self) {
        let bell = &*self.bell;
        // What the producer wrote (its request, a close) is seen before the
        // flag is read: see `arm`.
        fence(Ordering::SeqCst);
        if bell.asleep.swap(false, Ordering::SeqCst) {
            if let Some(waker) = bell.first.get() {
                waker.wake_by_ref();
            }
        }
        if !bell.take.is_empty() {
            if let Ok(waker) = bell.take.try_recv() {
                waker.wake();
            }
        }
    }

    /// Leaves the consumer's waker for the next ring, replacing one left
    /// before. The caller looks at its queue once more after this.
    fn arm(&self, waker: &Waker) {
        let bell = &*self.bell;
        if bell.first.get_or_init(|| waker.clone()).will_wake(waker) {
            bell.asleep.store(true, Ordering::SeqCst);
        } else if let Err(async_channel::TrySendError::Full(waker)) =
            bell.give.try_send(waker.clone())
        {
            let _ = bell.take.try_recv();
            let _ = bell.give.try_send(waker);
        }
        // The flag is seen before the queue is read again: see `ring`.
        fence(Ordering::SeqCst);
    }
}

/// Closes `requests` and answers every request still queued in it, so that
/// none waits for ever once nobody will take it.
pub(crate) fn close_and_answer<T, R>(requests: &Receiver<Request<T, R>>) {
    requests.close();
    while let Ok(request) = requests.try_recv() {
        drop(request.received());
    }
}

/// The consumer's end of its request channel. Dropping it, however the
/// consumer ends, closes the channel and answers every request still
/// queued, giving the items back to their producers.
pub(crate) struct Inbox<T, R> {
    pub(crate) requests: Receiver<Request<T, R>>,
    pub(crate) bell: Doorbell,
}

impl<T, R> Inbox<T, R> {
    /// Closes the queue: the requests already in it are still received,
    /// later sends give their items back. Wakes the consumer, which may be
    /// asleep waiting for the next request, so that it sees the close.
    pub(crate) fn close(&self) {
        self.requests.close();
        self.bell.ring();
    }

    /// Waits for the next request; `None` once every producer is gone or
    /// the queue was closed, and it is empty.
    pub(crate) async fn recv(&self) -> Option<Request<T, R>> {
        std::future::poll_fn(|cx| {
            // Armed afresh on every poll: a ring that woke this task took
            // the waker it had left, whether or not a request came with it.
            let mut armed = false;
            loop {
                match self.requests.try_recv() {
                    Ok(request) => return Poll::Ready(Some(request.received())),
                    Err(TryRecvError::Closed) => return Poll::Ready(None),
                    Err(TryRecvError::Empty) if !armed => {
                        // Publish the waker, then look once more: a request
                        // queued before the waker was visible is seen now.
                        self.bell.arm(cx.waker());
                        armed = true;
                    }
                    Err(TryRecvError::Empty) => return Poll::Pending,
                }
            }
        })
        .await
    }
}

impl<T, R> Drop for Inbox<T, R> {
    fn drop(&mut self) {
        close_and_answer(&self.requests);
    }
}

/// Handles every item of `request` and answers it. Returns the panic
/// message if the handler panicked; the request is answered either way.
///
/// Items whose replies are ready at once are handled in one tight loop; the
/// loop stops at the first item whose reply must be awaited.
pub(super) async fn serve<S, T, H>(
    handler: &mut H,
    state: &mut S,
    mut request: Request<T, H::Reply>,
) -> Result<(), String>
where
    H: Handler<S, T>,
{
    request.replies.reserve(request.pending.len());
    loop {
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
            while let Some(item) = request.pending.pop() {
                // Counted as taken before the call: if the handler panics,
                // the answer reports this item as lost.
                request.taken += 1;
                match handler.call_now(state, item) {
                    Ok(reply) => request.replies.push(reply),
                    Err(reply) => return Some(reply),
                }
            }
            None
        }));
        // If this future is dropped while a reply is awaited, the request
        // answers from `Drop`, reporting that item as lost: its producer
        // hears `Cancelled`.
        let result = match step {
            Ok(None) => break,
            Ok(Some(reply)) => AssertUnwindSafe(reply).catch_unwind().await,
            Err(payload) => Err(payload),
        };
        match result {
            Ok(reply) => request.replies.push(reply),
            Err(payload) => {
                let message = panic_message(payload);
                request.answer(Failure::Panicked(message.clone()));
                return Err(message);
            }
        }
    }
    request.answer(Failure::Cancelled);
    Ok(())
}

/// What a producer makes of an answer's failure for an item.
pub(super) fn send_error<T>(failure: Failure, name: &str) -> SendError<T> {
    match failure {
        Failure::Panicked(message) => SendError::Panicked {
            stage: name.to_owned(),
            message,
        },
        Failure::Cancelled => SendError::Cancelled,
        Failure::Skipped => SendError::Skipped,
        Failure::DeadLettered => SendError::DeadLettered,
        Failure::Failed(message) => SendError::Failed { message },
    }
}

/// Drops a producer's sender, then wakes the consumer. If that was the last
/// sender the queue is now closed, and the consumer must wake to see it.
pub(super) fn release<T, R>(requests: &mut Sender<Request<T, R>>, bell: &Doorbell) {
    let (closed, _) = async_channel::bounded(1);
    drop(std::mem::replace(requests, closed));
    bell.ring();
}
