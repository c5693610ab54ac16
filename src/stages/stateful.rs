//! The `Iterator` stages that keep state from one item to the next:
//! `enumerate`, `skip`, `skip_while`, `dedup_by_key`, `scan`, and the ones
//! that end the input early, `take`, `take_while` and `scan`.
//!
//! A stage that ends the input early does what an iterator's `take` does
//! to the iterator under it: it stops pulling. Here that means it closes
//! the hop before it, so the stages before it stop at their next send, as
//! done, not failed; and it shuts the run's input down, as
//! [`Control::shutdown`](crate::Control::shutdown) does, so the source stops
//! even while it waits for an item. The items already taken from the source
//! and no longer needed are dropped where they are, and counted as dropped
//! in the report; with acknowledgements each is told
//! [`Outcome::Dropped`](crate::Outcome::Dropped), so a broker can deliver it
//! again. The run ends `Ok`.

use std::sync::Arc;

use crate::ack::fate::Fate;
use crate::engine::hop::{Chunk, Inlet, Outlet};
use crate::engine::run::RunState;
use crate::engine::stage_loop::{Work, run_stage};
use crate::error::Error;
use crate::pipeline::builder::Pipeline;
use crate::stages::map::PerItem;

impl<T: Send + 'static, S> Pipeline<T, S> {
    /// Adds a stage that pairs each item with its place in the stage's
    /// input, counting from 0, like `Iterator::enumerate`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<(usize, char)> = flowgate::from_iter(['a', 'b']).enumerate().collect().run()?;
    /// assert_eq!(out, [(0, 'a'), (1, 'b')]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn enumerate(self) -> Pipeline<(usize, T)> {
        let mut next = 0usize;
        self.stateful("enumerate", move |item| {
            let place = next;
            next = next.wrapping_add(1);
            Step::Emit((place, item))
        })
    }

    /// Adds a stage that lets the first `n` items go (counted as filtered)
    /// and passes the rest on, like `Iterator::skip`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u32> = flowgate::from_iter(0..5u32).skip(3).collect().run()?;
    /// assert_eq!(out, [3, 4]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn skip(self, n: usize) -> Pipeline<T> {
        let mut left = n;
        self.stateful("skip", move |item| {
            if left == 0 {
                return Step::Emit(item);
            }
            left -= 1;
            Step::Drop
        })
    }

    /// Adds a stage that lets items go (counted as filtered) while
    /// `predicate` is `true` of them, and passes on the first item for which
    /// it is `false` and every item after it, like `Iterator::skip_while`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u32> = flowgate::from_iter([1u32, 2, 7, 1]).skip_while(|x| *x < 5).collect().run()?;
    /// assert_eq!(out, [7, 1]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn skip_while<F>(self, mut predicate: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        let mut skipping = true;
        self.stateful("skip_while", move |item| {
            if skipping && predicate(&item) {
                return Step::Drop;
            }
            skipping = false;
            Step::Emit(item)
        })
    }

    /// Adds a stage that lets an item go (counted as filtered) when its key
    /// equals the key of the item just before it, so that each run of items
    /// with equal keys gives only its first, like `Vec::dedup_by_key` on a
    /// stream.
    ///
    /// It keeps one key, the last one seen.
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<i32> = flowgate::from_iter([1, 1, -1, 2, 2, 1])
    ///     .dedup_by_key(|x: &i32| x.abs())
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [1, 2, 1]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn dedup_by_key<K, F>(self, mut key: F) -> Pipeline<T>
    where
        K: PartialEq + Send + 'static,
        F: FnMut(&T) -> K + Send + 'static,
    {
        let mut last: Option<K> = None;
        self.stateful("dedup_by_key", move |item| {
            let k = key(&item);
            if last.as_ref() == Some(&k) {
                return Step::Drop;
            }
            last = Some(k);
            Step::Emit(item)
        })
    }

    /// Adds a stage that passes on the first `n` items and then ends the
    /// input, like `Iterator::take`.
    ///
    /// Once it has its `n` items it ends the input, so `take` works on an
    /// endless source: the stages before it stop at once (a slow stage does
    /// no more work than the item it has in hand), the source stops taking
    /// items, and the run ends `Ok`. The items already taken from the
    /// source and not needed are dropped where they are, each counted in
    /// the report as dropped by the stage that held it (which still ends
    /// `Done`); with acknowledgements, each is told
    /// [`Outcome::Dropped`](crate::Outcome::Dropped), so a broker delivers
    /// it again. It ends the input of the whole run: after a
    /// [`broadcast`](Pipeline::broadcast), the other branches end too.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::State;
    ///
    /// let job = flowgate::from_iter(0u64..).map(|x| x * x).take(4).collect::<Vec<_>>();
    /// let control = job.control();
    /// assert_eq!(job.run()?, [0, 1, 4, 9]);
    /// let report = control.report();
    /// assert!(report.is_balanced());
    /// assert!(report.stages.iter().all(|s| s.state == State::Done));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn take(self, n: usize) -> Pipeline<T> {
        let mut left = n;
        self.ending("take", n == 0, move |item| {
            left -= 1;
            if left == 0 {
                Step::Last(item)
            } else {
                Step::Emit(item)
            }
        })
    }

    /// Adds a stage that passes items on while `predicate` is `true` of
    /// them, and ends the input at the first for which it is `false` (which
    /// is let go), like `Iterator::take_while`. The input ends as with
    /// [`take`](Pipeline::take).
    ///
    /// # Examples
    ///
    /// ```
    /// let out: Vec<u64> = flowgate::from_iter(1u64..).take_while(|x| x * x < 30).collect().run()?;
    /// assert_eq!(out, [1, 2, 3, 4, 5]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn take_while<F>(self, mut predicate: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.ending("take_while", false, move |item| {
            if predicate(&item) {
                Step::Emit(item)
            } else {
                Step::End
            }
        })
    }

    /// Adds a stage that carries `state` from item to item: `f` gets the
    /// state and each item, and gives `Some` output to pass on, or `None`
    /// to end the input there, like `Iterator::scan`. The input ends as
    /// with [`take`](Pipeline::take).
    ///
    /// # Examples
    ///
    /// ```
    /// // Running totals, until the total passes 10.
    /// let out: Vec<u32> = flowgate::from_iter(1..=10u32)
    ///     .scan(0u32, |total, x| {
    ///         *total += x;
    ///         (*total <= 10).then_some(*total)
    ///     })
    ///     .collect()
    ///     .run()?;
    /// assert_eq!(out, [1, 3, 6, 10]);
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn scan<St, U, F>(self, mut state: St, mut f: F) -> Pipeline<U>
    where
        St: Send + 'static,
        U: Send + 'static,
        F: FnMut(&mut St, T) -> Option<U> + Send + 'static,
    {
        self.ending("scan", false, move |item| match f(&mut state, item) {
            Some(output) => Step::Emit(output),
            None => Step::End,
        })
    }

    /// A stateful stage that never ends the input: it gives at most one
    /// output per input, so it can run fused, like `map`.
    fn stateful<U, F>(self, kind: &'static str, step: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Step<U> + Send + 'static,
    {
        self.each(kind, StepFn(step))
    }

    /// A stateful stage, which may end the input: at once if `done`, or
    /// when `step` says so.
    fn ending<U, F>(self, kind: &'static str, done: bool, step: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Step<U> + Send + 'static,
    {
        self.chain_hop(kind, false, move |input, setup| async move {
            // A second receiving side of the input hop, to close it with
            // once the stage needs nothing more.
            let mut closer = input.share();
            closer.attach(&setup.stats);
            let mut work = Stateful {
                out: setup.out,
                run: setup.run,
                step,
                closer: Some(closer),
            };
            if done {
                work.end();
            }
            run_stage(input, &mut work).await
        })
    }
}

/// What a stateful stage does with one item.
enum Step<O> {
    /// Pass this output on.
    Emit(O),
    /// Let the item go, as filtered.
    Drop,
    /// Pass this output on, and end the input.
    Last(O),
    /// Let the item go, as filtered, and end the input.
    End,
}

/// A stateful stage that never ends the input, as a stage of at most one
/// output per input: its steps only emit or drop.
struct StepFn<F>(F);

impl<I, O, F: FnMut(I) -> Step<O>> PerItem<I, O> for StepFn<F> {
    const ONE_TO_ONE: bool = false;

    #[inline]
    fn slice(&mut self, items: std::vec::Drain<'_, I>, out: &mut impl Extend<O>) {
        out.extend(items.filter_map(|item| self.one(item)));
    }

    #[inline]
    fn one(&mut self, item: I) -> Option<O> {
        match (self.0)(item) {
            Step::Emit(output) => Some(output),
            Step::Drop => None,
            Step::Last(_) | Step::End => unreachable!("a stage that never ends the input"),
        }
    }
}

/// The work of a stateful stage: one step per item. Once it has ended
/// the input, every item still coming is let go, as dropped.
struct Stateful<I, O, F> {
    out: Outlet<O>,
    run: Arc<RunState>,
    step: F,
    /// A receiving side of the input hop, until the stage ends the input.
    closer: Option<Inlet<I>>,
}

impl<I, O, F> Stateful<I, O, F> {
    /// Ends the input: the hop before the stage closes, so the stages
    /// before it stop at their next send, as done, and the run's source
    /// stops taking items even if it is waiting for one.
    fn end(&mut self) {
        if let Some(mut closer) = self.closer.take() {
            closer.release();
        }
        self.run.root().shut_down();
    }

    /// Whether the stage has ended the input.
    fn is_done(&self) -> bool {
        self.closer.is_none()
    }
}

impl<I, O, F> Work<Chunk<I>> for Stateful<I, O, F>
where
    F: FnMut(I) -> Step<O>,
{
    async fn chunk(&mut self, chunk: &mut Chunk<I>) -> Result<(), Error> {
        if self.is_done() {
            // Not needed: dropped, each tag recording its item so.
            chunk.items.clear();
            chunk.resolve_all(Fate::Dropped);
            return Ok(());
        }
        let mut tags = chunk.take_tags();
        for item in chunk.items.drain(..) {
            let tag = tags.next();
            if self.is_done() {
                // Dropped with its tag.
                continue;
            }
            let output = match (self.step)(item) {
                Step::Emit(output) => output,
                Step::Last(output) => {
                    self.end();
                    output
                }
                Step::Drop => {
                    let_go(&self.out, tag);
                    continue;
                }
                Step::End => {
                    self.end();
                    let_go(&self.out, tag);
                    continue;
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

/// Lets one item go, as filtered.
fn let_go<O>(out: &Outlet<O>, tag: Option<crate::ack::fate::Tag>) {
    if let Some(tag) = tag {
        tag.resolve(Fate::Filtered);
    }
    out.stats().count_filtered(1);
}
