//! Fan-out: `broadcast`, `partition` and `balance`, and how their branches
//! end.

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::drive::drive;
use crate::hop::{Inlet, Outlet};
use crate::join::SinkFuture;
use crate::merge::merge_into;
use crate::run::Cell;
use crate::stage::Batches;
use crate::{Error, Job, Pipeline};

mod sealed {
    /// Everything built before a fan-out, handed to [`Branch::join`].
    pub struct Before(pub(crate) crate::wiring::Upstream);

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
        let mut up = before.0;
        let mut sinks = Vec::with_capacity(branches.len());
        let mut deadline: Option<Duration> = None;
        for job in branches {
            let (other, sink, after) = job.into_started();
            up.absorb(other);
            sinks.push(sink);
            deadline = match (deadline, after) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Job::started(up, Box::pin(all_sinks(sinks)), deadline)
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
        self.fan_out("broadcast", true, branches, build, |input, outs, cell| {
            broadcast_loop(input, outs, cell)
        })
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
            move |input, outs, _| partition_loop(input, outs, key),
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
        let (mut up, inlet) = self.wire().split();
        if branches == 0 {
            let stage = inlet.from().name.clone();
            up.error.get_or_insert(Error::ZeroBranches { stage });
        }
        let ctx = Arc::clone(&up.ctx);
        let mut inlets: Vec<Inlet<T>> = (1..branches).map(|_| inlet.share()).collect();
        inlets.insert(0, inlet);
        let built = inlets
            .into_iter()
            .take(branches)
            .enumerate()
            .map(|(i, inlet)| build(i, Pipeline::shared(inlet, Arc::clone(&ctx))))
            .collect();
        B::join(sealed::Before(up), built)
    }

    /// Adds a fan-out stage that `run` drives, with one outlet per branch.
    fn fan_out<B, F, R, Fut>(
        self,
        kind: &str,
        expands: bool,
        branches: usize,
        mut build: F,
        run: R,
    ) -> B::Joined
    where
        B: Branch,
        F: FnMut(usize, Pipeline<T>) -> B,
        R: FnOnce(Inlet<T>, Vec<Outlet<T>>, Arc<Cell>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (mut up, mut inlet) = self.wire().split();
        let name = format!("{kind}#{}", up.cells.len());
        let cell = Cell::new(name.clone(), expands, vec![inlet.feed()]);
        inlet.attach(&cell);
        if branches == 0 {
            up.error.get_or_insert(Error::ZeroBranches {
                stage: name.clone(),
            });
        }
        let (slots, outlets): (Vec<_>, Vec<_>) =
            (0..branches).map(|_| async_channel::bounded(1)).unzip();
        let stage_cell = Arc::clone(&cell);
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
                        })
                    }
                }
            }
            run(inlet, outs, stage_cell).await;
            Ok(())
        };
        up.stages
            .push(drive(Arc::clone(&cell), Arc::clone(&up.ctx), stage));
        up.cells.push(Arc::clone(&cell));
        let ctx = Arc::clone(&up.ctx);
        let built = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                let head = format!("{name} branch {i}");
                let branch = Pipeline::fan_branch(head, slot, Arc::clone(&cell), Arc::clone(&ctx));
                build(i, branch)
            })
            .collect();
        B::join(sealed::Before(up), built)
    }
}

/// Sends a clone of every item to each outlet; the last gets the original.
/// An input counts as passed once every branch has been sent its copy.
async fn broadcast_loop<T: Clone>(input: Inlet<T>, mut outs: Vec<Outlet<T>>, cell: Arc<Cell>) {
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        let mut sent = 0;
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            let Some((last, rest)) = outs.split_last_mut() else {
                return;
            };
            for out in rest {
                let mut at = 0;
                while at < n {
                    let run = out.room().min(n - at);
                    out.extend(chunk[at..at + run].iter().cloned());
                    at += run;
                    if out.is_full() && out.flush().await.is_err() {
                        return;
                    }
                }
            }
            if last.put_all(&mut chunk).await.is_err() {
                return;
            }
            sent += n;
            next = batches.next(chunk, n);
        }
        for out in &mut outs {
            if out.flush().await.is_err() {
                return;
            }
        }
        Cell::add(&cell.passed, sent);
        batches.end().await;
    }
}

/// Sends each item to the outlet its key picks.
async fn partition_loop<T, K>(input: Inlet<T>, mut outs: Vec<Outlet<T>>, mut key: K)
where
    K: FnMut(&T) -> usize,
{
    let branches = outs.len();
    let mut batches = Batches::new(input);
    while let Some(first) = batches.first().await {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            let n = chunk.len();
            for item in chunk.drain(..) {
                let out = &mut outs[key(&item) % branches];
                if out.push(item) && out.flush().await.is_err() {
                    return;
                }
            }
            next = batches.next(chunk, n);
        }
        for out in &mut outs {
            if out.flush().await.is_err() {
                return;
            }
        }
        batches.end().await;
    }
}
