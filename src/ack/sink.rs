//! A producer as a [`futures_sink::Sink`] of items (the `sink` feature):
//! each item sent as with [`Producer::send`], its reply dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_sink::Sink;

use crate::ack::producer::Producer;
use crate::error::SendError;

/// The send in progress.
type Sending<T> = Pin<Box<dyn Future<Output = Result<(), SendError<T>>> + Send>>;

/// A [`Producer`] as a [`Sink`] of items, made by
/// [`Producer::into_sink`]: each item is sent as with
/// [`send`](Producer::send), one at a time, and its reply is dropped.
/// Closing the sink closes the consumer, as [`Producer::close`] does.
///
/// For the replies, use [`Producer::send`]; for speed, pipelined sends
/// ([`Producer::pipelined`]). This is for code written against `Sink`,
/// such as `StreamExt::forward`.
///
/// # Examples
///
/// ```
/// use futures::{SinkExt, StreamExt};
///
/// let ex = smol::LocalExecutor::new();
/// let (producer, consumer) =
///     flowgate::Consumer::new(0u32, |sum: &mut u32, x: u32| { *sum += x; *sum }).spawn_local(&ex);
/// let total = futures_lite::future::block_on(ex.run(async {
///     let mut sink = producer.into_sink();
///     futures::stream::iter(1..=4u32).map(Ok).forward(&mut sink).await.unwrap();
///     sink.close().await.unwrap();
///     consumer.await
/// }))?;
/// assert_eq!(total, 10);
/// # Ok::<(), flowgate::Error>(())
/// ```
pub struct ProducerSink<T, R> {
    producer: Producer<T, R>,
    sending: Option<Sending<T>>,
}

impl<T, R> Producer<T, R> {
    /// This producer as a [`futures_sink::Sink`] of items, each sent as
    /// with [`send`](Producer::send) and its reply dropped (the `sink`
    /// feature). See [`ProducerSink`].
    pub fn into_sink(self) -> ProducerSink<T, R> {
        ProducerSink::new(self)
    }
}

// Nothing in the sink is ever pinned in place: the send in progress is
// boxed, the producer only moved.
impl<T, R> Unpin for ProducerSink<T, R> {}

impl<T, R> ProducerSink<T, R> {
    fn new(producer: Producer<T, R>) -> Self {
        ProducerSink {
            producer,
            sending: None,
        }
    }

    /// Drives the send in progress, if any, to its end.
    fn poll_sending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        let Some(sending) = &mut self.sending else {
            return Poll::Ready(Ok(()));
        };
        let done = sending.as_mut().poll(cx);
        if done.is_ready() {
            self.sending = None;
        }
        done
    }

    /// The producer back; a send in progress is given up, as when a
    /// `send` future is dropped.
    pub fn into_inner(self) -> Producer<T, R> {
        self.producer
    }
}

impl<T, R> Sink<T> for ProducerSink<T, R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    type Error = SendError<T>;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_sending(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        // A producer of its own for the send, so that the future owns
        // what it uses.
        let mut producer = self.producer.clone();
        self.sending = Some(Box::pin(async move { producer.send(item).await.map(drop) }));
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_sending(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.poll_sending(cx) {
            Poll::Ready(Ok(())) => {
                self.producer.close();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T, R> fmt::Debug for ProducerSink<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerSink")
            .field("producer", &self.producer)
            .field("sending", &self.sending.is_some())
            .finish()
    }
}
