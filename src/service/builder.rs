//! A whole pipeline as a consumer: each input sent in resolves to its final
//! outputs, an end-to-end acknowledgement.
//!
//! Inside, items travel as [`Msg`]s that carry a `last` flag: each input
//! leaves exactly one message flagged `last` behind its outputs, even when a
//! filter drops it (the message then carries no value). The front stage
//! passes each request's routing on a side queue, in order, and the reply
//! sink collects each input's outputs until its `last` message, then
//! answers the request once every input of it is done.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::ack::producer::Producer;
use crate::ack::protocol::{Doorbell, Inbox};
use crate::job::run::Job;
use crate::limits::DEFAULT_CONSUMER_CAPACITY;
use crate::pipeline::builder::Pipeline;
use crate::service::front::front;
use crate::service::message::{Expand, Msg, ServiceRequest};
use crate::service::reply::reply_sink;

/// Opens a pipeline as a service: each input sent through the returned
/// [`Producer`] resolves to that input's outputs from the last stage, in
/// order.
///
/// `build` chains the stages. The reply to an input is a `Vec` of every
/// output it led to: one for a chain of maps, none if a filter dropped it,
/// several if a `flat_map` expanded it. A reply therefore means the input
/// went all the way through.
///
/// Run the returned [`Job`] (spawn it, or await it beside the producer).
/// It ends once every producer is dropped or one calls
/// [`close`](Producer::close). Replies travel back in chunks, so pipelined
/// sends through a service batch end to end.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let (mut producer, job) = flowgate::service(|s| {
///     s.map(|n: u32| n * 10)
///         .filter(|n| *n != 20)
///         .flat_map(|n| [n, n + 1])
/// });
/// let ex = smol::LocalExecutor::new();
/// let running = job.spawn_local(&ex);
/// ex.run(async {
///     assert_eq!(producer.send(1).await?, [10, 11]);
///     assert_eq!(producer.send(2).await?, []); // filtered out
///     drop(producer);
///     running.await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .await
/// # }).unwrap();
/// ```
pub fn service<In, Out, F>(build: F) -> (Producer<In, Vec<Out>>, Job<()>)
where
    In: Send + 'static,
    Out: Send + 'static,
    F: FnOnce(Service<In>) -> Service<Out>,
{
    let (requests, inbox) = async_channel::bounded(DEFAULT_CONSUMER_CAPACITY);
    let (to_sink, from_front) =
        async_channel::bounded::<ServiceRequest<In, Out>>(DEFAULT_CONSUMER_CAPACITY);
    let bell = Doorbell::new();
    let inbox = Inbox {
        requests: inbox,
        bell: bell.clone(),
    };
    let source = Pipeline::source(move |out, run| async move {
        front(inbox, out, to_sink, run.root().shutdown_signal()).await;
        Ok(())
    });
    let built = build(Service { inner: source });
    let job = built.inner.sink("reply", move |input, stats| async move {
        reply_sink(input, from_front, stats).await
    });
    (Producer::new(requests, bell, Arc::from("service")), job)
}

/// A service under construction, whose last stage gives items of type `T`.
/// Made by [`service`]; its stages are those of [`Pipeline`], with the same
/// meaning, and the same settings apply to the newest stage.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let (mut p, job) = flowgate::service(|s| s.map(|x: u8| x + 1).name("inc").capacity(16));
/// let ex = smol::LocalExecutor::new();
/// let _running = job.spawn_local(&ex);
/// assert_eq!(ex.run(p.send(1)).await?, [2]);
/// # Ok::<(), flowgate::SendError<u8>>(())
/// # }).unwrap();
/// ```
#[must_use = "a service is built inside the closure given to `flowgate::service`"]
pub struct Service<T> {
    inner: Pipeline<Msg<T>>,
}

impl<T: Send + 'static> Service<T> {
    /// Names the newest stage. See [`Pipeline::name`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.map(|x: u8| x).name("copy"));
    /// ```
    pub fn name(self, name: impl Into<String>) -> Self {
        Service {
            inner: self.inner.name(name),
        }
    }

    /// Sets the capacity of the hop after the newest stage. See
    /// [`Pipeline::capacity`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.map(|x: u8| x).capacity(8));
    /// ```
    pub fn capacity(self, capacity: usize) -> Self {
        Service {
            inner: self.inner.capacity(capacity),
        }
    }

    /// Sets the newest stage's chunk limit. See [`Pipeline::chunk_limit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.map(|x: u8| x).chunk_limit(8));
    /// ```
    pub fn chunk_limit(self, chunk_limit: usize) -> Self {
        Service {
            inner: self.inner.chunk_limit(chunk_limit),
        }
    }

    /// Adds a stage that transforms each item. See [`Pipeline::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.map(|x: u8| u32::from(x) * 2));
    /// ```
    pub fn map<U, F>(self, mut f: F) -> Service<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        Service {
            inner: self.inner.map(move |msg| Msg {
                value: msg.value.map(&mut f),
                last: msg.last,
            }),
        }
    }

    /// Adds a stage that keeps the items for which `f` is `true`. An input
    /// whose items are all dropped replies with no outputs. See
    /// [`Pipeline::filter`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.filter(|x: &u8| x % 2 == 0));
    /// ```
    pub fn filter<F>(self, mut f: F) -> Service<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.filter_map(move |item| f(&item).then_some(item))
    }

    /// Adds a stage that maps each item to an `Option`, keeping the
    /// `Some`s. See [`Pipeline::filter_map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.filter_map(|x: &str| x.parse::<u8>().ok()));
    /// ```
    pub fn filter_map<U, F>(self, mut f: F) -> Service<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Send + 'static,
    {
        Service {
            inner: self.inner.filter_map(move |msg| {
                let value = msg.value.and_then(&mut f);
                // The `last` marker stays even when its value is dropped.
                (value.is_some() || msg.last).then_some(Msg {
                    value,
                    last: msg.last,
                })
            }),
        }
    }

    /// Adds a stage that turns each item into any number of items. See
    /// [`Pipeline::flat_map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.flat_map(|n: u8| 0..n));
    /// ```
    pub fn flat_map<U, I, F>(self, mut f: F) -> Service<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: Send,
        F: FnMut(T) -> I + Send + 'static,
    {
        Service {
            inner: self.inner.flat_map(move |msg| Expand {
                outputs: msg.value.map(|value| f(value).into_iter().peekable()),
                last: msg.last,
                marker_due: msg.last,
            }),
        }
    }

    /// Adds a stage that calls `f` on each item and passes it on. See
    /// [`Pipeline::inspect`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.inspect(|x: &u8| assert!(*x < 200)));
    /// ```
    pub fn inspect<F>(self, mut f: F) -> Service<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        Service {
            inner: self.inner.inspect(move |msg| {
                if let Some(value) = &msg.value {
                    f(value);
                }
            }),
        }
    }

    /// Adds a stage that maps each item with an async function. See
    /// [`Pipeline::then`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_p, _job) = flowgate::service(|s| s.then(|x: u8| async move { x + 1 }));
    /// ```
    pub fn then<U, Fut, F>(self, mut f: F) -> Service<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        Service {
            inner: self.inner.then(move |msg| {
                let pending = msg.value.map(&mut f);
                async move {
                    let value = match pending {
                        Some(fut) => Some(fut.await),
                        None => None,
                    };
                    Msg {
                        value,
                        last: msg.last,
                    }
                }
            }),
        }
    }
}

impl<T> fmt::Debug for Service<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("pipeline", &self.inner)
            .finish()
    }
}
