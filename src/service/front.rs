//! The front of a service: the source stage that takes producers'
//! requests, sends each request to the reply sink, and its items down the
//! pipeline.

use async_channel::{Sender, TrySendError};
use futures_lite::FutureExt;

use crate::ack::protocol::Inbox;
use crate::engine::hop::Outlet;
use crate::engine::run::Signal;
use crate::engine::stage_loop::Budget;
use crate::service::message::{Msg, ServiceRequest};

/// The first stage: takes requests from producers, sends their request to
/// the reply sink, and their items down the pipeline.
///
/// Shutdown closes the producers' queue: the requests already queued are
/// still handled, later sends get their items back.
pub(crate) async fn front<In, Out>(
    inbox: Inbox<In, Vec<Out>>,
    out: Outlet<Msg<In>>,
    to_sink: Sender<ServiceRequest<In, Out>>,
    shutdown: &Signal,
) {
    let mut out = out.into_source();
    let mut budget = Budget::new();
    loop {
        let close = async {
            shutdown.wait().await;
            // Closed once; the queue then drains and `recv` ends.
            inbox.close();
            std::future::pending().await
        };
        let Some(mut request) = inbox.recv().or(close).await else {
            break;
        };
        let items = request.take_items();
        let n = items.len();
        // The request goes first, so the sink knows whom each input is for
        // by the time the input reaches it. If the sink's request queue is
        // full, the sink is waiting for the items of requests already
        // queued: hand those on before waiting for room, or both would wait
        // for ever.
        let request = match to_sink.try_send(request) {
            Ok(()) => None,
            Err(TrySendError::Full(request)) => Some(request),
            Err(TrySendError::Closed(mut request)) => {
                request.untake(items);
                return;
            }
        };
        if let Some(mut request) = request {
            if out.flush().await.is_err() {
                request.untake(items);
                return;
            }
            if let Err(async_channel::SendError(mut request)) = to_sink.send(request).await {
                // The sink has ended: these items were never handed on.
                request.untake(items);
                return;
            }
        }
        let mut items = items.into_iter().map(|value| Msg {
            value: Some(value),
            last: true,
        });
        while out.fill(items.by_ref()) {
            if out.flush().await.is_err() {
                return;
            }
        }
        // Flush once no more requests are waiting, or before yielding.
        let spent = budget.spend(n);
        if (spent || inbox.requests.is_empty()) && out.flush().await.is_err() {
            return;
        }
        budget.yield_if_spent().await;
    }
    let _ = out.flush().await;
}
