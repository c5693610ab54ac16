//! The newest stage of a pipeline under construction, waiting for its output
//! hop: the hop is made, with the head's settings, once the next stage is
//! added, and only then does the stage start on it.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::hop::{Inlet, Outlet};
use crate::engine::run::RunState;
use crate::engine::stats::{InputHop, StageStats};
use crate::error::Error;
use crate::limits::{DEFAULT_CAPACITY, DEFAULT_CHUNK_LIMIT};
use crate::pipeline::graph::StageTasks;

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
}

/// Where the newest stage's items go once its output hop is made.
pub(super) enum OutputHop<T> {
    /// A stage to start on a new hop.
    New(StartStage<T>),
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
    pub(crate) name: String,
    pub(crate) capacity: usize,
    pub(crate) chunk_limit: usize,
    /// Whether one input may make any number of outputs.
    pub(crate) expands: bool,
    pub(crate) policy: Option<Box<dyn Any + Send>>,
    pub(crate) timeout: Option<Duration>,
    /// The hops that feed this stage.
    pub(crate) inputs: Vec<InputHop>,
    pub(crate) output: OutputHop<T>,
    /// A bad setting found when the stage was added, made into an error
    /// with the stage's final name when it is wired.
    pub(crate) invalid: Option<Invalid>,
}

impl<T> Head<T> {
    /// A head with the default settings.
    pub(crate) fn new(name: String, inputs: Vec<InputHop>, output: OutputHop<T>) -> Self {
        Head {
            name,
            inputs,
            capacity: DEFAULT_CAPACITY,
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            expands: false,
            policy: None,
            timeout: None,
            output,
            invalid: None,
        }
    }

    /// The error of a bad setting of this head, if it has one.
    pub(crate) fn error(&mut self) -> Option<Error> {
        let stage = self.name.clone();
        if self.capacity == 0 {
            return Some(Error::ZeroCapacity { stage });
        }
        if self.chunk_limit == 0 {
            return Some(Error::ZeroChunkLimit { stage });
        }
        self.invalid.take().map(|invalid| invalid(stage))
    }
}
