//! The reply sink of a service: the last stage. It keeps the outputs of
//! each input, by the input's acknowledgement, and answers a request once
//! the acknowledgements of all its inputs are final.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;

use crate::ack::fate::{Fate, Outcome, Outcomes, Tell};
use crate::ack::protocol::{Failure, Request};
use crate::engine::feed::Feed;
use crate::engine::hop::{Chunk, Tagging};
use crate::engine::stage_loop::Budget;
use crate::engine::stats::StageStats;
use crate::error::Error;

/// A request whose inputs' fates are all final, on its way to the sink.
pub(super) struct Completed<In, Out> {
    id: u64,
    request: Request<In, Vec<Out>>,
    outcomes: Outcomes,
}

/// What a request's group tells once its inputs' fates are final: the
/// request goes to the sink, to be answered. If the sink has gone, with the
/// outputs it held, the request is answered here: inputs that made no
/// output get their empty reply, or their failure, and the rest are
/// cancelled.
pub(super) struct ToSink<In, Out> {
    pub(super) id: u64,
    pub(super) request: Request<In, Vec<Out>>,
    pub(super) done: Sender<Completed<In, Out>>,
}

impl<In: Send, Out: Send> Tell for ToSink<In, Out> {
    fn tell(self: Box<Self>, outcomes: Outcomes) {
        let ToSink { id, request, done } = *self;
        // The front holds a permit for every request in flight, and the
        // channel has room for as many, so this fails only once the sink
        // has gone.
        if let Err(err) = done.try_send(Completed {
            id,
            request,
            outcomes,
        }) {
            let Completed {
                request, outcomes, ..
            } = err.into_inner();
            answer(request, outcomes, None);
        }
    }
}

/// What the sink waits for.
enum Arrival<In, Out> {
    Chunk(Option<Chunk<Out>>),
    Completed(Option<Completed<In, Out>>),
}

/// Hashes a request's id, a number the front counts up: one multiply
/// spreads consecutive ids over the table, where a general hash would cost
/// more than the rest of an output's way through the sink.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The outputs of each input of a request, by input.
type Outputs<Out> = Vec<Vec<Out>>;

/// The state of the reply sink.
struct Replier<In, Out> {
    /// The outputs that have come, by request and by input, but for the
    /// request of the latest output, kept at hand in `latest`: outputs come
    /// in runs from one request.
    outputs: HashMap<u64, Outputs<Out>, BuildHasherDefault<IdHasher>>,
    latest: Option<(u64, Outputs<Out>)>,
    /// Gives a request's permit back to the front once it is answered.
    permits: Sender<()>,
    stats: Arc<StageStats>,
    _requests: std::marker::PhantomData<fn(In)>,
}

impl<In, Out> Replier<In, Out> {
    /// Keeps each output of `chunk` for its input's request, and lets go
    /// of its tag: the output is delivered. It counts as handed on once it
    /// is in a reply.
    fn take(&mut self, mut chunk: Chunk<Out>) -> Chunk<Out> {
        match chunk.take_tagging() {
            Some(Tagging::Runs(runs)) => {
                let mut items = chunk.items.drain(..);
                for run in runs {
                    let items = items.by_ref().take(run.len());
                    match run.origin(0) {
                        Some((id, start)) => {
                            let inputs = self.outputs_of(id, run.group_len());
                            for (k, output) in items.enumerate() {
                                inputs[start + k].push(output);
                            }
                        }
                        // Outputs with no acknowledgement (from a pipeline
                        // merged in) answer no one.
                        None => items.for_each(drop),
                    }
                    run.resolve_all(Fate::Delivered);
                }
            }
            Some(Tagging::Each(tags)) => {
                for (output, tag) in chunk.items.drain(..).zip(tags) {
                    if let Some((id, index, len)) = tag.origin() {
                        self.outputs_of(id, len)[index].push(output);
                    }
                    tag.resolve(Fate::Delivered);
                }
            }
            None => chunk.items.clear(),
        }
        chunk
    }

    /// The outputs kept for request `id`, of `len` inputs.
    #[inline]
    fn outputs_of(&mut self, id: u64, len: usize) -> &mut Outputs<Out> {
        if self.latest.as_ref().is_none_or(|(latest, _)| *latest != id) {
            let outputs = self
                .outputs
                .remove(&id)
                .unwrap_or_else(|| (0..len).map(|_| Vec::new()).collect());
            if let Some((previous, kept)) = self.latest.replace((id, outputs)) {
                self.outputs.insert(previous, kept);
            }
        }
        match &mut self.latest {
            Some((_, outputs)) => outputs,
            None => unreachable!("set just above"),
        }
    }

    /// Answers a request whose inputs are all done: each with its outputs,
    /// or why it has none.
    fn answer(&mut self, completed: Completed<In, Out>) {
        let Completed {
            id,
            request,
            outcomes,
        } = completed;
        let outputs = match self.latest.take_if(|(latest, _)| *latest == id) {
            Some((_, outputs)) => outputs,
            None => self.outputs.remove(&id).unwrap_or_default(),
        };
        let replied = answer(request, outcomes, Some(outputs));
        self.stats.count_emitted(replied);
        let _ = self.permits.try_send(());
    }
}

/// Answers `request`, whose inputs ended as `outcomes` and made `outputs`
/// (one `Vec` per input, if any came; `None` once the sink has gone, with
/// the outputs it held). Gives the number of outputs replied.
fn answer<In, Out>(
    mut request: Request<In, Vec<Out>>,
    outcomes: Outcomes,
    outputs: Option<Vec<Vec<Out>>>,
) -> usize {
    let held = outputs.is_some();
    let mut outputs = outputs.unwrap_or_default().into_iter();
    let mut replied = 0;
    for outcome in outcomes {
        let made = outputs.next().unwrap_or_default();
        match outcome {
            // A delivered input's outputs are lost if the sink has gone.
            Outcome::Delivered if !held => request.fail_one(Failure::Cancelled),
            Outcome::Delivered | Outcome::Filtered => {
                replied += made.len();
                request.reply(made);
            }
            Outcome::Skipped => request.fail_one(Failure::Skipped),
            Outcome::DeadLettered { .. } => request.fail_one(Failure::DeadLettered),
            Outcome::Failed(message) => request.fail_one(Failure::Failed(message)),
            _ => request.fail_one(Failure::Cancelled),
        }
    }
    request.answer(Failure::Cancelled);
    replied
}

/// Runs the reply sink on `input`, answering each request that comes
/// through `completed` with the outputs of its inputs.
pub(super) async fn reply_sink<In, Out>(
    mut input: Feed<Out>,
    completed: Receiver<Completed<In, Out>>,
    permits: Sender<()>,
    stats: Arc<StageStats>,
) -> Result<(), Error> {
    let mut replier = Replier {
        outputs: HashMap::default(),
        latest: None,
        permits,
        stats,
        _requests: std::marker::PhantomData,
    };
    let mut budget = Budget::new();
    loop {
        // Answer what is done first: a producer waits for it.
        while let Ok(done) = completed.try_recv() {
            replier.answer(done);
        }
        let chunk = async { Arrival::Chunk(input.recv().await) };
        let arrival = if completed.is_closed() {
            chunk.await
        } else {
            chunk
                .or(async { Arrival::Completed(completed.recv().await.ok()) })
                .await
        };
        match arrival {
            Arrival::Chunk(Some(chunk)) => {
                let n = chunk.items.len();
                let chunk = replier.take(chunk);
                input.give_back(chunk);
                if budget.spend(n) {
                    budget.yield_if_spent().await;
                }
            }
            Arrival::Chunk(None) => break,
            Arrival::Completed(Some(done)) => replier.answer(done),
            Arrival::Completed(None) => {}
        }
    }
    // The stages before have ended; requests whose inputs were still held
    // somewhere (a worker finishing) are answered as those let go.
    while let Ok(done) = completed.recv().await {
        replier.answer(done);
    }
    Ok(())
}
