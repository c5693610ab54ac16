//! Pipelined sends: many items in flight, replies read later in send order.
//!
//! The sender batches items into chunks and the consumer answers each chunk
//! with one message, so the cost of the channels is paid per chunk, not per
//! item. A window of *credits* bounds the chunks in flight; each credit is a
//! pair of buffers, so chunks reuse memory instead of allocating.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_channel::{Receiver, Sender};

use crate::ack::protocol::{Answer, Doorbell, Failure, Request, Unsent, release};
use crate::ack::replies::{Credit, Replies};
use crate::error::{Error, SendError};
use crate::limits::DEFAULT_CHUNK_LIMIT;

/// The two halves of a pipelined producer.
pub(super) type Halves<T, R> = (PipelinedSender<T, R>, Replies<T, R>);

/// The most chunks one pipelined sender keeps in flight.
const MAX_CREDITS: usize = 1024;

pub(crate) fn pipelined<T, R>(
    requests: Sender<Request<T, R>>,
    bell: Doorbell,
    name: Arc<str>,
    window: usize,
) -> Result<Halves<T, R>, Error> {
    if window == 0 {
        return Err(Error::ZeroWindow);
    }
    // Several chunks in flight let the producer fill one while the consumer
    // works on another.
    let chunk = (window / 4).clamp(1, DEFAULT_CHUNK_LIMIT);
    // Each credit's room is made now: a huge window must not become a huge
    // allocation.
    let credits = (window / chunk).min(MAX_CREDITS);
    // Room for an answer to every chunk in flight, so no answer is lost.
    let (answer_to, answers) = async_channel::bounded(credits);
    let (give, take) = async_channel::bounded(credits);
    for _ in 0..credits {
        let _ = give.try_send((Vec::new(), Vec::new()));
    }
    // One flush at a time can be given up half way, so one slot is enough.
    let (unsent_to, unsent) = async_channel::bounded(1);
    let replies = Replies::new(answers, give, name);
    let sender = PipelinedSender {
        requests,
        bell,
        answer_to: Some(answer_to),
        credits: take,
        current: None,
        first: 0,
        chunk,
        next_ticket: 0,
        unsent_to,
        unsent,
        sending: false,
        gone: replies.gone(),
    };
    Ok((sender, replies))
}

/// The sending half of a pipelined producer, made by
/// [`Producer::pipelined`](crate::Producer::pipelined).
///
/// [`send`](PipelinedSender::send) waits only for room in the window and
/// gives the item's *ticket*: its number in send order, from 0. The reply
/// comes later from the [`Replies`] with the same ticket.
///
/// Items are sent in chunks. A send hands its chunk over when the chunk is
/// full, or when the consumer has nothing queued at that moment, so a lone
/// item is not held back while the consumer is idle. Items sent while the
/// consumer is busy wait in the chunk for the next send that hands it over,
/// or for [`flush`](PipelinedSender::flush), which sends a partial chunk at
/// once; [`close`](PipelinedSender::close) flushes and ends the replies. So
/// a task that stops sending and waits for replies calls `flush` (or
/// `close`) first. Dropping the sender without closing it hands a partial
/// chunk over if the consumer's queue has room, and otherwise gives its
/// items back through [`Replies`] as [`SendError::Closed`].
///
/// Every item that got a ticket gets exactly one entry in [`Replies`],
/// under that ticket, whatever happens on the way: a dropped `send` or
/// `flush` future, a close from another clone of the producer, a consumer
/// that panics or is cancelled. A `send` whose future is dropped before it
/// gave a ticket gives up its item, as a channel send does; the items sent
/// before it are kept and sent with the next chunk.
///
/// As with any bounded channel, the replies must be read while sending: a
/// task that sends more than the window before it reads a reply waits for
/// ever. Read them in another task, or `zip` the two loops.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
///
/// # futures_lite::future::block_on(async {
/// let ex = smol::LocalExecutor::new();
/// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), s: String| s.len()).spawn_local(&ex);
/// let (mut tx, mut replies) = p.pipelined(64)?;
/// ex.run(async {
///     assert_eq!(tx.send("a".to_owned()).await?, 0);
///     assert_eq!(tx.send("bcd".to_owned()).await?, 1);
///     tx.close().await;
///     assert_eq!(replies.next().await.map(|(t, r)| (t, r.ok())), Some((0, Some(1))));
///     assert_eq!(replies.next().await.map(|(t, r)| (t, r.ok())), Some((1, Some(3))));
///     assert!(replies.next().await.is_none());
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .await
/// # }).unwrap();
/// ```
pub struct PipelinedSender<T, R> {
    requests: Sender<Request<T, R>>,
    bell: Doorbell,
    /// `None` once closed.
    answer_to: Option<Sender<Answer<T, R>>>,
    credits: Receiver<Credit<T, R>>,
    /// The chunk being filled, with the credit it holds.
    current: Option<Credit<T, R>>,
    /// The ticket of the first item of `current`.
    first: u64,
    chunk: usize,
    next_ticket: u64,
    /// A chunk whose flush was given up half way (its future dropped) comes
    /// back through here, to be sent again.
    unsent_to: Sender<Unsent<T, R>>,
    unsent: Receiver<Unsent<T, R>>,
    /// Set while a send flushes a chunk whose last item is its own, which
    /// has no ticket until the send returns.
    sending: bool,
    /// Raised once the [`Replies`] are dropped: no reply can be read, so
    /// sends give their items back.
    gone: Arc<AtomicBool>,
}

impl<T, R> PipelinedSender<T, R> {
    /// Sends `item` and gives its ticket, without waiting for the reply.
    ///
    /// Waits only for room in the window. If the consumer has ended, or the
    /// [`Replies`] were dropped so that no reply could be read, the item
    /// comes back in [`SendError::Closed`] and takes no ticket.
    ///
    /// Dropping the future before it returns gives up the item, which then
    /// takes no ticket; the items sent before it are not affected.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// let (mut tx, _replies) = p.pipelined(8)?;
    /// assert_eq!(ex.run(tx.send(5)).await?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn send(&mut self, item: T) -> Result<u64, SendError<T>> {
        match self.push(item) {
            Ok(ticket) => Ok(ticket),
            Err(item) => self.send_slow(item).await,
        }
    }

    /// The fast path: adds the item to the chunk being filled when that
    /// needs no wait and no flush. Gives the item back otherwise.
    #[inline]
    fn push(&mut self, item: T) -> Result<u64, T> {
        let Some((items, _)) = &mut self.current else {
            return Err(item);
        };
        // A chunk is sent when it fills, or as soon as the consumer has
        // nothing queued, so that a lone item is not held back. The queue is
        // looked at when the chunk holds 0, 1, 3, 7, ... items: often while
        // it is small, rarely once it is large.
        let len = items.len();
        if len + 1 >= self.chunk
            || ((len + 1).is_power_of_two() && self.requests.is_empty())
            || self.gone.load(Ordering::Relaxed)
        {
            return Err(item);
        }
        items.push(item);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        Ok(ticket)
    }

    /// The slow path: waits for a credit, then flushes if needed.
    async fn send_slow(&mut self, item: T) -> Result<u64, SendError<T>> {
        self.take_back_unsent();
        if self.answer_to.is_none()
            || self.requests.is_closed()
            || self.gone.load(Ordering::Relaxed)
        {
            return Err(SendError::Closed(item));
        }
        if self.current.is_none() {
            match self.credits.recv().await {
                Ok(credit) => {
                    self.current = Some(credit);
                    self.first = self.next_ticket;
                }
                Err(_) => return Err(SendError::Closed(item)),
            }
        }
        let Some((items, _)) = &mut self.current else {
            return Err(SendError::Closed(item));
        };
        items.push(item);
        let full = items.len() >= self.chunk;
        if full || self.requests.is_empty() {
            self.sending = true;
            let sent = self.flush_chunk().await;
            self.sending = false;
            if !sent {
                // The consumer is gone. The other items of the chunk come
                // back through the replies; this one comes back here,
                // without a ticket.
                return match self.take_back_last() {
                    Some(item) => Err(SendError::Closed(item)),
                    None => Err(SendError::Cancelled),
                };
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        Ok(ticket)
    }

    /// Sends the partial chunk now, waiting for room in the consumer's
    /// queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// let (mut tx, _replies) = p.pipelined(8)?;
    /// ex.run(async { tx.send(1).await?; tx.flush().await; Ok::<_, flowgate::SendError<u8>>(()) }).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn flush(&mut self) {
        self.take_back_unsent();
        if !self.flush_chunk().await {
            self.return_unsent();
        }
    }

    /// Flushes, then closes this sender: once every reply has been read,
    /// the [`Replies`] stream ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    ///
    /// # futures_lite::future::block_on(async {
    /// let ex = smol::LocalExecutor::new();
    /// let (p, _c) = flowgate::Consumer::new((), |_: &mut (), x: u8| x).spawn_local(&ex);
    /// let (tx, replies) = p.pipelined(8)?;
    /// ex.run(tx.close()).await;
    /// assert_eq!(ex.run(replies.count()).await, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(mut self) {
        self.take_back_unsent();
        if !self.flush_chunk().await {
            self.return_unsent();
        }
        self.answer_to = None;
    }

    /// Takes back a chunk whose flush was given up half way, as the chunk
    /// being filled. If the flush was a send's, the send's own item, which
    /// never got its ticket, is given up with the send.
    fn take_back_unsent(&mut self) {
        let sending = std::mem::take(&mut self.sending);
        if let Ok((mut items, replies)) = self.unsent.try_recv() {
            if sending {
                items.pop();
            }
            debug_assert!(self.current.is_none(), "a flush takes the chunk it sends");
            self.current = Some((items, replies));
        }
    }

    /// After a failed flush: answers the unsent chunk as returned.
    fn return_unsent(&mut self) {
        if let Some((items, replies)) = self.current.take() {
            self.return_through_replies(items, replies);
        }
    }

    /// Sends the chunk being filled. Returns `false` if the consumer is
    /// gone, in which case the chunk has been answered as returned.
    async fn flush_chunk(&mut self) -> bool {
        let Some(answer_to) = &self.answer_to else {
            return false;
        };
        let Some((items, replies)) = self.current.take() else {
            return true;
        };
        if items.is_empty() {
            self.current = Some((items, replies));
            return true;
        }
        // The replies are read through the answer channel itself, so the
        // request names no waiter. If this future is dropped before the
        // request is queued, its items come back through `unsent`.
        let request = Request::new(items, replies, answer_to.clone(), None)
            .ticketed(self.first, Some(self.unsent_to.clone()));
        match self.requests.send(request).await {
            Ok(()) => {
                self.bell.ring();
                true
            }
            Err(async_channel::SendError(request)) => {
                let (items, replies) = request.into_parts();
                self.current = Some((items, replies));
                false
            }
        }
    }

    /// After a failed flush: takes this send's item back, and answers the
    /// rest of the chunk as returned, through the replies.
    fn take_back_last(&mut self) -> Option<T> {
        let (mut items, replies) = self.current.take()?;
        let last = items.pop();
        self.return_through_replies(items, replies);
        last
    }

    /// Answers `items` as never delivered, in the replies stream. The
    /// credit they hold guarantees room for the answer.
    fn return_through_replies(&mut self, items: Vec<T>, replies: Vec<R>) {
        if let Some(answer_to) = &self.answer_to {
            let _ = answer_to.try_send(Answer {
                first: self.first,
                replies,
                failed: Vec::new(),
                failure: Failure::Cancelled,
                lost: 0,
                returned: items,
            });
        }
    }
}

impl<T, R> Drop for PipelinedSender<T, R> {
    fn drop(&mut self) {
        self.take_back_unsent();
        // Deliver a partial chunk if the queue has room; otherwise give its
        // items back through the replies. Either way each one is answered.
        if let (Some((items, replies)), Some(answer_to)) = (self.current.take(), &self.answer_to) {
            if !items.is_empty() {
                let request = Request::new(items, replies, answer_to.clone(), None)
                    .ticketed(self.first, None);
                if let Err(err) = self.requests.try_send(request) {
                    let (items, replies) = err.into_inner().into_parts();
                    self.return_through_replies(items, replies);
                }
            }
        }
        release(&mut self.requests, &self.bell);
    }
}

impl<T, R> fmt::Debug for PipelinedSender<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelinedSender")
            .field("sent", &self.next_ticket)
            .field("chunk", &self.chunk)
            .field("closed", &self.answer_to.is_none())
            .finish()
    }
}
