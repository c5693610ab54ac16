//! Restart after a panic: a stage set to it goes on with its next item
//! after a panic on one, up to a limit of panics, waiting a backoff first,
//! as a supervisor restarts a child.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use futures_lite::FutureExt;
use smol::Timer;

use crate::engine::stage_loop::BeforeWait;
use crate::engine::stats::StageStats;
use crate::error::{Error, panic_message};
use crate::pipeline::builder::Pipeline;
use crate::pipeline::head::StageSetup;
use crate::stages::policy::Backoff;

/// The kinds of stage that can restart after a panic: those that work on
/// one item at a time with a function of the user's.
pub(crate) const RESTARTABLE: [&str; 7] = [
    "map",
    "filter",
    "filter_map",
    "inspect",
    "then",
    "try_map",
    "try_then",
];

/// How often a stage may restart after a panic, and how long it waits
/// before each restart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Restart {
    limit: u32,
    backoff: Backoff,
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Lets the newest stage go on after a panic in its function, up to
    /// `limit` times, waiting `backoff` before each restart, like a
    /// supervisor that restarts a failed child (Akka's `RestartFlow`, an
    /// OTP supervisor).
    ///
    /// The item the function panicked on counts as failed; in a fallible
    /// stage ([`try_map`](Pipeline::try_map),
    /// [`try_then`](Pipeline::try_then)) it goes to the stage's policy as an
    /// [`ItemError::Panicked`](crate::ItemError::Panicked), to be retried,
    /// skipped or dead-lettered as the policy says. The stage then goes on
    /// with the same function: state the function keeps is as the panic
    /// left it. The panic after the `limit`-th restart fails the run with
    /// [`Error::StagePanicked`], as any panic does without this setting.
    /// The report counts the restarts in
    /// [`restarts`](crate::StageReport::restarts).
    ///
    /// With this setting the stage calls its function under a panic guard
    /// one item at a time, which costs a few nanoseconds an item. Only
    /// `map`, `filter`, `filter_map`, `inspect`, `then`, `try_map` and
    /// `try_then` can restart; set on any other stage, the run fails with
    /// [`Error::CannotRestart`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::Backoff;
    /// use std::time::Duration;
    ///
    /// let job = flowgate::from_iter(0..10u32)
    ///     .map(|x| if x % 4 == 3 { panic!("bad item {x}") } else { x })
    ///     .name("fragile")
    ///     .restart_on_panic(2, Backoff::fixed(Duration::ZERO))
    ///     .collect::<Vec<_>>();
    /// let control = job.control();
    /// assert_eq!(job.run()?, [0, 1, 2, 4, 5, 6, 8, 9]);
    /// let fragile = control.report().stage("fragile").cloned().unwrap();
    /// assert_eq!((fragile.restarts, fragile.failed), (2, 2));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn restart_on_panic(self, limit: u32, backoff: Backoff) -> Self {
        let restart = Restart { limit, backoff };
        if !RESTARTABLE.contains(&self.newest_kind()) {
            let kind = self.newest_kind();
            return self.reject_newest(move |stage| Error::CannotRestart { stage, kind });
        }
        match backoff.check(self.newest_name()) {
            Ok(()) => self.set_restart(Box::new(restart)),
            Err(err) => self.fail(err),
        }
    }
}

/// What a restartable stage needs to go on after a panic: its setting and
/// its stats, which count the restarts.
pub(crate) struct Restarter {
    restart: Restart,
    stats: Arc<StageStats>,
}

impl Restarter {
    /// The restarter of the stage set up by `setup`, if it was set to
    /// restart.
    pub(crate) fn of<O>(setup: &mut StageSetup<O>) -> Option<Self> {
        let restart = setup.restart.take()?.downcast::<Restart>().ok()?;
        Some(Restarter {
            restart: *restart,
            stats: Arc::clone(&setup.stats),
        })
    }

    /// Counts a panic, and waits out the backoff before the stage goes
    /// on, after `out` has got ready to wait; a panic past the limit fails
    /// the stage with [`Error::StagePanicked`].
    pub(crate) async fn after_panic(
        &self,
        message: String,
        out: &mut impl BeforeWait,
    ) -> Result<(), Error> {
        let restarts = self.stats.count_restart();
        if restarts > u64::from(self.restart.limit) {
            return Err(Error::StagePanicked {
                stage: self.stats.name().to_owned(),
                message,
            });
        }
        let wait = self
            .restart
            .backoff
            .delay(u32::try_from(restarts).unwrap_or(u32::MAX));
        if !wait.is_zero() {
            out.before_wait().await?;
            Timer::after(wait).await;
        }
        Ok(())
    }
}

/// Calls `f` under a panic guard: its value, or the panic's message.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)
}

/// Awaits `fut` under a panic guard: its output, or the panic's message.
pub(crate) async fn guarded_async<R>(fut: impl Future<Output = R>) -> Result<R, String> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(panic_message)
}
