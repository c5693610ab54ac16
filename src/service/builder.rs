//! `service`: a whole pipeline as a consumer. Each input sent in resolves
//! to its final outputs, an end-to-end acknowledgement.

use std::sync::Arc;

use crate::ack::producer::Producer;
use crate::ack::protocol::{Doorbell, Inbox};
use crate::job::run::Job;
use crate::limits::DEFAULT_CONSUMER_CAPACITY;
use crate::pipeline::builder::Pipeline;
use crate::service::front::front;
use crate::service::reply::reply_sink;

/// Opens a pipeline as a service: each input sent through the returned
/// [`Producer`] resolves to that input's outputs from the last stage, in
/// order.
///
/// `build` gets the pipeline's source and chains its stages: any stage of
/// [`Pipeline`] works, with the same meaning, parallel and fallible stages,
/// timeouts, batches, fan-out and merge included. The reply to an input is
/// a `Vec` of every output it led to: one for a chain of maps, none if a
/// filter dropped it, several if a `flat_map` expanded it. A reply
/// therefore means the input went all the way through. An input that a
/// fallible stage skipped, dead-lettered or failed on gets
/// [`SendError::Skipped`](crate::SendError::Skipped),
/// [`SendError::DeadLettered`](crate::SendError::DeadLettered) or
/// [`SendError::Failed`](crate::SendError::Failed); one that the run
/// dropped when it stopped gets [`SendError::Cancelled`](crate::SendError::Cancelled).
///
/// Each input is answered once all its outputs have reached the end, so
/// replies come in send order for each producer, even through stages that
/// reorder items (`par_map_unordered`, a `merge`). A stage that combines
/// inputs makes one output of several: a batch made by
/// [`chunks`](Pipeline::chunks) is in the reply of the last input in it,
/// and the inputs before it in the batch reply with no outputs, once the
/// batch has reached the end.
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
///
/// Stages with workers answer many requests at once, each with its own
/// reply:
///
/// ```
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let (producer, job) = flowgate::service(|s| {
///     s.par_then_unordered(8, |ms: u64| async move {
///         smol::Timer::after(Duration::from_millis(ms)).await;
///         ms
///     })
/// });
/// let ex = smol::LocalExecutor::new();
/// let running = job.spawn_local(&ex);
/// let calls: Vec<_> = (1..=8u64)
///     .rev()
///     .map(|ms| {
///         let mut p = producer.clone();
///         ex.spawn(async move { (ms, p.send(ms).await) })
///     })
///     .collect();
/// drop(producer);
/// ex.run(async {
///     for call in calls {
///         let (ms, reply) = call.await;
///         assert_eq!(reply?, [ms]);
///     }
///     running.await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .await
/// # }).unwrap();
/// ```
pub fn service<In, Out, S, F>(build: F) -> (Producer<In, Vec<Out>>, Job<()>)
where
    In: Send + 'static,
    Out: Send + 'static,
    F: FnOnce(Pipeline<In>) -> Pipeline<Out, S>,
{
    let (requests, inbox) = async_channel::bounded(DEFAULT_CONSUMER_CAPACITY);
    let bell = Doorbell::new();
    let inbox = Inbox {
        requests: inbox,
        bell: bell.clone(),
    };
    // A permit for each request in flight, and room for each one's answer
    // to wait for the sink.
    let (permits_back, permits) = async_channel::bounded(DEFAULT_CONSUMER_CAPACITY);
    for _ in 0..DEFAULT_CONSUMER_CAPACITY {
        let _ = permits_back.try_send(());
    }
    let (done, completed) = async_channel::bounded(DEFAULT_CONSUMER_CAPACITY);
    let source = Pipeline::source(move |out, run| async move {
        front(inbox, out, permits, done, run.root().shutdown_signal()).await;
        Ok(())
    });
    let job = build(source).sink_hop("reply", move |input, stats| async move {
        reply_sink(input, completed, permits_back, stats).await
    });
    (Producer::new(requests, bell, Arc::from("service")), job)
}

/// A service under construction: a [`Pipeline`] whose source is the
/// service's front. Made by [`service`], which gives it to the closure that
/// chains the stages; every stage and setting of [`Pipeline`] applies.
///
/// # Examples
///
/// ```
/// use flowgate::Service;
///
/// fn double(s: Service<u32>) -> Service<u32> {
///     s.map(|x| x * 2).name("double")
/// }
///
/// # futures_lite::future::block_on(async {
/// let (mut p, job) = flowgate::service(double);
/// let ex = smol::LocalExecutor::new();
/// let _running = job.spawn_local(&ex);
/// assert_eq!(ex.run(p.send(21)).await?, [42]);
/// # Ok::<(), flowgate::SendError<u32>>(())
/// # }).unwrap();
/// ```
pub type Service<T> = Pipeline<T>;
