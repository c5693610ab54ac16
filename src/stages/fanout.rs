//! Fan-out: `broadcast`, `partition` and `balance`, and how their branches
//! end.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::engine::drive::SinkFuture;
use crate::engine::hop::{Chunk, Inlet, Outlet};
use crate::engine::stage_loop::{Work, run_stage};
use crate::engine::stats::StageStats;
use crate::error::Error;
use crate::job::run::Job;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::StageTasks;
use crate::stages::merge::merge_into;

mod sealed {
    /// Everything built before a fan-out, handed to [`Branch::join`].
    pub struct Before(pub(super) crate::pipeline::graph::Graph);

    impl std::fmt::Debug for Before {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Before").finish_non_exhaustive()
        }
    }

    pub trait Sealed {}
}

/// What the branches of a fan-out end as.
///
/// - [`Pipeline<U>`]: the branches merge again into one pipeline, which
///   goes on with further stages, as [`merge`](crate::merge()) does.
/// - [`Job<O>`]: each branch ends in a sink of its own, and the job gives
///   every sink's output, in branch order.
///
/// Either way the whole graph is one run, with one
/// [`Control`](crate::Control) and one report. The trait is sealed.
pub trait Branch: sealed::Sealed + Sized {
    /// What the fan-out gives once its branches are joined.
    type Joined;

    #[doc(hidden)]
    fn join(before: sealed::Before, branches: Vec<Self>) -> Self::Joined;
}

impl<U> sealed::Sealed for Pipeline<U> {}

impl<U: Send + 'static> Branch for Pipeline<U> {
    type Joined = Pipeline<U>;

    fn join(before: sealed::Before, branches: Vec<Self>) -> Pipeline<U> {
        merge_into(before.0, std::iter::empty(), branches)
    }
}

impl<O> sealed::Sealed for Job<O> {}

impl<O: Send + 'static> Branch for Job<O> {
    type Joined = Job<Vec<O>>;

    fn join(before: sealed::Before, branches: Vec<Self>) -> Job<Vec<O>> {
        let mut graph = before.0;
        let mut sinks = Vec::with_capacity(branches.len());
        let mut deadline: Option<Duration> = None;
        for job in branches {
            let (other, sink, after) = job.into_branch();
            graph.absorb(other);
            sinks.push(sink);
            deadline = match (deadline, after) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Job::from_branches(graph, Box::pin(all_sinks(sinks)), deadline)
    }
}

/// Runs every branch's sink and gives their outputs in branch order, or the
/// first error.
async fn all_sinks<O>(sinks: Vec<SinkFuture<O>>) -> Result<Vec<O>, Error> {
    let mut sinks: Vec<Option<SinkFuture<O>>> = sinks.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<O>> = sinks.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in sinks.iter_mut().zip(&mut outputs) {
            let Some(sink) = slot else { continue };
            match sink.as_mut().poll(cx) {
                Poll::Ready(Ok(value)) => {
                    *output = Some(value);
                    *slot = None;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(outputs.into_iter().flatten().collect())
}

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Sends every item to each of `branches` branches, a clone to each, and
    /// builds branch `i` with `build(i, branch)`.
    ///
    /// The branches either all continue as pipelines, which then merge again
    /// into one, or all end in sinks, giving a job whose output is every
    /// sink's output (see [`Branch`]). A branch's hop has its own capacity:
    /// set it with [`capacity`](Pipeline::capacity) on the branch before
    /// adding its first stage, to absorb bursts. But every branch gets every
    /// item, so in the long run the slowest branch sets the pace of all.
    /// 0 branches gives [`Error::ZeroBranches`].
    ///
    /// # Examples
    ///
    /// ```
    /// let [sum, count] = flowgate::from_iter(1..=4u64)
    ///     .broadcast(2, |i, branch| match i {
    ///         0 => branch.fold(0, |a, x| a + x),
    ///         _ => branch.fold(0, |n, _| n + 1),
    ///     })
    ///     .run()?
    ///     .try_into()
    ///     .unwrap();
    /// assert_eq!((sum, count), (10, 4));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn broadcast<B, F>(self, branches: usize, build: F) -> B::Joined
    where
        T: Clone,
        B: Branch,
        F: FnMut(usize, Pipeline<T>) -> B,
    {
        self.fan_out(
            "broadcast",
            true,
            branches,
            build,
            |input, outs, stats| async move {
                let copied = 0;
                run_stage(
                    input,
                    &mut Broadcast {
                        outs,
                        stats,
                        copied,
                    },
                )
                .await
            },
        )
    }

    /// Sends each item to exactly one of `branches` branches: branch
    /// `key(&item) % branches`. Items with the same key take the same
    /// branch, in order. Branch `i` is built by `build(i, branch)`, as with
    /// [`broadcast`](Pipeline::broadcast).
    ///
    /// # Examples
    ///
    /// ```
    /// let out = flowgate::from_iter(0..10u32)
    ///     .partition(2, |x| *x as usize, |_, branch| branch.collect::<Vec<_>>())
    ///     .run()?;
    /// assert_eq!(out, [vec![0, 2, 4, 6, 8], vec![1, 3, 5, 7, 9]]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn partition<B, K, F>(self, branches: usize, key: K, build: F) -> B::Joined
    where
        B: Branch,
        K: FnMut(&T) -> usize + Send + 'static,
        F: FnMut(usize, Pipeline<T>) -> B,
    {
        self.fan_out(
            "partition",
            false,
            branches,
            build,
            move |input, outs, _| async move {
                run_stage(input, &mut Partition { outs, key }).await
            },
        )
    }

    /// Lets `branches` branches compete for the items: each chunk of items
    /// goes to whichever branch takes it first, so a slow branch takes less.
    /// The branches share this stage's output hop, so there is no stage in
    /// between; size that hop before the balance, as
    /// [`capacity`](Pipeline::capacity) on a branch before its first stage
    /// has no hop of its own to size (0 is still an error). Branch `i` is
    /// built by `build(i, branch)`, as with
    /// [`broadcast`](Pipeline::broadcast).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut out: Vec<u32> = flowgate::from_iter(0..1000u32)
    ///     .balance(3, |i, branch| branch.map(move |x| x + i as u32 * 0))
    ///     .collect()
    ///     .run()?;
    /// out.sort();
    /// assert_eq!(out, (0..1000).collect::<Vec<_>>());
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn balance<B, F>(self, branches: usize, mut build: F) -> B::Joined
    where
        B: Branch,
        F: FnMut(usize, Pipeline<T>) -> B,
    {
        let (mut graph, inlet) = self.wire();
        if branches == 0 {
            let stage = inlet.from().name().to_owned();
            graph.fail(Error::ZeroBranches { stage });
        }
        let run = Arc::clone(graph.run());
        let mut inlets: Vec<Inlet<T>> = (1..branches).map(|_| inlet.share()).collect();
        inlets.insert(0, inlet);
        let built = inlets
            .into_iter()
            .take(branches)
            .enumerate()
            .map(|(i, inlet)| build(i, Pipeline::shared(inlet, &run)))
            .collect();
        B::join(sealed::Before(graph), built)
    }

    /// Adds a fan-out stage that `run` drives, with one outlet per branch.
    fn fan_out<B, F, R, Fut>(
        self,
        kind: &'static str,
        expands: bool,
        branches: usize,
        mut build: F,
        run: R,
    ) -> B::Joined
    where
        B: Branch,
        F: FnMut(usize, Pipeline<T>) -> B,
        R: FnOnce(Inlet<T>, Vec<Outlet<T>>, Arc<StageStats>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (mut graph, mut inlet) = self.wire();
        let name = graph.name_for(kind);
        let stats = StageStats::new(name.clone(), kind, expands, vec![inlet.input_hop()]);
        inlet.attach(&stats);
        if branches == 0 {
            graph.fail(Error::ZeroBranches {
                stage: name.clone(),
            });
        }
        let (slots, outlets): (Vec<_>, Vec<_>) =
            (0..branches).map(|_| async_channel::bounded(1)).unzip();
        let stage_stats = Arc::clone(&stats);
        let stage_name = name.clone();
        let stage = async move {
            let mut outs = Vec::with_capacity(outlets.len());
            for (branch, outlet) in outlets.iter().enumerate() {
                match outlet.try_recv() {
                    Ok(out) => outs.push(out),
                    Err(_) => {
                        return Err(Error::LostBranch {
                            stage: stage_name,
                            branch,
                        });
                    }
                }
            }
            run(inlet, outs, stage_stats).await
        };
        graph.add_stage(Arc::clone(&stats), StageTasks::single(Box::pin(stage)));
        let run = Arc::clone(graph.run());
        let built = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                let head = format!("{name} branch {i}");
                let branch = Pipeline::fan_branch(head, slot, Arc::clone(&stats), &run);
                build(i, branch)
            })
            .collect();
        B::join(sealed::Before(graph), built)
    }
}

/// The work of a broadcast: a clone of every item to each outlet, the
/// original to the last. An input counts as passed once every branch has
/// been sent its copy, at the end of the round.
struct Broadcast<T> {
    outs: Vec<Outlet<T>>,
    stats: Arc<StageStats>,
    /// Inputs of this round, all copied into every branch's chunk.
    copied: u64,
}

impl<T: Clone> Work<Chunk<T>> for Broadcast<T> {
    async fn chunk(&mut self, chunk: &mut Chunk<T>) -> Result<(), Error> {
        let n = chunk.items.len();
        let Some((last, rest)) = self.outs.split_last_mut() else {
            return Ok(());
        };
        let tagged = chunk.is_tagged();
        for out in rest {
            let mut at = 0;
            while at < n {
                let slice = out.room().min(n - at);
                if tagged {
                    // Each branch's copy carries a copy of the tag: the
                    // item ends once every branch is done with it.
                    let (items, tags) = chunk.parts();
                    let items = items[at..at + slice].iter().cloned();
                    out.extend_tagged(items, tags[at..at + slice].iter().cloned());
                } else {
                    out.extend(chunk.items[at..at + slice].iter().cloned());
                }
                at += slice;
                if out.is_full() {
                    out.flush().await?;
                }
            }
        }
        last.put_all(chunk).await?;
        self.copied += n as u64;
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        for out in &mut self.outs {
            out.flush().await?;
        }
        self.stats.count_passed(std::mem::take(&mut self.copied));
        Ok(())
    }
}

/// The work of a partition: each item to the outlet its key picks.
struct Partition<T, K> {
    outs: Vec<Outlet<T>>,
    key: K,
}

impl<T, K> Work<Chunk<T>> for Partition<T, K>
where
    K: FnMut(&T) -> usize,
{
    async fn chunk(&mut self, chunk: &mut Chunk<T>) -> Result<(), Error> {
        let branches = self.outs.len();
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            let out = &mut self.outs[(self.key)(&item) % branches];
            if out.push_tagged(item, tag) {
                out.flush().await?;
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        for out in &mut self.outs {
            out.flush().await?;
        }
        Ok(())
    }
}
