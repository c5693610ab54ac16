//! The reply sink of a service: the last stage, which collects each input's
//! outputs and answers its request once every input of the request is done.

use std::sync::Arc;

use async_channel::Receiver;

use crate::ack::protocol::{Failure, close_and_answer};
use crate::engine::drive::stopped;
use crate::engine::hop::Inlet;
use crate::engine::stage_loop::{Work, run_stage};
use crate::engine::stats::StageStats;
use crate::error::Error;
use crate::service::message::{Msg, ServiceRequest};

/// The sink's end of the request queue. However the sink ends, the
/// requests still queued are answered: their inputs will never arrive.
struct RequestQueue<In, Out>(Receiver<ServiceRequest<In, Out>>);

impl<In, Out> Drop for RequestQueue<In, Out> {
    fn drop(&mut self) {
        close_and_answer(&self.0);
    }
}

/// The work of the reply sink.
struct Reply<In, Out> {
    requests: RequestQueue<In, Out>,
    /// The request whose inputs are arriving, once its first one has.
    current: Option<ServiceRequest<In, Out>>,
    /// The outputs of the input being collected.
    outputs: Vec<Out>,
    stats: Arc<StageStats>,
}

impl<In, Out> Work<Vec<Msg<Out>>> for Reply<In, Out> {
    async fn chunk(&mut self, chunk: &mut Vec<Msg<Out>>) -> Result<(), Error> {
        let n = chunk.len();
        for msg in chunk.drain(..) {
            self.outputs.extend(msg.value);
            if !msg.last {
                continue;
            }
            let mut request = match self.current.take() {
                Some(request) => request,
                // A request is always sent before the inputs it carries, so
                // this fails only once the front is gone for good.
                None => self.requests.0.recv().await.map_err(|_| stopped())?,
            };
            if request.reply(std::mem::take(&mut self.outputs)) {
                request.answer(Failure::Cancelled);
            } else {
                self.current = Some(request);
            }
        }
        self.stats.count_emitted(n);
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Runs the reply sink on `input`, answering the requests of `requests`.
pub(super) async fn reply_sink<In, Out>(
    input: Inlet<Msg<Out>>,
    requests: Receiver<ServiceRequest<In, Out>>,
    stats: Arc<StageStats>,
) -> Result<(), Error> {
    let mut reply = Reply {
        requests: RequestQueue(requests),
        current: None,
        outputs: Vec::new(),
        stats,
    };
    run_stage(input, &mut reply).await
}
