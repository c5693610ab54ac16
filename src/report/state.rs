//! The states a stage or a pipeline goes through.

use std::fmt;

/// Where a stage, or a whole pipeline, is in its life, as with an asyncio
/// task.
///
/// A pipeline is `Pending` until its first stage starts and `Running` while
/// any stage runs. At the end it is `Done` when every stage finished its
/// input, `Failed` when one failed, and `Cancelled` when it was stopped.
///
/// # Examples
///
/// ```
/// use flowgate::State;
///
/// assert!(!State::Running.is_finished());
/// assert!(State::Cancelled.is_finished());
/// assert_eq!(State::Done.to_string(), "done");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum State {
    /// Built, not started yet.
    Pending = 0,
    /// Started and not finished.
    Running = 1,
    /// Finished its whole input.
    Done = 2,
    /// Stopped before the end of its input.
    Cancelled = 3,
    /// Ended with an error or a panic.
    Failed = 4,
}

impl State {
    pub(crate) fn from_u8(n: u8) -> Option<State> {
        Some(match n {
            0 => State::Pending,
            1 => State::Running,
            2 => State::Done,
            3 => State::Cancelled,
            4 => State::Failed,
            _ => return None,
        })
    }

    /// Whether this is one of the final states: `Done`, `Cancelled` or
    /// `Failed`.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Done | State::Cancelled | State::Failed)
    }

    /// The state of a pipeline whose stages are in `states`.
    pub(crate) fn of_pipeline(states: impl Iterator<Item = State>) -> State {
        let (mut any, mut pending, mut running) = (false, true, false);
        let (mut failed, mut cancelled) = (false, false);
        for state in states {
            any = true;
            pending &= state == State::Pending;
            running |= !state.is_finished();
            failed |= state == State::Failed;
            cancelled |= state == State::Cancelled;
        }
        match () {
            () if !any || pending => State::Pending,
            () if running => State::Running,
            () if failed => State::Failed,
            () if cancelled => State::Cancelled,
            () => State::Done,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
        })
    }
}
