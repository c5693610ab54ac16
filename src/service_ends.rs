//! The two ends of a service: the front that takes producers' requests, and
//! the reply sink that answers them.

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::ack::{close_and_answer, Failure, Inbox};
use crate::hop::{Inlet, Outlet};
use crate::run::{Cell, Signal};
use crate::service::{Msg, Routes};
use crate::stage::{Batches, Budget};

/// The first stage: takes requests from producers, sends their routing to
/// the reply sink, and their items down the pipeline.
///
/// Shutdown closes the producers' queue: the requests already queued are
/// still handled, later sends get their items back.
pub(crate) async fn front<In, Out>(
    inbox: Inbox<In, Vec<Out>>,
    out: Outlet<Msg<In>>,
    routes: Sender<Routes<In, Out>>,
    shutdown: &Signal,
) {
    let mut out = out.into_source();
    let mut budget = Budget::new();
    loop {
        let close = async {
            shutdown.wait().await;
            // Closed once; the queue then drains and `recv` ends.
            inbox.requests.close();
            std::future::pending().await
        };
        let Some(mut request) = inbox.recv().or(close).await else {
            break;
        };
        let items = request.take_items();
        let n = items.len();
        // The routing goes first, so the sink knows whom each input is for
        // by the time the input reaches it.
        if let Err(async_channel::SendError(mut request)) = routes.send(request).await {
            // The sink has ended: these items were never handed on.
            request.untake(items);
            return;
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

/// The sink's end of the route queue. However the sink ends, the routes
/// still queued are answered: their inputs will never arrive.
struct RouteQueue<In, Out>(Receiver<Routes<In, Out>>);

impl<In, Out> Drop for RouteQueue<In, Out> {
    fn drop(&mut self) {
        close_and_answer(&self.0);
    }
}

/// The last stage: collects each input's outputs and answers its request
/// once every input of the request is done.
pub(crate) async fn reply_sink<In, Out>(
    input: Inlet<Msg<Out>>,
    routes: Receiver<Routes<In, Out>>,
    cell: &Cell,
) {
    let routes = RouteQueue(routes);
    let routes = &routes.0;
    let mut current: Option<Routes<In, Out>> = None;
    let mut outputs = Vec::new();
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for msg in chunk.drain(..) {
                outputs.extend(msg.value);
                if !msg.last {
                    continue;
                }
                let mut request = match current.take() {
                    Some(request) => request,
                    // Routing is always sent before the input it routes.
                    None => match routes.recv().await {
                        Ok(request) => request,
                        Err(_) => return,
                    },
                };
                if request.reply(std::mem::take(&mut outputs)) {
                    request.answer(Failure::Cancelled);
                } else {
                    current = Some(request);
                }
            }
            Cell::add(&cell.emitted, n);
            next = batches.next(chunk, n);
        }
        batches.end().await;
    }
}
