//! How a pipeline is wired: each stage gets its output hop once the next
//! stage is added, and starts on it.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::drive::drive;
use crate::hop::{hop, Inlet, Outlet};
use crate::join::{BoxFuture, StageFuture};
use crate::metrics::Feed;
use crate::run::{Cell, Ctx};
use crate::{Error, Pipeline, DEFAULT_CAPACITY, DEFAULT_CHUNK_LIMIT};

/// Starts a stage once its output hop exists.
pub(crate) type Start<T> = Box<dyn FnOnce(Wired<T>) -> Parts + Send>;

/// A started stage: the future that runs it and owns its state, and any
/// helpers that run beside it as tasks of their own, such as the workers of
/// a parallel stage (already wrapped by [`drive_helper`](crate::drive::drive_helper)).
pub(crate) struct Parts {
    pub(crate) main: BoxFuture<Result<(), Error>>,
    pub(crate) helpers: Vec<StageFuture>,
}

impl Parts {
    pub(crate) fn single(main: BoxFuture<Result<(), Error>>) -> Self {
        Parts {
            main,
            helpers: Vec::new(),
        }
    }
}

/// How the newest stage gets its output hop.
pub(crate) enum Begin<T> {
    /// A stage to start on a new hop.
    Stage(Start<T>),
    /// The hop exists already: this is a branch of a balance, one of the
    /// competing consumers of the hop.
    Wired(Inlet<T>),
    /// A branch of a fan-out stage, which sends into the hop from `cell`:
    /// the hop is made with this head's settings, and its sending side goes
    /// to the fan-out stage through `slot`.
    Branch {
        slot: async_channel::Sender<Outlet<T>>,
        cell: Arc<Cell>,
    },
}

/// What a stage gets when it starts.
pub(crate) struct Wired<T> {
    pub(crate) out: Outlet<T>,
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) cell: Arc<Cell>,
    /// The stage's error policy, if one was set; its type is the stage's.
    pub(crate) policy: Option<Box<dyn Any + Send>>,
    pub(crate) timeout: Option<Duration>,
}

/// The newest stage and the settings of its output hop.
pub(crate) struct Head<T> {
    pub(crate) name: String,
    pub(crate) capacity: usize,
    pub(crate) chunk_limit: usize,
    /// Whether one input may make many outputs.
    pub(crate) expands: bool,
    pub(crate) policy: Option<Box<dyn Any + Send>>,
    pub(crate) timeout: Option<Duration>,
    /// The stages whose output hops feed this one.
    pub(crate) inputs: Vec<Feed>,
    pub(crate) begin: Begin<T>,
    /// A bad setting found when the stage was added, made into an error
    /// with the stage's final name when it is wired.
    pub(crate) invalid: Option<Box<dyn FnOnce(String) -> Error + Send>>,
}

/// The parts of a pipeline once its newest stage is wired to its hop.
pub(crate) struct Wiring<T> {
    pub(crate) stages: Vec<StageFuture>,
    pub(crate) cells: Vec<Arc<Cell>>,
    pub(crate) inlet: Inlet<T>,
    pub(crate) error: Option<Error>,
    pub(crate) ctx: Arc<Ctx>,
}

/// Everything wired so far, without the newest hop's far end.
pub(crate) struct Upstream {
    pub(crate) stages: Vec<StageFuture>,
    pub(crate) cells: Vec<Arc<Cell>>,
    pub(crate) error: Option<Error>,
    pub(crate) ctx: Arc<Ctx>,
}

impl<T> Wiring<T> {
    /// Splits off the newest hop's far end.
    pub(crate) fn split(self) -> (Upstream, Inlet<T>) {
        let Wiring {
            stages,
            cells,
            inlet,
            error,
            ctx,
        } = self;
        let up = Upstream {
            stages,
            cells,
            error,
            ctx,
        };
        (up, inlet)
    }
}

impl Upstream {
    /// Adds `other`'s stages after these, joining its run to this one.
    pub(crate) fn absorb(&mut self, other: Upstream) {
        other.ctx.join(&self.ctx);
        self.stages.extend(other.stages);
        self.cells.extend(other.cells);
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Wires the newest stage to a new hop and adds the stage that `make`
    /// builds on the far side of it. `expands` says whether the stage's
    /// outputs may outnumber, or be fewer than, the inputs it passed on.
    pub(crate) fn chain<U, S2, F, Fut>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, Wired<U>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.chain_parts(kind, expands, move |input, w| {
            Parts::single(Box::pin(make(input, w)))
        })
    }

    /// Like [`chain`](Pipeline::chain), for a stage made of several parts.
    pub(crate) fn chain_parts<U, S2, F>(
        self,
        kind: &'static str,
        expands: bool,
        make: F,
    ) -> Pipeline<U, S2>
    where
        U: Send + 'static,
        F: FnOnce(Inlet<T>, Wired<U>) -> Parts + Send + 'static,
    {
        let (up, mut inlet) = self.wire().split();
        let inputs = vec![inlet.feed()];
        Pipeline::assemble(up, kind, expands, inputs, move |w: Wired<U>| {
            inlet.attach(&w.cell);
            make(inlet, w)
        })
    }

    /// Creates the newest stage's output hop and starts the stage on it.
    pub(crate) fn wire(self) -> Wiring<T> {
        let Pipeline {
            mut stages,
            mut cells,
            head,
            error,
            ctx,
            _newest,
        } = self;
        let mut head = head;
        let error = error.or_else(|| head.check().err()).or_else(|| {
            head.invalid
                .take()
                .map(|invalid| invalid(head.name.clone()))
        });
        // A bad setting has been recorded above; the hop is still made, with
        // a valid size, so the types line up, but the pipeline never runs.
        let (capacity, chunk_limit) = (head.capacity.max(1), head.chunk_limit.max(1));
        let inlet = match head.begin {
            Begin::Wired(inlet) => inlet,
            Begin::Branch { slot, cell } => {
                let (out, inlet) = hop(capacity, chunk_limit, cell);
                // The fan-out stage holds the only receiver, and takes its
                // outlets when it starts.
                let _ = slot.try_send(out);
                inlet
            }
            Begin::Stage(start) => {
                let cell = Cell::new(head.name, head.expands, head.inputs);
                let (out, inlet) = hop(capacity, chunk_limit, Arc::clone(&cell));
                let wired = Wired {
                    out,
                    ctx: Arc::clone(&ctx),
                    cell: Arc::clone(&cell),
                    policy: head.policy,
                    timeout: head.timeout,
                };
                let parts = start(wired);
                stages.push(drive(Arc::clone(&cell), Arc::clone(&ctx), parts.main));
                stages.extend(parts.helpers);
                cells.push(cell);
                inlet
            }
        };
        Wiring {
            stages,
            cells,
            inlet,
            error,
            ctx,
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline whose newest stage is the one `start` makes, after the
    /// stages in `wiring`. The stage is named `kind#N` and fed by `inputs`.
    pub(crate) fn assemble<S, F>(
        up: Upstream,
        kind: &str,
        expands: bool,
        inputs: Vec<Feed>,
        start: F,
    ) -> Pipeline<T, S>
    where
        F: FnOnce(Wired<T>) -> Parts + Send + 'static,
    {
        let name = format!("{kind}#{}", up.cells.len());
        let mut head = Head::new(name, inputs, Begin::Stage(Box::new(start)));
        head.expands = expands;
        Pipeline {
            stages: up.stages,
            cells: up.cells,
            head,
            error: up.error,
            ctx: up.ctx,
            _newest: PhantomData,
        }
    }

    /// A branch of a balance: a pipeline with no stages of its own yet,
    /// whose items come through `inlet`, a hop that already exists.
    pub(crate) fn shared(inlet: Inlet<T>, ctx: Arc<Ctx>) -> Self {
        let name = inlet.from().name.clone();
        Pipeline::headed(Head::new(name, Vec::new(), Begin::Wired(inlet)), ctx)
    }

    /// Branch `name` of the fan-out stage whose counters are `cell`: a
    /// pipeline with no stages of its own yet, whose hop goes to the fan-out
    /// stage through `slot` once it is made.
    pub(crate) fn fan_branch(
        name: String,
        slot: async_channel::Sender<Outlet<T>>,
        cell: Arc<Cell>,
        ctx: Arc<Ctx>,
    ) -> Self {
        Pipeline::headed(
            Head::new(name, Vec::new(), Begin::Branch { slot, cell }),
            ctx,
        )
    }

    fn headed(head: Head<T>, ctx: Arc<Ctx>) -> Self {
        Pipeline {
            stages: Vec::new(),
            cells: Vec::new(),
            head,
            error: None,
            ctx,
            _newest: PhantomData,
        }
    }
}

impl<T> Head<T> {
    pub(crate) fn new(name: String, inputs: Vec<Feed>, begin: Begin<T>) -> Self {
        Head {
            name,
            inputs,
            capacity: DEFAULT_CAPACITY,
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            expands: false,
            policy: None,
            timeout: None,
            begin,
            invalid: None,
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.capacity == 0 {
            return Err(Error::ZeroCapacity {
                stage: self.name.clone(),
            });
        }
        if self.chunk_limit == 0 {
            return Err(Error::ZeroChunkLimit {
                stage: self.name.clone(),
            });
        }
        Ok(())
    }
}
