//! The plain stages: the `Iterator` words, and the async `then`, each with
//! its work on a chunk.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::TryRecvError;

use crate::ack::fate::{Fate, Tag};
use crate::engine::feed::{Feed, Pull, as_segment, keep_spare, run_fed};
use crate::engine::hop::{Chunk, Outlet};
use crate::engine::run::RunState;
use crate::engine::stage_loop::{Work, await_flushing};
use crate::engine::stats::StageStats;
use crate::error::Error;
use crate::limits::DEFAULT_CHUNK_LIMIT;
use crate::pipeline::builder::Pipeline;
use crate::pipeline::graph::StageTasks;
use crate::pipeline::head::{Fusable, StageSetup};
use crate::stages::restart::{Restarter, guarded, guarded_async};

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that transforms each item with `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<String> = flowgate::from_iter(1..=3).map(|x: i32| x.to_string()).collect().run()?;
    /// assert_eq!(out, ["1", "2", "3"]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn map<U, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        self.each("map", MapFn(f))
    }

    /// Adds a stage that keeps only the items for which `f` returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let odd: Vec<u32> = flowgate::from_iter(0..6u32).filter(|x| x % 2 == 1).collect().run()?;
    /// assert_eq!(odd, [1, 3, 5]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter<F>(self, f: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.each("filter", FilterFn(f))
    }

    /// Adds a stage that maps each item to an `Option`, keeping the `Some`s.
    ///
    /// # Examples
    ///
    /// ```
    /// let nums: Vec<i32> = flowgate::from_iter(["1", "x", "3"])
    ///     .filter_map(|s| s.parse::<i32>().ok())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(nums, [1, 3]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn filter_map<U, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Send + 'static,
    {
        self.each("filter_map", FilterMapFn(f))
    }

    /// Adds a stage that turns each item into any number of items.
    ///
    /// The outputs are sent in chunks as they are made, so one item that
    /// expands into millions still respects the next hop's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32).flat_map(|n| 0..n).collect().run()?;
    /// assert_eq!(out, [0, 0, 1, 0, 1, 2]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn flat_map<U, I, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: Send,
        F: FnMut(T) -> I + Send + 'static,
    {
        self.fusable("flat_map", true, move |feed| {
            Box::new(FlatMapStage { feed, f }) as Box<dyn Fusable<U>>
        })
    }

    /// Adds a stage that calls `f` on a reference to each item and passes
    /// the item on unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&seen);
    /// let n = flowgate::from_iter(0..4u8)
    ///     .inspect(move |_| { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .count()
    ///     .run()?;
    /// assert_eq!((n, seen.load(Ordering::Relaxed)), (4, 4));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn inspect<F>(self, f: F) -> Pipeline<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        self.each("inspect", InspectFn(f))
    }

    /// Adds a stage that maps each item with an async function, one item at
    /// a time, in order.
    ///
    /// While a call waits (on a timer, a socket), the outputs already made
    /// are sent on, so waiting never holds finished items back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let out: Vec<u32> = flowgate::from_iter(1..=3u32)
    ///     .then(|x| async move {
    ///         smol::Timer::after(Duration::from_millis(1)).await;
    ///         x * 2
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn then<U, Fut, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
    {
        self.chain("then", false, move |input, mut setup| async move {
            let restart = Restarter::of(&mut setup);
            let mut work = Then {
                out: setup.out,
                f,
                restart,
            };
            run_fed(input, &mut work).await
        })
    }

    /// Adds a stage that gives at most one output per input, as `apply`
    /// says: a stage that can run fused, as a segment of the next stage's
    /// input, or else as a task of its own.
    pub(super) fn each<U, F>(self, kind: &'static str, apply: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: PerItem<T, U> + Send + 'static,
    {
        self.fusable(kind, false, move |feed| Box::new(EachStage { feed, apply }))
    }
}

/// A stage of at most one output per input, on its input, not yet started.
struct EachStage<I, F> {
    feed: Feed<I>,
    apply: F,
}

impl<I, O, F> Fusable<O> for EachStage<I, F>
where
    I: Send + 'static,
    O: Send + 'static,
    F: PerItem<I, O> + Send + 'static,
{
    fn fuse(self: Box<Self>, stats: Arc<StageStats>, _: &Arc<RunState>) -> Feed<O> {
        let EachStage { feed, apply } = *self;
        let own = Arc::clone(&stats);
        feed.into_segment(stats, move |up| {
            Box::new(Segment {
                up,
                apply,
                stats: own,
                spare: Chunk::default(),
            })
        })
    }

    fn start(self: Box<Self>, mut setup: StageSetup<O>) -> StageTasks {
        let EachStage { feed, apply } = *self;
        let restart = Restarter::of(&mut setup);
        let mut work = Each {
            out: setup.out,
            apply,
            restart,
        };
        StageTasks::fed(feed, &setup.stats, |feed| async move {
            run_fed(feed, &mut work).await
        })
    }
}

/// A stage of at most one output per input, fused: it runs in the task of
/// the stage after it, turning each chunk its input gives into a chunk of
/// outputs.
struct Segment<I, O, F> {
    up: Feed<I>,
    apply: F,
    stats: Arc<StageStats>,
    /// An emptied output chunk, kept for its buffers.
    spare: Chunk<O>,
}

impl<I, O, F: PerItem<I, O>> Segment<I, O, F> {
    /// The outputs of `input`'s items, with their tags. A panic in the
    /// stage's function fails this stage, by name, and unwinds on.
    #[inline]
    fn process(&mut self, mut input: Chunk<I>) -> Chunk<O> {
        let mut out = std::mem::take(&mut self.spare);
        let (apply, stats) = (&mut self.apply, &*self.stats);
        as_segment(stats, || outputs_of(apply, &mut input, &mut out, stats));
        self.up.give_back(input);
        self.stats.count_emitted(out.items.len());
        out
    }
}

/// Moves every item of `input` through `apply` into `out`, with the tags:
/// a stage whose every input makes one output moves them over as they
/// are; a filtering stage's inputs with tags go one at a time, and each
/// filtered input's tag records it so.
#[inline]
fn outputs_of<I, O, F: PerItem<I, O>>(
    apply: &mut F,
    input: &mut Chunk<I>,
    out: &mut Chunk<O>,
    stats: &StageStats,
) {
    let n = input.items.len();
    if !input.is_tagged() || F::ONE_TO_ONE {
        if input.is_tagged() {
            out.set_tagging(input.take_tagging());
        }
        apply.slice(input.items.drain(..), &mut out.items);
    } else {
        let (items, tags) = input.parts();
        let (outputs, out_tags) = out.parts();
        for (item, tag) in items.drain(..).zip(tags.drain(..)) {
            match apply.one(item) {
                Some(output) => {
                    outputs.push(output);
                    out_tags.push(tag);
                }
                None => tag.resolve(Fate::Filtered),
            }
        }
    }
    let filtered = n - out.items.len();
    if filtered > 0 {
        stats.count_filtered(filtered);
    }
}

impl<I, O, F> Pull<O> for Segment<I, O, F>
where
    I: Send,
    O: Send,
    F: PerItem<I, O> + Send,
{
    #[inline]
    fn try_pull(&mut self) -> Result<Chunk<O>, TryRecvError> {
        let input = self.up.try_recv()?;
        Ok(self.process(input))
    }

    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk<O>>> {
        match self.up.poll_recv(cx) {
            Poll::Ready(Some(input)) => Poll::Ready(Some(self.process(input))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    #[inline]
    fn recycle(&mut self, chunk: Chunk<O>) {
        keep_spare(&mut self.spare, chunk);
    }

    fn release(&mut self) {
        self.stats.mark_released();
    }
}

/// What a stage of at most one output per input does, on a slice of
/// inputs at once or on one input.
pub(crate) trait PerItem<I, O> {
    /// Whether every input makes exactly one output, so that the inputs'
    /// tags go to the outputs as they are.
    const ONE_TO_ONE: bool;

    /// Moves `items` through the stage's function into `out`. The slice is
    /// a plain `Drain` of the input chunk (usually all of it), an iterator of
    /// exact length, so for `map` `Vec::extend` writes the outputs without a
    /// check per item.
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<O>);

    /// The output of one input, if it makes one.
    fn one(&mut self, item: I) -> Option<O>;
}

/// `map`: each input to `f` of it.
struct MapFn<F>(F);

impl<I, O, F: FnMut(I) -> O> PerItem<I, O> for MapFn<F> {
    const ONE_TO_ONE: bool = true;

    #[inline]
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<O>) {
        out.extend(items.map(&mut self.0));
    }

    fn one(&mut self, item: I) -> Option<O> {
        Some((self.0)(item))
    }
}

/// `filter`: the inputs for which `f` is `true`.
struct FilterFn<F>(F);

impl<I, F: FnMut(&I) -> bool> PerItem<I, I> for FilterFn<F> {
    const ONE_TO_ONE: bool = false;

    #[inline]
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<I>) {
        out.extend(items.filter(&mut self.0));
    }

    fn one(&mut self, item: I) -> Option<I> {
        (self.0)(&item).then_some(item)
    }
}

/// `filter_map`: the `Some`s of `f`.
struct FilterMapFn<F>(F);

impl<I, O, F: FnMut(I) -> Option<O>> PerItem<I, O> for FilterMapFn<F> {
    const ONE_TO_ONE: bool = false;

    #[inline]
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<O>) {
        out.extend(items.filter_map(&mut self.0));
    }

    fn one(&mut self, item: I) -> Option<O> {
        (self.0)(item)
    }
}

/// `inspect`: each input, after `f` has seen it.
struct InspectFn<F>(F);

impl<I, F: FnMut(&I)> PerItem<I, I> for InspectFn<F> {
    const ONE_TO_ONE: bool = true;

    #[inline]
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<I>) {
        out.extend(items.inspect(&mut self.0));
    }

    fn one(&mut self, item: I) -> Option<I> {
        (self.0)(&item);
        Some(item)
    }
}

/// The work of a stage that turns each input into at most one output with a
/// sync function: `map`, `filter`, `filter_map` and `inspect`.
///
/// Each slice of inputs given to `apply` is no larger than the room left in
/// the output chunk, so the chunk can never overflow. Inputs that made no
/// output are counted as filtered. Inputs with tags go one at a time, unless
/// every input makes one output, when their tags move over as they are.
struct Each<O, F> {
    out: Outlet<O>,
    apply: F,
    /// Set if the stage restarts after a panic: it then takes its inputs
    /// one at a time, each under a panic guard.
    restart: Option<Restarter>,
}

impl<O, F> Each<O, F> {
    /// Moves `chunk`'s first `slice` items through `apply`, counting those
    /// that made no output as filtered.
    #[inline]
    fn apply<I>(&mut self, chunk: &mut Chunk<I>, slice: usize)
    where
        F: PerItem<I, O>,
    {
        if chunk.is_tagged() {
            return self.apply_tagged(chunk, slice);
        }
        let before = self.out.len();
        self.apply.slice(chunk.items.drain(..slice), &mut self.out);
        let filtered = slice - (self.out.len() - before);
        if filtered > 0 {
            self.out.stats().count_filtered(filtered);
        }
    }

    /// [`Each::apply`] for inputs with tags: each filtered input's tag
    /// records it so.
    fn apply_tagged<I>(&mut self, chunk: &mut Chunk<I>, slice: usize)
    where
        F: PerItem<I, O>,
    {
        if F::ONE_TO_ONE {
            if let Some(runs) = chunk.take_runs_front(slice) {
                let (items, apply) = (&mut chunk.items, &mut self.apply);
                self.out
                    .with_runs(runs, |out| apply.slice(items.drain(..slice), out));
                return;
            }
            let (items, tags) = chunk.parts();
            let apply = &mut self.apply;
            self.out.with_tags(tags.drain(..slice), |out| {
                apply.slice(items.drain(..slice), out)
            });
            return;
        }
        let mut filtered = 0;
        let (items, tags) = chunk.parts();
        for (item, tag) in items.drain(..slice).zip(tags.drain(..slice)) {
            match self.apply.one(item) {
                Some(output) => {
                    self.out.push_tagged(output, Some(tag));
                }
                None => {
                    tag.resolve(Fate::Filtered);
                    filtered += 1;
                }
            }
        }
        if filtered > 0 {
            self.out.stats().count_filtered(filtered);
        }
    }
}

impl<O, F> Each<O, F> {
    /// Takes the inputs one at a time, each under a panic guard, and
    /// restarts after a panic.
    async fn restarting<I>(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error>
    where
        F: PerItem<I, O>,
    {
        let Some(restart) = &self.restart else {
            return Ok(());
        };
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            match guarded(|| self.apply.one(item)) {
                Ok(Some(output)) => {
                    if self.out.push_tagged(output, tag) {
                        self.out.flush().await?;
                    }
                }
                Ok(None) => {
                    if let Some(tag) = tag {
                        tag.resolve(Fate::Filtered);
                    }
                    self.out.stats().count_filtered(1);
                }
                Err(message) => {
                    self.out.stats().count_failed();
                    if let Some(tag) = tag {
                        tag.fail(message.clone());
                    }
                    restart.after_panic(message, &mut self.out).await?;
                }
            }
        }
        Ok(())
    }
}

impl<I, O, F> Work<Chunk<I>> for Each<O, F>
where
    F: PerItem<I, O>,
{
    /// Applies the function slice by slice, handing each full output chunk
    /// on while the next hop has room.
    #[inline]
    fn chunk_now(&mut self, chunk: &mut Chunk<I>) -> Result<bool, Error> {
        if self.restart.is_some() {
            return Ok(false);
        }
        while !chunk.items.is_empty() {
            if self.out.is_full() && !self.out.try_flush()? {
                return Ok(false);
            }
            let slice = self.out.room().min(chunk.items.len());
            self.apply(chunk, slice);
        }
        Ok(true)
    }

    /// Waits for room in the next hop whenever the output chunk is full.
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        if self.restart.is_some() {
            // Boxed: a stage that never restarts keeps its future small.
            return Box::pin(self.restarting(chunk)).await;
        }
        while !self.chunk_now(chunk)? {
            self.out.flush().await?;
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}

/// `flat_map` on its input, not yet started.
struct FlatMapStage<I, F> {
    feed: Feed<I>,
    f: F,
}

impl<I, O, It, F> Fusable<O> for FlatMapStage<I, F>
where
    I: Send + 'static,
    O: Send + 'static,
    It: IntoIterator<Item = O> + 'static,
    It::IntoIter: Send,
    F: FnMut(I) -> It + Send + 'static,
{
    fn fuse(self: Box<Self>, stats: Arc<StageStats>, _: &Arc<RunState>) -> Feed<O> {
        let FlatMapStage { feed, f } = *self;
        let own = Arc::clone(&stats);
        feed.into_segment(stats, move |up| {
            Box::new(FlatSegment {
                up,
                f,
                stats: own,
                input: Chunk::default(),
                tags: Vec::new(),
                current: None,
                spare: Chunk::default(),
            })
        })
    }

    fn start(self: Box<Self>, setup: StageSetup<O>) -> StageTasks {
        let FlatMapStage { feed, f } = *self;
        let mut work = FlatMap { out: setup.out, f };
        StageTasks::fed(feed, &setup.stats, |feed| async move {
            run_fed(feed, &mut work).await
        })
    }
}

/// `flat_map`, fused: each pull gives a chunk of at most
/// [`DEFAULT_CHUNK_LIMIT`] outputs, so one input that expands into millions
/// still reaches the stage after it a chunk at a time, as it would through
/// a hop. The input being expanded, and the rest of its chunk, wait here
/// for the next pull.
struct FlatSegment<I, O, F, Outputs> {
    up: Feed<I>,
    f: F,
    stats: Arc<StageStats>,
    /// The inputs not yet expanded, last first, so that the next one is a
    /// `pop`; the chunk is given back once it is empty.
    input: Chunk<I>,
    /// Their tags, last first, if they have any.
    tags: Vec<Tag>,
    /// The outputs still to come of the input being expanded, with its tag.
    current: Option<(Outputs, Option<Tag>)>,
    /// An emptied output chunk, kept for its buffers.
    spare: Chunk<O>,
}

impl<I, O, It, F> FlatSegment<I, O, F, It::IntoIter>
where
    It: IntoIterator<Item = O>,
    F: FnMut(I) -> It,
{
    /// Whether inputs are in hand, being expanded or waiting to be.
    fn holds_input(&self) -> bool {
        self.current.is_some() || !self.input.items.is_empty()
    }

    /// Takes `chunk` in hand, to expand its inputs one by one.
    fn take_in(&mut self, mut chunk: Chunk<I>) {
        let tagged = chunk.is_tagged();
        let (items, tags) = chunk.parts();
        items.reverse();
        tags.reverse();
        if tagged {
            self.tags = std::mem::take(tags);
        }
        let old = std::mem::replace(&mut self.input, chunk);
        self.up.give_back(old);
    }

    /// A chunk of the outputs of the inputs in hand, at most
    /// [`DEFAULT_CHUNK_LIMIT`] of them, counted as emitted, with the inputs
    /// whose outputs it completes counted as passed.
    fn next_chunk(&mut self) -> Chunk<O> {
        let mut out = std::mem::take(&mut self.spare);
        let stats = Arc::clone(&self.stats);
        let passed = as_segment(&stats, || self.expand_into(&mut out));
        if passed > 0 {
            self.stats.count_passed(passed);
        }
        self.stats.count_emitted(out.items.len());
        out
    }

    /// Fills `out` from the inputs in hand; gives how many inputs had all
    /// their outputs put in it. Each output carries a copy of its input's
    /// tag; the input's own records the least serious fate, so the item is
    /// filtered if it made nothing, and otherwise ends as its outputs do.
    fn expand_into(&mut self, out: &mut Chunk<O>) -> u64 {
        let mut passed = 0;
        loop {
            let room = DEFAULT_CHUNK_LIMIT - out.items.len();
            if room == 0 {
                return passed;
            }
            let (mut outputs, tag) = match self.current.take() {
                Some(current) => current,
                None => match self.input.items.pop() {
                    Some(item) => ((self.f)(item).into_iter(), self.tags.pop()),
                    None => return passed,
                },
            };
            match &tag {
                None => out.items.extend(outputs.by_ref().take(room)),
                Some(tag) => {
                    let (items, tags) = out.parts();
                    for output in outputs.by_ref().take(room) {
                        items.push(output);
                        tags.push(tag.clone());
                    }
                }
            }
            if out.items.len() < DEFAULT_CHUNK_LIMIT {
                // The input's outputs ran out before the chunk filled.
                if let Some(tag) = tag {
                    tag.resolve(Fate::Filtered);
                }
                passed += 1;
            } else {
                self.current = Some((outputs, tag));
            }
        }
    }
}

impl<I, O, It, F> Pull<O> for FlatSegment<I, O, F, It::IntoIter>
where
    I: Send,
    O: Send,
    It: IntoIterator<Item = O>,
    It::IntoIter: Send,
    F: FnMut(I) -> It + Send,
{
    fn try_pull(&mut self) -> Result<Chunk<O>, TryRecvError> {
        if !self.holds_input() {
            let chunk = self.up.try_recv()?;
            self.take_in(chunk);
        }
        Ok(self.next_chunk())
    }

    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk<O>>> {
        if !self.holds_input() {
            match self.up.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => self.take_in(chunk),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Some(self.next_chunk()))
    }

    fn recycle(&mut self, chunk: Chunk<O>) {
        keep_spare(&mut self.spare, chunk);
    }

    fn release(&mut self) {
        self.stats.mark_released();
    }
}

/// The work of a stage that turns each input into any number of outputs,
/// handing the outputs on whenever the output chunk fills, even in the
/// middle of one input's outputs.
struct FlatMap<O, F> {
    out: Outlet<O>,
    f: F,
}

impl<I, O, It, F> Work<Chunk<I>> for FlatMap<O, F>
where
    F: FnMut(I) -> It,
    It: IntoIterator<Item = O>,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let mut outputs = (self.f)(item).into_iter();
            match tags.next() {
                None => {
                    while self.out.fill(outputs.by_ref()) {
                        self.out.flush().await?;
                    }
                }
                Some(tag) => {
                    // Each output carries a copy of the input's tag; the
                    // input's own records the least serious fate, so the
                    // item is filtered if it made nothing, and otherwise
                    // ends as its outputs do.
                    for output in outputs {
                        if self.out.push_tagged(output, Some(tag.clone())) {
                            self.out.flush().await?;
                        }
                    }
                    tag.resolve(Fate::Filtered);
                }
            }
            self.out.pass_one();
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}

/// The work of a stage that maps each input with an async function.
///
/// A future that completes on its first poll is batched like a sync stage.
/// One that has to wait first hands on the outputs already made, so they do
/// not sit in the buffer for as long as the wait lasts.
struct Then<O, F> {
    out: Outlet<O>,
    f: F,
    /// Set if the stage restarts after a panic.
    restart: Option<Restarter>,
}

impl<I, O, Fut, F> Work<Chunk<I>> for Then<O, F>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = O>,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            let output = match &self.restart {
                None => await_flushing((self.f)(item), &mut self.out).await?,
                Some(restart) => {
                    let out = &mut self.out;
                    let tried = match guarded(|| (self.f)(item)) {
                        Ok(fut) => guarded_async(await_flushing(fut, out)).await,
                        Err(message) => Err(message),
                    };
                    match tried {
                        Ok(output) => output?,
                        Err(message) => {
                            out.stats().count_failed();
                            if let Some(tag) = tag {
                                tag.fail(message.clone());
                            }
                            restart.after_panic(message, out).await?;
                            continue;
                        }
                    }
                }
            };
            if self.out.push_tagged(output, tag) {
                self.out.flush().await?;
            }
        }
        Ok(())
    }

    async fn round_end(&mut self) -> Result<(), Error> {
        Ok(self.out.flush().await?)
    }
}
