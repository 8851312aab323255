//! Executor statistics: how many tasks are active, completed and failed.
//!
//! [`ExecutorStats`] is the design document's `PatternExecutorCached`: three
//! atomic counters, each on its own cache line, so that threads bumping
//! different counters do not slow each other down.
//!
//! When many threads bump the *same* counters, even padded atomics are slow:
//! every `fetch_add` is a locked read-modify-write on a line that bounces
//! between cores. [`ShardedExecutorStats`] gives each writer a shard of its
//! own, written with a plain relaxed load and store (no locked instruction,
//! no line transfer); readers add the shards up. knhk-std gives each thread
//! a shard automatically.

use core::fmt;
use core::marker::PhantomData;

use crate::cache::CachePadded;
use crate::sync::{
    AtomicBool, AtomicU64,
    Ordering::Relaxed,
    Ordering::{Acquire, Release},
};

/// Where task counts go: the three calls an executor or an engine's loop
/// makes, whatever the counters' layout. [`ExecutorStats`] (shared padded
/// atomics), a shard's [`ShardWriter`] and the [`SharedWriter`] implement
/// it, and so does knhk-std's per-thread `ThreadShardedStats`: code that
/// counts through `&dyn ExecutorCounters` (or a generic `C:
/// ExecutorCounters`) takes whichever the engine chose.
///
/// ```
/// use knhk_core::counters::{ExecutorCounters, ExecutorStats, ShardedExecutorStats};
///
/// fn run_task(counts: &dyn ExecutorCounters, ok: bool) {
///     counts.inc_active();
///     if ok { counts.inc_completed() } else { counts.inc_failed() }
/// }
///
/// let shared = ExecutorStats::new();
/// run_task(&shared, true);
/// let sharded = ShardedExecutorStats::<4>::new();
/// run_task(&sharded.claim().unwrap(), false);
/// assert_eq!((shared.snapshot(), sharded.snapshot()), ((0, 1, 0), (0, 0, 1)));
/// ```
pub trait ExecutorCounters {
    /// A task started.
    fn inc_active(&self);
    /// A task completed.
    fn inc_completed(&self);
    /// A task failed.
    fn inc_failed(&self);
}

macro_rules! counters_by_inherent_methods {
    ($(impl$([$($generics:tt)*])? for $ty:ty;)*) => {
        $(
            impl$(<$($generics)*>)? ExecutorCounters for $ty {
                #[inline]
                fn inc_active(&self) {
                    <$ty>::inc_active(self)
                }
                #[inline]
                fn inc_completed(&self) {
                    <$ty>::inc_completed(self)
                }
                #[inline]
                fn inc_failed(&self) {
                    <$ty>::inc_failed(self)
                }
            }
        )*
    };
}

counters_by_inherent_methods! {
    impl for ExecutorStats;
    impl['s, const N: usize] for ShardWriter<'s, N>;
    impl['s, const N: usize] for SharedWriter<'s, N>;
}

/// Formats `(active, completed, failed)` with their names.
fn debug_counts(
    (active, completed, failed): (u64, u64, u64),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    f.debug_struct("ExecutorStats")
        .field("active", &active)
        .field("completed", &completed)
        .field("failed", &failed)
        .finish()
}

/// Executor statistics, each counter on its own cache line.
///
/// `inc_completed` and `inc_failed` move a task out of `active`; `active`
/// never drops below zero (finishing more tasks than were started leaves it
/// at 0).
///
/// ```
/// use knhk_core::counters::ExecutorStats;
///
/// let executor = ExecutorStats::new();
/// executor.inc_active();
/// executor.inc_completed();
/// executor.inc_failed();
/// assert_eq!(executor.snapshot(), (0, 1, 1));
/// ```
///
/// A snapshot taken while other threads write reads each counter once,
/// independently: every value is one the counter really held, but the three
/// need not be from the same instant.
pub struct ExecutorStats {
    active: CachePadded<AtomicU64>,
    completed: CachePadded<AtomicU64>,
    failed: CachePadded<AtomicU64>,
}

impl ExecutorStats {
    /// All counters at zero.
    pub const fn new() -> ExecutorStats {
        ExecutorStats {
            active: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            failed: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// A task started.
    #[inline]
    pub fn inc_active(&self) {
        self.active.fetch_add(1, Relaxed);
    }

    /// A task completed: `active - 1` (not below zero), `completed + 1`.
    #[inline]
    pub fn inc_completed(&self) {
        self.leave_active();
        self.completed.fetch_add(1, Relaxed);
    }

    /// A task failed: `active - 1` (not below zero), `failed + 1`.
    #[inline]
    pub fn inc_failed(&self) {
        self.leave_active();
        self.failed.fetch_add(1, Relaxed);
    }

    #[inline]
    fn leave_active(&self) {
        // A compare-and-swap loop instead of `fetch_sub`, so that `active`
        // is never seen wrapped around to u64::MAX, even for an instant.
        let _ = self
            .active
            .fetch_update(Relaxed, Relaxed, |active| active.checked_sub(1));
    }

    /// `(active, completed, failed)`, as the design document returns them.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.active.load(Relaxed),
            self.completed.load(Relaxed),
            self.failed.load(Relaxed),
        )
    }
}

impl Default for ExecutorStats {
    fn default() -> Self {
        ExecutorStats::new()
    }
}

impl fmt::Debug for ExecutorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_counts(self.snapshot(), f)
    }
}

/// A shard's cells, all zero: what [`Sharded`] is made of.
trait Zeroed {
    // Each use makes a fresh value (the arrays below are built from it),
    // which is what a shard wants; no shared state hides in the constant.
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self;
}

/// The mechanism under both sharded types: `N` padded shards of `S`, a
/// claim flag for each, and one shared, contended shard for writers
/// without one of their own.
struct Sharded<S, const N: usize> {
    shards: [CachePadded<S>; N],
    claims: [AtomicBool; N],
    shared: CachePadded<S>,
}

impl<S: Zeroed, const N: usize> Sharded<S, N> {
    const fn new() -> Self {
        Sharded {
            shards: [const { CachePadded::new(S::ZERO) }; N],
            claims: [const { AtomicBool::new(false) }; N],
            shared: CachePadded::new(S::ZERO),
        }
    }
}

impl<S, const N: usize> Sharded<S, N> {
    /// Claims a free shard (Acquire: its last writer's counts are
    /// visible); the claim is freed when the returned writer drops.
    fn claim(&self) -> Option<Claim<'_, S, N>> {
        let index = self
            .claims
            .iter()
            .position(|flag| flag.compare_exchange(false, true, Acquire, Relaxed).is_ok())?;
        Some(Claim {
            sharded: self,
            index,
            owns_claim: true,
            _not_sync: PhantomData,
        })
    }

    /// A writer of shard `index` that holds no claim; `None` past `N`. The
    /// caller answers for it being the shard's only writer (see the public
    /// `writer_unchecked`s).
    fn unclaimed(&self, index: usize) -> Option<Claim<'_, S, N>> {
        (index < N).then_some(Claim {
            sharded: self,
            index,
            owns_claim: false,
            _not_sync: PhantomData,
        })
    }

    /// Every shard, the shared one last.
    fn all(&self) -> impl Iterator<Item = &S> {
        self.shards.iter().map(|s| &**s).chain([&*self.shared])
    }
}

/// The one writer of a shard of a [`Sharded`]: `Send` (a worker may hand
/// it on) but not `Sync`, so only one thread at a time writes through it.
struct Claim<'s, S, const N: usize> {
    sharded: &'s Sharded<S, N>,
    index: usize,
    owns_claim: bool,
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl<S, const N: usize> Claim<'_, S, N> {
    #[inline(always)]
    fn shard(&self) -> &S {
        &self.sharded.shards[self.index]
    }
}

impl<S, const N: usize> Drop for Claim<'_, S, N> {
    fn drop(&mut self) {
        if self.owns_claim {
            // Release: the next claimer sees this writer's counts.
            self.sharded.claims[self.index].store(false, Release);
        }
    }
}

/// Adds `n` to a counter only its owner stores to: a relaxed load and
/// store lose nothing, and readers see either value.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One writer's counts. All three share a line: only their owner writes.
struct Shard {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
}

impl Zeroed for Shard {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Shard = Shard {
        started: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
}

impl Zeroed for AtomicU64 {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: AtomicU64 = AtomicU64::new(0);
}

/// Executor statistics split into `N` shards, one per writer.
///
/// A writer ([`ShardWriter`]) owns its shard and bumps it with a relaxed
/// load and a relaxed store: no locked instruction and no cache line shared
/// with another writer. Get one with [`claim`](Self::claim) (bare metal, or
/// any fixed set of workers); knhk-std hands each thread one automatically.
/// Writers beyond `N` use [`shared`](Self::shared), an exact but contended
/// shard updated with atomic read-modify-writes.
///
/// ```
/// use knhk_core::counters::ShardedExecutorStats;
///
/// let stats = ShardedExecutorStats::<4>::new();
/// let writer = stats.claim().expect("a shard is free");
/// writer.inc_active();
/// writer.inc_completed();
/// writer.inc_failed();
/// assert_eq!(stats.snapshot(), (0, 1, 1));
/// ```
///
/// # What a snapshot guarantees while writers run
///
/// Every count is read with one relaxed load per shard. So each total is at
/// least what any earlier snapshot from the same thread saw (counts only
/// grow) and at most the true total at the end of the read; increments that
/// are in flight may or may not be included. `active` is computed as
/// started minus finished, clamped at zero, so a task whose completion is
/// seen before its start does not make it wrap. Once writers stop (for
/// example, after joining the worker threads), a snapshot is exact.
pub struct ShardedExecutorStats<const N: usize> {
    sharded: Sharded<Shard, N>,
}

impl<const N: usize> ShardedExecutorStats<N> {
    /// All counters at zero, no shard claimed.
    pub const fn new() -> Self {
        ShardedExecutorStats {
            sharded: Sharded::new(),
        }
    }

    /// Claims a free shard, or `None` when all `N` are taken. The shard is
    /// released when the writer is dropped; its counts stay.
    pub fn claim(&self) -> Option<ShardWriter<'_, N>> {
        self.sharded.claim().map(|claim| ShardWriter { claim })
    }

    /// A writer for shard `index`, without claiming it; `None` if `index`
    /// is not below `N`.
    ///
    /// # Safety
    ///
    /// While the writer lives, no other writer for `index` may be used on
    /// another thread (two writers on one thread, one at a time, are fine),
    /// `index` must not be [`claim`](Self::claim)ed, and every earlier
    /// writer of `index` (on another thread) must happen before this one
    /// (a release/acquire hand-off, as knhk-std's thread slots make): the
    /// writer's relaxed load and store would otherwise lose counts. Every
    /// access is atomic, so breaking this loses counts, never memory
    /// safety; `unsafe` marks that the counts' exactness rests on it.
    pub unsafe fn writer_unchecked(&self, index: usize) -> Option<ShardWriter<'_, N>> {
        self.sharded
            .unclaimed(index)
            .map(|claim| ShardWriter { claim })
    }

    /// The contended shard, for writers without a shard of their own:
    /// exact, but every update is an atomic read-modify-write.
    pub fn shared(&self) -> SharedWriter<'_, N> {
        SharedWriter {
            shard: &self.sharded.shared,
        }
    }

    /// `(active, completed, failed)` summed over all shards.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        let (mut started, mut completed, mut failed) = (0_u64, 0_u64, 0_u64);
        for shard in self.sharded.all() {
            // Relaxed loads of different counters may be seen out of
            // order, so a task's finish can be counted before its start:
            // `active` is clamped at zero below for that.
            completed = completed.wrapping_add(shard.completed.load(Relaxed));
            failed = failed.wrapping_add(shard.failed.load(Relaxed));
            started = started.wrapping_add(shard.started.load(Relaxed));
        }
        (
            started.saturating_sub(completed.wrapping_add(failed)),
            completed,
            failed,
        )
    }
}

impl<const N: usize> Default for ShardedExecutorStats<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ShardedExecutorStats<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_counts(self.snapshot(), f)
    }
}

/// The one writer of a shard of [`ShardedExecutorStats`].
///
/// `Send` (a worker may hand it on) but not `Sync`: only one thread at a
/// time writes through it.
pub struct ShardWriter<'s, const N: usize> {
    claim: Claim<'s, Shard, N>,
}

impl<const N: usize> ShardWriter<'_, N> {
    /// A task started.
    #[inline]
    pub fn inc_active(&self) {
        bump(&self.claim.shard().started, 1);
    }

    /// A task completed.
    #[inline]
    pub fn inc_completed(&self) {
        bump(&self.claim.shard().completed, 1);
    }

    /// A task failed.
    #[inline]
    pub fn inc_failed(&self) {
        bump(&self.claim.shard().failed, 1);
    }

    /// The shard's index.
    pub fn index(&self) -> usize {
        self.claim.index
    }
}

/// A writer of the contended shared shard; see
/// [`ShardedExecutorStats::shared`].
#[derive(Clone, Copy)]
pub struct SharedWriter<'s, const N: usize> {
    shard: &'s Shard,
}

impl<const N: usize> SharedWriter<'_, N> {
    /// A task started.
    #[inline]
    pub fn inc_active(&self) {
        self.shard.started.fetch_add(1, Relaxed);
    }

    /// A task completed.
    #[inline]
    pub fn inc_completed(&self) {
        self.shard.completed.fetch_add(1, Relaxed);
    }

    /// A task failed.
    #[inline]
    pub fn inc_failed(&self) {
        self.shard.failed.fetch_add(1, Relaxed);
    }
}

/// One counter split into `N` padded shards, for the hottest single counts
/// (tasks dispatched, bytes processed). Same rules as
/// [`ShardedExecutorStats`]: one writer per shard, load + store.
///
/// ```
/// use knhk_core::counters::ShardedCounter;
///
/// let dispatched = ShardedCounter::<2>::new();
/// let mine = dispatched.claim().unwrap();
/// for _ in 0..10 {
///     mine.add(1);
/// }
/// assert_eq!(dispatched.sum(), 10);
/// ```
pub struct ShardedCounter<const N: usize> {
    sharded: Sharded<AtomicU64, N>,
}

impl<const N: usize> ShardedCounter<N> {
    /// Zero, no shard claimed.
    pub const fn new() -> Self {
        ShardedCounter {
            sharded: Sharded::new(),
        }
    }

    /// Claims a free shard, or `None` when all `N` are taken.
    pub fn claim(&self) -> Option<CounterShard<'_, N>> {
        self.sharded.claim().map(|claim| CounterShard { claim })
    }

    /// A writer for shard `index` without claiming it; `None` if `index` is
    /// not below `N`.
    ///
    /// # Safety
    ///
    /// As for [`ShardedExecutorStats::writer_unchecked`].
    pub unsafe fn writer_unchecked(&self, index: usize) -> Option<CounterShard<'_, N>> {
        self.sharded
            .unclaimed(index)
            .map(|claim| CounterShard { claim })
    }

    /// Adds `n` through the contended shared shard (an atomic `fetch_add`).
    #[inline]
    pub fn add_shared(&self, n: u64) {
        self.sharded.shared.fetch_add(n, Relaxed);
    }

    /// The total over all shards (see [`ShardedExecutorStats`] for what it
    /// guarantees while writers run).
    pub fn sum(&self) -> u64 {
        self.sharded
            .all()
            .fold(0_u64, |sum, s| sum.wrapping_add(s.load(Relaxed)))
    }
}

impl<const N: usize> Default for ShardedCounter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ShardedCounter<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.sum()).finish()
    }
}

/// The one writer of a shard of [`ShardedCounter`]. `Send`, not `Sync`.
pub struct CounterShard<'c, const N: usize> {
    claim: Claim<'c, AtomicU64, N>,
}

impl<const N: usize> CounterShard<'_, N> {
    /// Adds `n` with a relaxed load and store.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        bump(self.claim.shard(), n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn seed_snippet_values() {
        let executor = ExecutorStats::new();
        executor.inc_active();
        executor.inc_completed();
        executor.inc_failed();
        assert_eq!(executor.snapshot(), (0, 1, 1));
        executor.inc_active();
        assert_eq!(
            executor.snapshot(),
            (1, 1, 1),
            "clamping does not carry a debt"
        );
    }

    #[test]
    fn counters_sit_on_separate_lines() {
        let s = ExecutorStats::new();
        let a = &*s.active as *const AtomicU64 as usize;
        let c = &*s.completed as *const AtomicU64 as usize;
        let f = &*s.failed as *const AtomicU64 as usize;
        let pad = crate::cache::PADDED_ALIGN;
        assert!(c - a >= pad && f - c >= pad);
    }

    #[test]
    fn four_threads_give_exact_totals() {
        const PER_THREAD: u64 = if cfg!(miri) { 200 } else { 100_000 };
        let stats = Arc::new(ExecutorStats::new());
        let sharded = Arc::new(ShardedExecutorStats::<4>::new());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (stats, sharded) = (Arc::clone(&stats), Arc::clone(&sharded));
                std::thread::spawn(move || {
                    let writer = sharded.claim().expect("four shards for four threads");
                    for i in 0..PER_THREAD {
                        stats.inc_active();
                        writer.inc_active();
                        if (i + t) % 10 == 0 {
                            stats.inc_failed();
                            writer.inc_failed();
                        } else {
                            stats.inc_completed();
                            writer.inc_completed();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total = 4 * PER_THREAD;
        let failed = total / 10;
        assert_eq!(stats.snapshot(), (0, total - failed, failed));
        assert_eq!(sharded.snapshot(), (0, total - failed, failed));
    }

    #[test]
    fn claims_are_exclusive_and_released_on_drop() {
        let stats = ShardedExecutorStats::<2>::new();
        let a = stats.claim().unwrap();
        let b = stats.claim().unwrap();
        assert_ne!(a.index(), b.index());
        assert!(stats.claim().is_none());
        a.inc_active();
        drop(a);
        let c = stats.claim().unwrap();
        c.inc_completed();
        stats.shared().inc_active();
        stats.shared().inc_failed();
        assert_eq!(stats.snapshot(), (0, 1, 1));
        // SAFETY: index 5 is out of range, so no writer is made.
        assert!(unsafe { stats.writer_unchecked(5) }.is_none());
    }

    #[test]
    fn sharded_counter_sums_claimed_and_shared() {
        let counter = ShardedCounter::<2>::new();
        {
            let shard = counter.claim().unwrap();
            shard.add(5);
        }
        counter.add_shared(3);
        assert_eq!(counter.sum(), 8);
        assert_eq!(format!("{counter:?}"), "ShardedCounter(8)");
    }
}
