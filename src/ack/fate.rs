//! The fate of a source item: what became of it, told exactly once.
//!
//! A source may attach an acknowledgement to each item it hands on. The
//! items a source hands on together (one chunk) share a [`Group`]: one slot
//! per item for its fate, and what to tell once every fate is final. Each
//! item travels with a [`Tag`] that names its group and slot, beside the
//! item, in the chunk's tags (see `engine::hop`); consecutive items from
//! consecutive slots travel as one [`Run`], which holds one reference to the
//! group for all of them, so that stages that pass items on as they are do
//! not touch the reference count per item. A stage that ends an item
//! on purpose records why ([`Tag::resolve`]); a tag dropped without that
//! (in a chunk discarded by a stop, or unwound by a panic) records that the
//! item was dropped. An item that leads to several outputs (a `flat_map`, a
//! broadcast) has one tag per output, clones of one another; a batch made by
//! `chunks` has a tag of its own whose group holds the tags of the items
//! inside it.
//!
//! The group is told once its last tag or run is gone, which is when the fates of
//! all its items are final: the reference count of the group is what
//! decides, so the telling happens exactly once, in whichever task lets go
//! of the last tag, without a lock.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use async_channel::Receiver;

/// What became of an item that a source handed to a pipeline.
///
/// An item that leads to several outputs (through `flat_map`, or a
/// broadcast to several branches) has the most serious outcome of theirs,
/// in this order: [`Failed`](Outcome::Failed), [`Dropped`](Outcome::Dropped),
/// [`DeadLettered`](Outcome::DeadLettered), [`Skipped`](Outcome::Skipped),
/// [`Delivered`](Outcome::Delivered), [`Filtered`](Outcome::Filtered). So
/// `Delivered` means every output made from the item reached the sink,
/// unless some were filtered on the way.
///
/// # Examples
///
/// ```
/// use flowgate::Outcome;
///
/// let outcome = Outcome::Failed("bad input".to_owned());
/// assert!(!outcome.is_final_success());
/// assert!(Outcome::Filtered.is_final_success());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every output made from the item was taken by the sink.
    Delivered,
    /// A stage dropped the item on purpose: a `filter` or `filter_map`, or
    /// a `flat_map` that made nothing from it.
    Filtered,
    /// A fallible stage failed on the item, and its policy skipped it.
    Skipped,
    /// A fallible stage failed on the item, and its policy sent the item to
    /// the dead-letter output: the stage's name, and the error as one
    /// message (the error and each error under it).
    DeadLettered {
        /// The name of the stage that dead-lettered the item.
        stage: String,
        /// What the stage's function failed with.
        error: String,
    },
    /// A fallible stage failed on the item and, as its policy says, failed
    /// the run. The text is the run's error message.
    Failed(String),
    /// The run stopped before the item was done with: a cancel, a deadline,
    /// a failure or a panic in a stage, or the item's stage panicking on it.
    Dropped,
}

impl Outcome {
    /// Whether the pipeline is done with the item and wants nothing more
    /// for it: it was delivered, filtered, skipped or dead-lettered. A
    /// broker source acknowledges such items; a failed or dropped one is
    /// left to be delivered again.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowgate::Outcome;
    ///
    /// let letter = Outcome::DeadLettered { stage: "parse".into(), error: "bad digit".into() };
    /// assert!(letter.is_final_success());
    /// assert!(!Outcome::Dropped.is_final_success());
    /// ```
    pub fn is_final_success(&self) -> bool {
        matches!(
            self,
            Outcome::Delivered
                | Outcome::Filtered
                | Outcome::Skipped
                | Outcome::DeadLettered { .. }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Filtered => f.write_str("filtered"),
            Outcome::Skipped => f.write_str("skipped"),
            Outcome::DeadLettered { stage, error } => {
                write!(f, "dead-lettered by stage `{stage}`: {error}")
            }
            Outcome::Failed(error) => write!(f, "failed: {error}"),
            Outcome::Dropped => f.write_str("dropped"),
        }
    }
}

/// Receives the [`Outcome`] of one source item, exactly once.
///
/// Any `FnOnce(Outcome)` that can be sent to another thread is one. An
/// acknowledgement is called once the fates of all the items its source
/// handed on in the same chunk are final, in the task that finished the
/// last of them; keep it short, and send anything slow to a task of your
/// own. A panic inside it is caught and ignored.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use flowgate::Outcome;
///
/// let (tx, rx) = mpsc::channel();
/// // The iterator holds `tx` until the run is over.
/// let items = (0..4u32).map(move |n| {
///     let tx = tx.clone();
///     (n, move |outcome: Outcome| tx.send((n, outcome)).unwrap())
/// });
/// let kept = flowgate::from_iter_acked(items).filter(|n| n % 2 == 0).count().run()?;
/// assert_eq!(kept, 2);
/// let mut told: Vec<_> = rx.iter().collect();
/// told.sort_by_key(|(n, _)| *n);
/// assert_eq!(
///     told,
///     [(0, Outcome::Delivered), (1, Outcome::Filtered), (2, Outcome::Delivered), (3, Outcome::Filtered)]
/// );
/// # Ok::<(), flowgate::Error>(())
/// ```
pub trait Acknowledge: Send + 'static {
    /// Takes the item's outcome.
    fn acknowledge(self, outcome: Outcome);
}

impl<F: FnOnce(Outcome) + Send + 'static> Acknowledge for F {
    fn acknowledge(self, outcome: Outcome) {
        self(outcome);
    }
}

/// What is told once every item of a group has its final outcome.
pub(crate) trait Tell: Send {
    /// Takes the outcomes of the group's items, in order.
    fn tell(self: Box<Self>, outcomes: Outcomes);
}

/// The final outcomes of a group's items, in order, kept compact: a byte of
/// fates for each, and the errors of those that failed.
pub(crate) struct Outcomes {
    fates: std::vec::IntoIter<u8>,
    errors: Option<Box<[OnceLock<Note>]>>,
    index: usize,
}

impl Iterator for Outcomes {
    type Item = Outcome;

    #[inline]
    fn next(&mut self) -> Option<Outcome> {
        let fates = self.fates.next()?;
        let index = self.index;
        self.index += 1;
        // The most serious fate recorded: the highest bit.
        let worst = if fates == 0 {
            0
        } else {
            1u8 << (7 - fates.leading_zeros())
        };
        Some(match worst {
            1 => Outcome::Filtered,
            2 => Outcome::Delivered,
            4 => Outcome::Skipped,
            8 => match self.note(index) {
                Some(Note::Letter { stage, error }) => Outcome::DeadLettered { stage, error },
                _ => Outcome::DeadLettered {
                    stage: String::new(),
                    error: String::new(),
                },
            },
            32 => Outcome::Failed(match self.note(index) {
                Some(Note::Failed(error) | Note::Letter { error, .. }) => error,
                None => String::new(),
            }),
            _ => Outcome::Dropped,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fates.size_hint()
    }
}

impl Outcomes {
    /// What was written down of the item at `index`, taken.
    fn note(&mut self, index: usize) -> Option<Note> {
        self.errors.as_mut().and_then(|notes| notes[index].take())
    }
}

/// What is written down of an item that failed, beside its fate: the first
/// such note recorded for it.
#[derive(Debug)]
pub(crate) enum Note {
    /// The run's error message.
    Failed(String),
    /// The stage that dead-lettered the item, and its error.
    Letter { stage: String, error: String },
}

/// The acknowledgements of a source's items, one each, in order.
struct Each<A>(Vec<A>);

impl<A: Acknowledge> Tell for Each<A> {
    fn tell(self: Box<Self>, outcomes: Outcomes) {
        for (ack, outcome) in self.0.into_iter().zip(outcomes) {
            // An acknowledgement that panics must not take the pipeline's
            // task down with it, nor keep the others from being told.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| ack.acknowledge(outcome)));
        }
    }
}

/// The fates, most serious last, as kept in a group's slots: one bit
/// each, so that recording one is a single `fetch_or`, and the item's
/// outcome is its highest bit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub(crate) enum Fate {
    Filtered = 1,
    Delivered = 2,
    Skipped = 4,
    DeadLettered = 8,
    Dropped = 16,
    Failed = 32,
}

/// A home for a value that may be sent but not shared, taken out once: a
/// one-slot channel, which is `Sync` for any `Send` value and takes no lock.
struct Hold<T>(Receiver<T>);

impl<T> Hold<T> {
    fn new(value: T) -> Self {
        let (tx, rx) = async_channel::bounded(1);
        let _ = tx.try_send(value);
        Hold(rx)
    }

    fn take(&self) -> Option<T> {
        self.0.try_recv().ok()
    }
}

/// What happens once every tag of a group is gone.
enum Then {
    /// Tell the source's items' outcomes.
    Tell(Hold<Box<dyn Tell>>),
    /// The group is a batch's: its one outcome is that of every item in
    /// the batch, each with its own tag.
    Inner(Vec<Tag>),
}

/// What has been recorded of one item.
#[derive(Default)]
struct Slot {
    /// The fates recorded so far, as bits; 0 while none is.
    fates: AtomicU8,
    /// Whether an output of the item was delivered: kept apart from
    /// `fates` so that the sink records it with a plain store, which costs
    /// no more than a write, where `fetch_or` locks the bus.
    delivered: AtomicBool,
}

/// The fates of items handed on together, and what to do once all are
/// final.
pub(crate) struct Group {
    /// What has been recorded of each item.
    slots: Box<[Slot]>,
    /// The note of each failed or dead-lettered item, made on the first.
    errors: OnceLock<Box<[OnceLock<Note>]>>,
    /// A number the maker of the group chose, such as a request's.
    id: u64,
    then: Then,
}

impl Group {
    /// A group of `n` items whose outcomes go to `tell`, with their tags as
    /// one run: one reference to the group for all of them. A group of no
    /// items is told at once.
    pub(crate) fn told_run(n: usize, id: u64, tell: Box<dyn Tell>) -> Run {
        let group = Arc::new(Group {
            slots: (0..n).map(|_| Slot::default()).collect(),
            errors: OnceLock::new(),
            id,
            then: Then::Tell(Hold::new(tell)),
        });
        Run {
            group: (n > 0).then_some(group),
            start: 0,
            len: u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// A group of items, each with its own acknowledgement, with their tags
    /// as one run.
    pub(crate) fn acknowledged_run<A: Acknowledge>(acks: Vec<A>) -> Run {
        Group::told_run(acks.len(), 0, Box::new(Each(acks)))
    }

    /// The tag of a batch made of the items whose tags are `inner`: the
    /// batch's outcome becomes theirs. `None` if no item of the batch has a
    /// tag.
    pub(crate) fn batch(inner: Vec<Tag>) -> Tag {
        if inner.iter().all(Tag::is_none) {
            return Tag::none();
        }
        let group = Arc::new(Group {
            slots: Box::new([Slot::default()]),
            errors: OnceLock::new(),
            id: 0,
            then: Then::Inner(inner),
        });
        Tag::of(&group, 0)
    }

    /// How many items the group has.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn record(&self, index: u32, fate: Fate) {
        if fate == Fate::Delivered {
            // Only ever set, so racing stores agree; the group is read only
            // once the last tag is gone, after the `Arc`'s release.
            self.slots[index as usize]
                .delivered
                .store(true, Ordering::Relaxed);
        } else {
            self.slots[index as usize]
                .fates
                .fetch_or(fate as u8, Ordering::Release);
        }
    }

    fn record_note(&self, index: u32, note: Note) {
        let fate = match note {
            Note::Failed(_) => Fate::Failed,
            Note::Letter { .. } => Fate::DeadLettered,
        };
        let errors = self
            .errors
            .get_or_init(|| (0..self.slots.len()).map(|_| OnceLock::new()).collect());
        let _ = errors[index as usize].set(note);
        self.record(index, fate);
    }

    /// The final outcomes of the items, once every tag is gone.
    fn outcomes(&mut self) -> Outcomes {
        let fates: Vec<u8> = self
            .slots
            .iter_mut()
            .map(|slot| *slot.fates.get_mut() | (u8::from(*slot.delivered.get_mut()) << 1))
            .collect();
        Outcomes {
            fates: fates.into_iter(),
            errors: self.errors.take(),
            index: 0,
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let mut outcomes = self.outcomes();
        match &mut self.then {
            Then::Tell(hold) => {
                if let Some(tell) = hold.take() {
                    tell.tell(outcomes);
                }
            }
            Then::Inner(inner) => {
                let outcome = outcomes.next().unwrap_or(Outcome::Dropped);
                for tag in inner.drain(..) {
                    tag.resolve_as(&outcome);
                }
            }
        }
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("items", &self.slots.len())
            .field("id", &self.id)
            .finish()
    }
}

/// The acknowledgement an item travels with: its group and its place in
/// it. A tag with no group stands for an item that has none, beside tagged
/// items in one chunk.
///
/// Dropped without being resolved, it records that its item was dropped.
pub(crate) struct Tag {
    group: Option<Arc<Group>>,
    index: u32,
}

impl Tag {
    fn of(group: &Arc<Group>, index: usize) -> Tag {
        Tag {
            group: Some(Arc::clone(group)),
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }

    /// The tag of an item with no acknowledgement.
    #[inline]
    pub(crate) fn none() -> Tag {
        Tag {
            group: None,
            index: 0,
        }
    }

    /// Whether the item has no acknowledgement.
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        self.group.is_none()
    }

    /// The source item the tag's item was made from: its group's id, its
    /// place in the group, and the group's size. For a batch, that of the
    /// last item in it.
    pub(crate) fn origin(&self) -> Option<(u64, usize, usize)> {
        let group = self.group.as_deref()?;
        match &group.then {
            Then::Inner(inner) => inner.iter().rev().find_map(Tag::origin),
            Then::Tell(_) => Some((group.id, self.index as usize, group.len())),
        }
    }

    /// Records the item's fate, and lets go of the item.
    #[inline]
    pub(crate) fn resolve(mut self, fate: Fate) {
        if let Some(group) = self.group.take() {
            group.record(self.index, fate);
        }
    }

    /// Records that the item failed with `error`.
    pub(crate) fn fail(self, error: String) {
        self.note(Note::Failed(error));
    }

    /// Records that `stage` dead-lettered the item after `error`.
    pub(crate) fn dead_letter(self, stage: String, error: String) {
        self.note(Note::Letter { stage, error });
    }

    fn note(mut self, note: Note) {
        if let Some(group) = self.group.take() {
            group.record_note(self.index, note);
        }
    }

    /// Resolves the item with the outcome of the batch it was in.
    fn resolve_as(self, outcome: &Outcome) {
        match outcome {
            Outcome::Filtered => self.resolve(Fate::Filtered),
            Outcome::Delivered => self.resolve(Fate::Delivered),
            Outcome::Skipped => self.resolve(Fate::Skipped),
            Outcome::DeadLettered { stage, error } => {
                self.dead_letter(stage.clone(), error.clone());
            }
            Outcome::Failed(error) => self.fail(error.clone()),
            Outcome::Dropped => drop(self),
        }
    }
}

impl Clone for Tag {
    /// The tag of another output made from the same item.
    fn clone(&self) -> Self {
        Tag {
            group: self.group.clone(),
            index: self.index,
        }
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.record(self.index, Fate::Dropped);
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tag")
            .field("group", &self.group)
            .field("index", &self.index)
            .finish()
    }
}

/// The tags of consecutive items that come from consecutive places of one
/// group (or that have none), held as one reference to the group: a run
/// moves between stages, splits and joins without touching the group's
/// reference count for each item. Dropped, it records each of its items
/// as dropped.
pub(crate) struct Run {
    group: Option<Arc<Group>>,
    start: u32,
    len: u32,
}

impl Run {
    /// The tags of `len` items with no acknowledgement.
    pub(crate) fn untagged(len: usize) -> Run {
        Run {
            group: None,
            start: 0,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    /// How many items the run covers.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Splits off the run of the first `n` items (at most all of them).
    pub(crate) fn split_front(&mut self, n: usize) -> Run {
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(self.len);
        let front = Run {
            group: if n == self.len {
                self.group.take()
            } else {
                self.group.clone()
            },
            start: self.start,
            len: n,
        };
        self.start += n;
        self.len -= n;
        front
    }

    /// Adds `next` at the end of this run if it carries on from it: the
    /// same group and the next places, or no group for either. Gives it
    /// back otherwise.
    pub(crate) fn join(&mut self, mut next: Run) -> Result<(), Run> {
        let carries_on = match (&self.group, &next.group) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) && self.start + self.len == next.start,
            _ => false,
        };
        if !carries_on {
            return Err(next);
        }
        self.len += next.len;
        // The joined run holds the group for both.
        next.group = None;
        next.len = 0;
        Ok(())
    }

    /// The source item of the run's `k`-th item: its group's id and its
    /// place in the group.
    #[inline]
    pub(crate) fn origin(&self, k: usize) -> Option<(u64, usize)> {
        let group = self.group.as_deref()?;
        Some((group.id, self.start as usize + k))
    }

    /// How many items the run's group has.
    pub(crate) fn group_len(&self) -> usize {
        self.group.as_deref().map_or(0, Group::len)
    }

    /// Records every item of the run as `fate`, and lets go of them.
    pub(crate) fn resolve_all(mut self, fate: Fate) {
        if let Some(group) = self.group.take() {
            for index in self.start..self.start + self.len {
                group.record(index, fate);
            }
        }
    }

    /// The run's tags, one per item, in order: the run is used up.
    pub(crate) fn into_tags(mut self) -> RunTags {
        RunTags {
            group: self.group.take(),
            next: self.start,
            end: self.start + self.len,
        }
    }
}

impl Clone for Run {
    /// The run of copies of the same items, as a broadcast makes.
    fn clone(&self) -> Self {
        Run {
            group: self.group.clone(),
            start: self.start,
            len: self.len,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            for index in self.start..self.start + self.len {
                group.record(index, Fate::Dropped);
            }
        }
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("group", &self.group)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

/// The tags of a run, one per item; the last takes the run's reference to
/// the group. A run without a group gives tags without one.
pub(crate) struct RunTags {
    group: Option<Arc<Group>>,
    next: u32,
    end: u32,
}

impl Iterator for RunTags {
    type Item = Tag;

    #[inline]
    fn next(&mut self) -> Option<Tag> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let group = if self.next == self.end {
            self.group.take()
        } else {
            self.group.clone()
        };
        Some(Tag { group, index })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for RunTags {}

/// Resolves every tag of `tags` as `fate`.
#[inline]
pub(crate) fn resolve_all(tags: impl Iterator<Item = Tag>, fate: Fate) {
    for tag in tags {
        tag.resolve(fate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn group(n: usize) -> (Vec<Tag>, mpsc::Receiver<(usize, Outcome)>) {
        let (tx, rx) = mpsc::channel();
        let acks = (0..n)
            .map(|i| {
                let tx = tx.clone();
                move |outcome: Outcome| tx.send((i, outcome)).unwrap()
            })
            .collect();
        (Group::acknowledged_run(acks).into_tags().collect(), rx)
    }

    #[test]
    fn each_item_is_told_once_when_the_last_tag_goes() {
        let (mut tags, told) = group(3);
        let third = tags.pop().unwrap();
        let second = tags.pop().unwrap();
        let first = tags.pop().unwrap();
        first.resolve(Fate::Delivered);
        second.resolve(Fate::Filtered);
        assert!(told.try_recv().is_err(), "not before every item is final");
        drop(third);
        let all: Vec<_> = told.try_iter().collect();
        assert_eq!(
            all,
            [
                (0, Outcome::Delivered),
                (1, Outcome::Filtered),
                (2, Outcome::Dropped)
            ]
        );
    }

    #[test]
    fn an_item_with_several_outputs_takes_the_most_serious_outcome() {
        let (mut tags, told) = group(2);
        let b = tags.pop().unwrap();
        let a = tags.pop().unwrap();
        let a2 = a.clone();
        a.resolve(Fate::Delivered);
        a2.resolve(Fate::Filtered);
        let b2 = b.clone();
        b.resolve(Fate::Delivered);
        b2.fail("bad".to_owned());
        let all: Vec<_> = told.try_iter().collect();
        assert_eq!(
            all,
            [
                (0, Outcome::Delivered),
                (1, Outcome::Failed("bad".to_owned()))
            ]
        );
    }

    #[test]
    fn a_batch_passes_its_outcome_to_every_item_inside() {
        let (tags, told) = group(3);
        let batch = Group::batch(tags);
        assert!(told.try_recv().is_err());
        batch.resolve(Fate::Skipped);
        assert_eq!(told.try_iter().count(), 3);
    }

    #[test]
    fn a_batch_of_untagged_items_has_no_tag() {
        assert!(Group::batch(vec![Tag::none(), Tag::none()]).is_none());
    }

    #[test]
    fn a_panicking_acknowledgement_does_not_stop_the_others() {
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let acks: Vec<Box<dyn FnOnce(Outcome) + Send>> = vec![
            Box::new(|_| panic!("boom")),
            Box::new(move |o| tx2.send(o).unwrap()),
        ];
        let acks = acks.into_iter().map(|a| move |o| a(o)).collect();
        drop(Group::acknowledged_run(acks));
        drop(tx);
        assert_eq!(rx.iter().collect::<Vec<_>>(), [Outcome::Dropped]);
    }
}
