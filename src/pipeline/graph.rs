//! The graph under construction: every stage wired so far, their stats, the
//! first configuration error, and the run they will share.
//!
//! One [`Graph`] travels through the builder, from the source to the sink;
//! a merge or a fan-out joins other graphs into it. It is the one place
//! where a stage is registered and where a bad setting is recorded.

use std::sync::Arc;

use crate::engine::drive::{SinkFuture, StageFuture, drive, drive_worker};
use crate::engine::feed::Feed;
use crate::engine::run::RunState;
use crate::engine::stats::StageStats;
use crate::error::Error;

/// The stages wired so far, in pipeline order, and their run.
pub(crate) struct Graph {
    stages: Vec<StageFuture>,
    stats: Vec<Arc<StageStats>>,
    /// The first configuration error: the pipeline will fail with it
    /// instead of running.
    error: Option<Error>,
    run: Arc<RunState>,
}

/// A stage ready to be registered: the future that runs it and owns its
/// state, and any workers that run beside it as tasks of their own, such as
/// those of a parallel stage.
pub(crate) struct StageTasks {
    pub(crate) main: StageFuture,
    pub(crate) workers: Vec<WorkerTask>,
    /// The stats of the fused segments that run in the stage's task.
    pub(crate) segments: Vec<Arc<StageStats>>,
}

/// A worker of a stage, not yet driven: its future, which ends when the
/// worker has no more work.
pub(crate) type WorkerTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl StageTasks {
    /// A stage that is one future, with no workers.
    pub(crate) fn single(main: StageFuture) -> Self {
        StageTasks {
            main,
            workers: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// A stage that is one future, the one `make` builds on `feed`, its
    /// input, counted in `stats`, the stage's: the fused segments of the
    /// feed run in the stage's task.
    pub(crate) fn fed<T, Fut>(
        mut feed: Feed<T>,
        stats: &Arc<StageStats>,
        make: impl FnOnce(Feed<T>) -> Fut,
    ) -> Self
    where
        Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
    {
        let segments = feed.segments();
        feed.attach(stats);
        StageTasks {
            segments,
            ..StageTasks::single(Box::pin(make(feed)))
        }
    }
}

impl Graph {
    /// An empty graph for a new run.
    pub(crate) fn new() -> Self {
        Graph {
            stages: Vec::new(),
            stats: Vec::new(),
            error: None,
            run: RunState::new(),
        }
    }

    /// An empty graph that joins `run`, for a branch of a fan-out.
    pub(crate) fn joining(run: &Arc<RunState>) -> Self {
        Graph {
            stages: Vec::new(),
            stats: Vec::new(),
            error: None,
            run: Arc::clone(run),
        }
    }

    /// The run this graph's stages will share.
    pub(crate) fn run(&self) -> &Arc<RunState> {
        &self.run
    }

    /// The name for a new stage of kind `kind`: `kind#N`, N its position.
    pub(crate) fn name_for(&self, kind: &str) -> String {
        format!("{kind}#{}", self.stats.len())
    }

    /// How many stages have been registered.
    pub(crate) fn len(&self) -> usize {
        self.stats.len()
    }

    /// Records a configuration error; the first one wins.
    pub(crate) fn fail(&mut self, err: Error) {
        self.error.get_or_insert(err);
    }

    /// Registers a stage: its stats, and its tasks, driven under its name.
    pub(crate) fn add_stage(&mut self, stats: Arc<StageStats>, tasks: StageTasks) {
        let run = &self.run;
        // A stage released by the stages after it ends done, with `()`.
        let main = drive(
            Arc::clone(&stats),
            tasks.segments,
            Arc::clone(run),
            || Some(()),
            tasks.main,
        );
        self.stages.push(main);
        self.stages.extend(
            tasks
                .workers
                .into_iter()
                .map(|work| drive_worker(stats.name().to_owned(), Arc::clone(run), work)),
        );
        self.stats.push(stats);
    }

    /// Registers a fused segment, which runs in the task of the stage
    /// after it: its stats only.
    pub(crate) fn add_segment(&mut self, stats: Arc<StageStats>) {
        self.stats.push(stats);
    }

    /// Registers the sink, whose future is `sink`, with the fused segments
    /// whose stats are `segments` in its task, and gives it driven.
    pub(crate) fn add_sink<O: 'static>(
        &mut self,
        stats: Arc<StageStats>,
        segments: Vec<Arc<StageStats>>,
        sink: SinkFuture<O>,
    ) -> SinkFuture<O> {
        let driven = drive(
            Arc::clone(&stats),
            segments,
            Arc::clone(&self.run),
            || None,
            sink,
        );
        self.stats.push(stats);
        driven
    }

    /// Registers the end of an output stream, which the stream drives
    /// itself.
    pub(crate) fn add_stream_end(&mut self, stats: Arc<StageStats>) {
        self.stats.push(stats);
    }

    /// Adds `other`'s stages after these, joining its run to this one.
    pub(crate) fn absorb(&mut self, other: Graph) {
        other.run.join(&self.run);
        self.stages.extend(other.stages);
        self.stats.extend(other.stats);
        if let Some(err) = other.error {
            self.fail(err);
        }
    }

    /// Ends the building: records every stage's stats in the run, and gives
    /// the stages to run, or the configuration error that stops the run.
    /// The run given is the root one: after a merge, the graph's own run may
    /// have joined another.
    pub(crate) fn finish(self) -> (Result<Vec<StageFuture>, Error>, Arc<RunState>) {
        let run = self.run.root();
        run.set_stages(self.stats);
        match self.error {
            Some(err) => (Err(err), run),
            None => (Ok(self.stages), run),
        }
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("stages", &self.stats.len())
            .field("error", &self.error)
            .finish()
    }
}
