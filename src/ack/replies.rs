//! The replies to pipelined sends, read in send order.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender};
use futures_lite::Stream;

use crate::ack::protocol::{Answer, Failure, send_error};
use crate::error::SendError;

/// A chunk's buffers: one for the items, one for their replies.
pub(super) type Credit<T, R> = (Vec<T>, Vec<R>);

/// The replies to a [`PipelinedSender`](crate::PipelinedSender)'s items, as a [`Stream`] of
/// `(ticket, result)` in send order.
///
/// Each item sent gets exactly one entry, under the ticket its send gave:
/// `Ok(reply)`, or an error that gives the item back
/// ([`SendError::Closed`]) or says why it has no reply. Answers may come
/// back from the consumer in another order than the items went (a chunk
/// given back by a dropped sender can overtake the chunks before it); they
/// are put back in send order here. The stream ends once the sender is
/// closed or dropped and every reply has been read.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u32| x * x).spawn_local(&ex);
/// let (mut tx, replies) = p.pipelined(16)?;
/// let got: Vec<_> = ex.run(async move {
///     for x in 1..=3 {
///         tx.send(x).await.unwrap();
///     }
///     tx.close().await;
///     replies.map(|(ticket, reply)| (ticket, reply.unwrap())).collect().await
/// })
/// .await;
/// assert_eq!(got, [(0, 1), (1, 4), (2, 9)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Replies<T, R> {
    answers: Pin<Box<Receiver<Answer<T, R>>>>,
    credits: Sender<Credit<T, R>>,
    /// What is left of the answer being read.
    replies: std::vec::IntoIter<R>,
    /// The replies of an answer in which some items failed each for its
    /// own reason, read from here instead of `replies`, which stays empty,
    /// so that reading a plain answer checks for nothing more.
    mixed: Option<Box<Mixed<R>>>,
    failure: Failure,
    /// How many items after the replies were lost, for `failure`.
    lost: usize,
    returned: VecDeque<T>,
    /// The item buffer of the answer being read, returned with the credit.
    items: Vec<T>,
    /// Whether an answer has been taken whose credit is not yet returned.
    holding: bool,
    next_ticket: u64,
    /// Answers that arrived before an answer to earlier tickets, by the
    /// ticket of their first item. At most one per chunk in flight.
    early: BTreeMap<u64, Answer<T, R>>,
    /// Raised when this is dropped, for the sender to see.
    gone: Arc<AtomicBool>,
    name: Arc<str>,
}

impl<T, R> Replies<T, R> {
    pub(crate) fn new(
        answers: Receiver<Answer<T, R>>,
        credits: Sender<Credit<T, R>>,
        name: Arc<str>,
    ) -> Self {
        Replies {
            answers: Box::pin(answers),
            credits,
            replies: Vec::new().into_iter(),
            mixed: None,
            failure: Failure::Cancelled,
            lost: 0,
            returned: VecDeque::new(),
            items: Vec::new(),
            holding: false,
            next_ticket: 0,
            early: BTreeMap::new(),
            gone: Arc::default(),
            name,
        }
    }

    /// The flag raised when this is dropped, for the sender.
    pub(super) fn gone(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.gone)
    }

    /// Waits for the next chunk of replies, and gives them, in send order,
    /// as an iterator of `(ticket, result)`. Reading a chunk at a time costs
    /// less per reply than polling the stream for each one. `None` once the
    /// sender is closed and every reply has been read.
    ///
    /// Replies the iterator does not take stay for the next read.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u64| x + 1).spawn_local(&ex);
    /// let (mut tx, mut replies) = p.pipelined(256)?;
    /// let sum = ex.run(async move {
    ///     let send = async move {
    ///         for x in 0..1000 {
    ///             tx.send(x).await.unwrap();
    ///         }
    ///         tx.close().await;
    ///     };
    ///     let read = async move {
    ///         let mut sum = 0;
    ///         while let Some(chunk) = replies.next_chunk().await {
    ///             for (_ticket, reply) in chunk {
    ///                 sum += reply.unwrap();
    ///             }
    ///         }
    ///         sum
    ///     };
    ///     futures_lite::future::zip(send, read).await.1
    /// })
    /// .await;
    /// assert_eq!(sum, (1..=1000).sum());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn next_chunk(&mut self) -> Option<ReplyChunk<'_, T, R>> {
        let ready = std::future::poll_fn(|cx| {
            loop {
                if self.has_ready() {
                    return Poll::Ready(true);
                }
                match self.poll_answer(cx) {
                    Poll::Ready(true) => {}
                    Poll::Ready(false) => return Poll::Ready(false),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        ready.then_some(ReplyChunk { replies: self })
    }

    /// Whether an entry of the answer being read is left.
    fn has_ready(&mut self) -> bool {
        self.replies.len() > 0
            || self.lost > 0
            || !self.returned.is_empty()
            || self.mixed.as_mut().is_some_and(|mixed| mixed.has_next())
    }

    #[inline]
    fn next_ready(&mut self) -> Option<Result<R, SendError<T>>> {
        if let Some(reply) = self.replies.next() {
            return Some(Ok(reply));
        }
        self.after_replies()
    }

    /// The replies of an answer with failures among them, then the items
    /// lost, then those given back.
    fn after_replies(&mut self) -> Option<Result<R, SendError<T>>> {
        if let Some(mixed) = &mut self.mixed {
            match mixed.next() {
                Some(Ok(reply)) => return Some(Ok(reply)),
                Some(Err(failure)) => return Some(Err(send_error(failure, &self.name))),
                None => self.mixed = None,
            }
        }
        if self.lost > 0 {
            self.lost -= 1;
            return Some(Err(send_error(self.failure.clone(), &self.name)));
        }
        self.returned
            .pop_front()
            .map(|item| Err(SendError::Closed(item)))
    }
}

impl<T, R> Drop for Replies<T, R> {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
    }
}

// Nothing in `Replies` is pinned structurally: the receiver is boxed.
impl<T, R> Unpin for Replies<T, R> {}

impl<T, R> Stream for Replies<T, R> {
    type Item = (u64, Result<R, SendError<T>>);

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(result) = this.next_ready() {
                let ticket = this.next_ticket;
                this.next_ticket += 1;
                return Poll::Ready(Some((ticket, result)));
            }
            match this.poll_answer(cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T, R> Replies<T, R> {
    /// Once the answer being read is used up, starts reading the next in
    /// ticket order: `true` once it has, `false` once every answer has been
    /// read.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.holding {
            // The answer is used up: its item buffer goes back to the
            // sender as the credit for one more chunk. (The reply buffer is
            // read by value, so the consumer makes a new one.)
            self.holding = false;
            let items = std::mem::take(&mut self.items);
            let _ = self.credits.try_send((items, Vec::new()));
        }
        loop {
            let answer = match self.early.remove(&self.next_ticket) {
                Some(answer) => answer,
                None => match self.answers.as_mut().poll_next(cx) {
                    Poll::Ready(Some(answer)) if answer.first == self.next_ticket => answer,
                    Poll::Ready(Some(answer)) => {
                        self.hold_early(answer);
                        continue;
                    }
                    Poll::Ready(None) => match self.early.pop_first() {
                        // Every ticket is answered exactly once, so nothing
                        // can be left early once the answers end.
                        Some((first, answer)) => {
                            debug_assert!(
                                false,
                                "tickets {} to {first} unanswered",
                                self.next_ticket
                            );
                            self.next_ticket = first;
                            answer
                        }
                        None => return Poll::Ready(false),
                    },
                    Poll::Pending => return Poll::Pending,
                },
            };
            self.read(answer);
            return Poll::Ready(true);
        }
    }
}

impl<T, R> Replies<T, R> {
    /// Starts reading `answer`, the next in ticket order.
    fn read(&mut self, answer: Answer<T, R>) {
        self.holding = true;
        let Answer {
            first: _,
            replies,
            failed,
            failure,
            lost,
            mut returned,
        } = answer;
        if failed.is_empty() {
            self.replies = replies.into_iter();
        } else {
            self.mixed = Some(Box::new(Mixed {
                replies: replies.into_iter(),
                failed: failed.into_iter().peekable(),
                place: 0,
            }));
        }
        (self.failure, self.lost) = (failure, lost);
        self.returned = returned.drain(..).collect();
        self.items = returned;
    }

    /// Keeps an answer that came before the answers to earlier tickets. One
    /// for no ticket at all only gives its credit back.
    fn hold_early(&mut self, answer: Answer<T, R>) {
        if answer.replies.is_empty()
            && answer.failed.is_empty()
            && answer.lost == 0
            && answer.returned.is_empty()
        {
            let _ = self.credits.try_send((answer.returned, Vec::new()));
        } else {
            self.early.insert(answer.first, answer);
        }
    }
}

/// The replies of an answer in which some items failed, each at its place.
struct Mixed<R> {
    replies: std::vec::IntoIter<R>,
    failed: std::iter::Peekable<std::vec::IntoIter<(usize, Failure)>>,
    /// The place in the answer of the next entry.
    place: usize,
}

impl<R> Mixed<R> {
    /// Whether an entry is left.
    fn has_next(&mut self) -> bool {
        self.replies.len() > 0 || self.failed.peek().is_some()
    }
}

impl<R> Iterator for Mixed<R> {
    type Item = Result<R, Failure>;

    fn next(&mut self) -> Option<Result<R, Failure>> {
        let place = self.place;
        self.place += 1;
        match self.failed.next_if(|(at, _)| *at == place) {
            Some((_, failure)) => Some(Err(failure)),
            None => self.replies.next().map(Ok),
        }
    }
}

/// The replies of one chunk, from [`Replies::next_chunk`]: an iterator of
/// `(ticket, result)` in send order.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
/// let (mut tx, mut replies) = p.pipelined(8)?;
/// ex.run(async { tx.send(7).await.unwrap(); tx.close().await }).await;
/// let chunk = ex.run(replies.next_chunk()).await.unwrap();
/// assert_eq!(chunk.map(|(t, r)| (t, r.unwrap())).collect::<Vec<_>>(), [(0, 7)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct ReplyChunk<'a, T, R> {
    replies: &'a mut Replies<T, R>,
}

impl<T, R> Iterator for ReplyChunk<'_, T, R> {
    type Item = (u64, Result<R, SendError<T>>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let result = self.replies.next_ready()?;
        let ticket = self.replies.next_ticket;
        self.replies.next_ticket += 1;
        Some((ticket, result))
    }
}

impl<T, R> fmt::Debug for ReplyChunk<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyChunk")
            .field("left", &self.replies.replies.len())
            .finish()
    }
}

impl<T, R> fmt::Debug for Replies<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replies")
            .field("read", &self.next_ticket)
            .field("buffered", &self.replies.len())
            .finish()
    }
}
