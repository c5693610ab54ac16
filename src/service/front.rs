//! The front of a service: the source stage, which takes producers'
//! requests and hands their items on, each with an acknowledgement that
//! brings the request to the reply sink once every item of it is done.

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::ack::fate::Group;
use crate::ack::protocol::Inbox;
use crate::engine::hop::Outlet;
use crate::engine::run::Signal;
use crate::engine::stage_loop::Budget;
use crate::engine::stats::StageStats;
use crate::service::reply::{Completed, ToSink};

/// The first stage: takes requests from producers and hands their items
/// on with their acknowledgements.
///
/// Each request in flight holds one of `permits` until the sink has
/// answered it, which bounds the requests whose answers can be waiting for
/// the sink at once. Before it waits for a permit, the front hands on the
/// items it holds: the sink may be waiting for them to answer the requests
/// that hold the permits.
///
/// Shutdown closes the producers' queue: the requests already queued are
/// still handled, later sends get their items back.
/// Waits for the sink to give back a permit, which is waiting to send:
/// `true` once the sink has ended.
async fn wait_for_permit(permits: &Receiver<()>, stats: &StageStats) -> bool {
    let _waiting = stats.waiting_to_send();
    permits.recv().await.is_err()
}

pub(super) async fn front<In, Out>(
    inbox: Inbox<In, Vec<Out>>,
    out: Outlet<In>,
    permits: Receiver<()>,
    done: Sender<Completed<In, Out>>,
    shutdown: &Signal,
) where
    In: Send + 'static,
    Out: Send + 'static,
{
    let mut out = out.into_source();
    let mut budget = Budget::new();
    let mut next_id = 0u64;
    loop {
        let close = async {
            shutdown.wait().await;
            // Closed once; the queue then drains and `recv` ends.
            inbox.close();
            std::future::pending().await
        };
        // Waiting for producers is waiting for input, not work.
        let received = {
            let _waiting = out.stats().waiting_to_receive();
            inbox.recv().or(close).await
        };
        let Some(mut request) = received else {
            break;
        };
        let waited = permits.try_recv().is_err();
        if waited && (out.flush().await.is_err() || wait_for_permit(&permits, out.stats()).await) {
            // The sink has ended: the request, dropped untaken, gives its
            // items back.
            return;
        }
        let items = request.take_items();
        let n = items.len();
        // One run of tags for the request's items: one reference to its
        // group, however many items.
        let mut tags = Group::told_run(
            n,
            next_id,
            Box::new(ToSink {
                id: next_id,
                request,
                done: done.clone(),
            }),
        );
        next_id += 1;
        let mut items = items.into_iter();
        loop {
            let piece = out.room().min(items.len());
            let run = tags.split_front(piece);
            out.with_runs(vec![run], |out| out.extend(items.by_ref().take(piece)));
            if !out.is_full() {
                break;
            }
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
