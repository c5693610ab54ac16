//! The newest stage of a pipeline under construction, waiting for its output
//! hop: the hop is made, with the head's settings, once the next stage is
//! added, and only then does the stage start on it.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::feed::Feed;
use crate::engine::hop::{Inlet, Outlet, Overflow, hop};
use crate::engine::run::RunState;
use crate::engine::stats::{InputHop, StageStats};
use crate::error::Error;
use crate::limits::{DEFAULT_CAPACITY, DEFAULT_CHUNK_LIMIT};
use crate::pipeline::graph::{Graph, StageTasks};

/// Starts a stage once its output hop exists.
pub(super) type StartStage<T> = Box<dyn FnOnce(StageSetup<T>) -> StageTasks + Send>;

/// Makes the error of a bad setting from the stage's final name.
pub(super) type Invalid = Box<dyn FnOnce(String) -> Error + Send>;

/// What a stage gets when it starts.
pub(crate) struct StageSetup<T> {
    /// Its output hop's sending side.
    pub(crate) out: Outlet<T>,
    pub(crate) run: Arc<RunState>,
    pub(crate) stats: Arc<StageStats>,
    /// The stage's error policy, if one was set; its type is the stage's.
    pub(crate) policy: Option<Box<dyn Any + Send>>,
    /// The stage's time limit per item, if one was set.
    pub(crate) timeout: Option<Duration>,
    /// How the stage restarts after a panic, if it was set to; its type is
    /// `stages::restart::Restart`.
    pub(crate) restart: Option<Box<dyn Any + Send>>,
}

/// A stage that can run fused, inside the task of the stage after it, or
/// as a task of its own.
pub(crate) trait Fusable<T>: Send {
    /// Makes the stage, whose stats are `stats`, a segment of the input of
    /// the stage after it, in `run`: gives that input.
    fn fuse(self: Box<Self>, stats: Arc<StageStats>, run: &Arc<RunState>) -> Feed<T>;

    /// Starts the stage as a task of its own, on its output hop.
    fn start(self: Box<Self>, setup: StageSetup<T>) -> StageTasks;
}

/// Where the newest stage's items go once its output hop is made.
pub(super) enum OutputHop<T> {
    /// A stage to start on a new hop.
    New(StartStage<T>),
    /// A stage that runs fused into the next stage, if that one takes it
    /// and nothing asks for a hop between them, or else like `New`.
    Fusable(Box<dyn Fusable<T>>),
    /// The hop exists already: this is a branch of a balance, one of the
    /// competing receivers of the hop.
    Shared(Inlet<T>),
    /// A branch of a fan-out stage, which sends into the hop from `from`:
    /// the hop is made with this head's settings, and its sending side goes
    /// to the fan-out stage through `slot`.
    FanOut {
        slot: async_channel::Sender<Outlet<T>>,
        from: Arc<StageStats>,
    },
}

/// The newest stage and the settings of its output hop.
pub(super) struct Head<T> {
    name: String,
    /// What the stage does, whatever its name.
    kind: &'static str,
    capacity: usize,
    chunk_limit: usize,
    /// What the stage does when its output hop is full.
    overflow: Overflow,
    /// Whether one input may make any number of outputs.
    expands: bool,
    /// Whether the stage must keep its output hop, never fused into the
    /// next stage: the hop was configured, or a boundary asked for.
    pinned: bool,
    policy: Option<Box<dyn Any + Send>>,
    timeout: Option<Duration>,
    restart: Option<Box<dyn Any + Send>>,
    /// The hops that feed this stage.
    inputs: Vec<InputHop>,
    output: OutputHop<T>,
    /// A bad setting found when the stage was added, made into an error
    /// with the stage's final name when it is wired.
    invalid: Option<Invalid>,
}

impl<T> Head<T> {
    /// A head with the default settings.
    pub(crate) fn new(
        name: String,
        kind: &'static str,
        inputs: Vec<InputHop>,
        output: OutputHop<T>,
    ) -> Self {
        Head {
            name,
            kind,
            inputs,
            capacity: DEFAULT_CAPACITY,
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            overflow: Overflow::Wait,
            expands: false,
            pinned: false,
            policy: None,
            timeout: None,
            restart: None,
            output,
            invalid: None,
        }
    }

    /// Marks the stage as one whose outputs may outnumber, or be fewer
    /// than, the inputs it passed on.
    pub(crate) fn expanding(mut self) -> Self {
        self.expands = true;
        self
    }

    /// The stage's name, which appears in errors and in the report.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_name(&mut self, name: String) {
        self.name = name;
    }

    /// The capacity of the stage's output hop, in items.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.pinned = true;
    }

    /// Keeps the stage's output hop: the stage is never fused into the
    /// next one.
    pub(crate) fn pin(&mut self) {
        self.pinned = true;
    }

    /// The most items the stage sends in one chunk.
    pub(crate) fn chunk_limit(&self) -> usize {
        self.chunk_limit
    }

    pub(crate) fn set_chunk_limit(&mut self, chunk_limit: usize) {
        self.chunk_limit = chunk_limit;
        self.pinned = true;
    }

    /// What the stage does, whatever its name.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    pub(crate) fn set_restart(&mut self, restart: Box<dyn Any + Send>) {
        self.restart = Some(restart);
        self.pinned = true;
    }

    pub(crate) fn set_overflow(&mut self, overflow: Overflow) {
        self.overflow = overflow;
        self.pinned = true;
    }

    /// Records that the stage was set up badly; `invalid` makes the error
    /// from the stage's name, which may still change.
    pub(crate) fn reject(&mut self, invalid: Invalid) {
        self.invalid = Some(invalid);
    }

    /// Sets the stage's error policy and its time limit per item, each
    /// only if given.
    pub(crate) fn configure(
        &mut self,
        policy: Option<Box<dyn Any + Send>>,
        timeout: Option<Duration>,
    ) {
        if policy.is_some() {
            self.policy = policy;
        }
        if timeout.is_some() {
            self.timeout = timeout;
        }
    }

    /// The error of a bad setting of this head, if it has one.
    fn error(&mut self) -> Option<Error> {
        let stage = self.name.clone();
        if self.capacity == 0 {
            return Some(Error::ZeroCapacity { stage });
        }
        if self.chunk_limit == 0 {
            return Some(Error::ZeroChunkLimit { stage });
        }
        self.invalid.take().map(|invalid| invalid(stage))
    }

    /// Gives the stage's output as the input of a stage that can run fused
    /// segments: the stage itself, fused, if it can be and fusion is on,
    /// registered in `graph` as a segment; or else its output hop, as
    /// [`wire`](Head::wire) makes it.
    pub(crate) fn wire_feed(mut self, graph: &mut Graph) -> Feed<T> {
        let fusable = matches!(self.output, OutputHop::Fusable(_));
        if !fusable || self.pinned || !graph.run().root().fuses() {
            return Feed::hop(self.wire(graph));
        }
        if let Some(err) = self.error() {
            graph.fail(err);
        }
        let OutputHop::Fusable(stage) = self.output else {
            unreachable!("checked to be fusable above")
        };
        let stats = StageStats::new(self.name, self.kind, self.expands, self.inputs);
        graph.add_segment(Arc::clone(&stats));
        stage.fuse(stats, graph.run())
    }

    /// Makes the stage's output hop, with this head's settings, and starts
    /// the stage on it, registering it in `graph`; a bad setting is recorded
    /// there. Gives the hop's receiving side.
    pub(crate) fn wire(mut self, graph: &mut Graph) -> Inlet<T> {
        if let Some(err) = self.error() {
            graph.fail(err);
        }
        // A bad setting has been recorded above; the hop is still made, with
        // a valid size, so the types line up, but the pipeline never runs.
        let (capacity, chunk_limit) = (self.capacity.max(1), self.chunk_limit.max(1));
        match self.output {
            OutputHop::Shared(inlet) => inlet,
            OutputHop::FanOut { slot, from } => {
                let (out, inlet) = hop(capacity, chunk_limit, self.overflow, from);
                // The fan-out stage holds the only receiver, and takes its
                // outlets when it starts.
                let _ = slot.try_send(out);
                inlet
            }
            OutputHop::New(_) | OutputHop::Fusable(_) => {
                let stats = StageStats::new(self.name, self.kind, self.expands, self.inputs);
                let (out, inlet) = hop(capacity, chunk_limit, self.overflow, Arc::clone(&stats));
                let setup = StageSetup {
                    out,
                    run: Arc::clone(graph.run()),
                    stats: Arc::clone(&stats),
                    policy: self.policy,
                    timeout: self.timeout,
                    restart: self.restart,
                };
                let tasks = match self.output {
                    OutputHop::New(start) => start(setup),
                    OutputHop::Fusable(stage) => stage.start(setup),
                    _ => unreachable!("matched above"),
                };
                graph.add_stage(stats, tasks);
                inlet
            }
        }
    }
}
