//! [`ResourcePool`]: a bounded pool of reusable arenas, whose common case
//! (a thread checking out the arena it returned last) takes no lock and
//! executes no locked instruction.
//!
//! # How it works
//!
//! Each thread has a *perch* in each pool: one slot where it parks the
//! arena it returns, to take it again at its next checkout. The perch is
//! read and written by its thread with plain loads and stores, inside a
//! `busy` flag. Any other thread that would otherwise have to wait may
//! *steal* a parked arena, so none is stranded with an idle or exited
//! thread. Thieves hold the pool's mutex (one at a time) and announce
//! themselves in `stealing`. The two sides meet in a Dekker handshake:
//!
//! - owner: `busy = true; light(); if stealing { back off } ... busy = false`
//! - thief: `stealing = true; heavy(); if busy { skip } else { take }`
//!
//! where `light` is a compiler fence and `heavy` a
//! `membarrier(2)` system call (both real fences where that is missing).
//! The barrier pair guarantees that the owner sees the thief or the thief
//! sees the owner, so an arena is never handed to two threads. An owner
//! that backs off goes through the mutex, where no thief can run.
//!
//! A return parks the arena with a plain store (no `busy` section: only
//! the owner fills a perch, and a thief may take what lands there at once)
//! and then checks `waiting`; a waiter raises `waiting` before it steals.
//! The same barrier pair makes sure that either the waiter sees the parked
//! arena, or the returning thread sees the waiter and moves the arena to
//! the shared list, which wakes it.

use std::alloc::Layout;
use std::fmt;
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use knhk_core::arena::Arena as CoreArena;
use knhk_core::cache::CachePadded;

use barrier::Asymmetric;

use crate::arena::{ArenaError, HeapBuffer, DEFAULT_CAPACITY};
use crate::thread_slot::{self, SLOTS};

mod barrier;

/// How long a waiter sleeps before looking again when a steal could not
/// be synchronised (a failed membarrier, which should not happen).
const REPOLL: Duration = Duration::from_millis(10);

struct Shared {
    idle: Vec<HeapBuffer>,
    /// Arenas in existence: idle, parked, or checked out.
    live: usize,
}

/// What a thief found.
enum Steal {
    Took(NonNull<u8>),
    Nothing,
    /// The heavy barrier failed, so the perches were not looked at.
    Unsynchronised,
}

/// One thread's parking place in one pool.
struct Perch {
    /// The buffer of the arena this thread returned last (from
    /// `HeapBuffer::into_raw`, with the pool's layout), or null. Only the
    /// owning thread makes it non-null; the owner, or a thief holding the
    /// pool's mutex, makes it null.
    parked: AtomicPtr<u8>,
    /// Set by the owner while it takes from `parked` without the mutex.
    busy: AtomicBool,
}

/// Written on the rare path, read on every checkout and return.
struct Signals {
    /// A thief, holding the mutex, is looking through the perches.
    stealing: AtomicBool,
    /// Threads blocked in `checkout`. Returns notify only when there are
    /// some (std's `Condvar::notify_one` makes a system call even when
    /// nobody waits).
    waiting: AtomicUsize,
}

/// Sizes of the resource registry's arena pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Idle arenas a pool keeps in its shared list for reuse (more are freed
    /// when returned); arenas parked with a thread come on top, within
    /// `max_pools`.
    pub default_pool_size: usize,
    /// Most arenas a pool has at once, checked out or idle; a checkout
    /// beyond it waits for a return.
    pub max_pools: usize,
    /// Bytes per arena.
    pub arena_capacity: usize,
}

impl Default for ResourceConfig {
    /// One idle arena per CPU, up to four per CPU in all, of
    /// [`DEFAULT_CAPACITY`] (1 MiB) each.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        ResourceConfig {
            default_pool_size: cpus,
            max_pools: 4 * cpus,
            arena_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// A bounded pool of reusable arenas.
///
/// Workers [`checkout`](Self::checkout) an arena, use it for a batch, and
/// drop the guard, which resets the arena (dropping what it holds) and puts
/// it back. At most `max` arenas exist at once; a checkout beyond that
/// blocks until one returns (a condition variable, not a spin, so it is
/// right when threads outnumber cores). Each arena is handed to one worker
/// at a time. `Send + Sync`: share it by reference or in an `Arc`.
///
/// The common case is cheap: each thread parks the arena it returns in a
/// perch of its own and takes it back at its next checkout, with plain
/// loads and stores (no lock, no atomic read-modify-write). The shared
/// list, under a mutex, serves the rest; a checkout that would block first
/// takes arenas parked with other threads (exited ones included), so none
/// is stranded. On Linux the rare path pays a `membarrier(2)` system call
/// (about a microsecond) for the common path's freedom from fences; see
/// the module source for the protocol. The perches take 32 KiB per pool:
/// a padded line pair for each of up to 256 threads at once (an exiting
/// thread hands its perch, and what is parked there, to a later one);
/// threads beyond that use the shared list.
///
/// ```
/// use knhk_std::pool::ResourcePool;
///
/// let pool = ResourcePool::new(64 * 1024, 2, 4)?;
/// {
///     let arena = pool.checkout()?;
///     let name = arena.alloc_str("task-7")?;
///     assert_eq!(&*name, "task-7");
/// } // reset and returned here
/// assert_eq!((pool.idle(), pool.live()), (1, 1));
/// # Ok::<(), knhk_std::arena::ArenaError>(())
/// ```
pub struct ResourcePool {
    shared: Mutex<Shared>,
    returned: Condvar,
    signals: CachePadded<Signals>,
    /// One perch per thread slot.
    perches: Box<[CachePadded<Perch>; SLOTS]>,
    /// The owners' and thieves' barriers.
    barriers: Asymmetric,
    /// Every arena's buffer has this layout.
    layout: Layout,
    arena_capacity: usize,
    keep: usize,
    max: usize,
}

impl ResourcePool {
    /// A pool of arenas of `arena_capacity` bytes that has at most `max`
    /// (at least 1) at once and keeps up to `keep` idle in its shared list;
    /// arenas parked with a thread (one per thread) also stay, within
    /// `max`. No arena is made until the first checkout.
    pub fn new(arena_capacity: usize, keep: usize, max: usize) -> Result<ResourcePool, ArenaError> {
        ResourcePool::with_barriers(arena_capacity, keep, max, Asymmetric::new())
    }

    fn with_barriers(
        arena_capacity: usize,
        keep: usize,
        max: usize,
        barriers: Asymmetric,
    ) -> Result<ResourcePool, ArenaError> {
        let layout = HeapBuffer::layout_for(arena_capacity)?;
        let max = max.max(1);
        Ok(ResourcePool {
            shared: Mutex::new(Shared {
                idle: Vec::with_capacity(keep.min(max)),
                live: 0,
            }),
            returned: Condvar::new(),
            signals: CachePadded::new(Signals {
                stealing: AtomicBool::new(false),
                waiting: AtomicUsize::new(0),
            }),
            perches: Box::new(std::array::from_fn(|_| {
                CachePadded::new(Perch {
                    parked: AtomicPtr::new(ptr::null_mut()),
                    busy: AtomicBool::new(false),
                })
            })),
            barriers,
            layout,
            arena_capacity,
            keep: keep.min(max),
            max,
        })
    }

    /// A pool sized by `config`.
    pub fn with_config(config: &ResourceConfig) -> Result<ResourcePool, ArenaError> {
        ResourcePool::new(
            config.arena_capacity,
            config.default_pool_size,
            config.max_pools,
        )
    }

    /// An arena for one batch, waiting for a return if `max` are out.
    /// Fails only if a new arena's memory cannot be allocated.
    #[inline]
    pub fn checkout(&self) -> Result<PooledArena<'_>, ArenaError> {
        let perch = self.own_perch();
        // Both paths yield a bare pointer and the guard is built once, here:
        // that keeps the common path's values in registers.
        let buffer = match perch.and_then(|perch| self.take_own(perch)) {
            Some(buffer) => buffer,
            None => match self.checkout_slow(perch, true) {
                Some(result) => result?,
                None => unreachable!("a waiting checkout returns an arena or an error"),
            },
        };
        Ok(PooledArena::new(self, buffer, perch))
    }

    /// An arena if one is free now (or may be made); `None` if `max` are
    /// out. Never waits.
    pub fn try_checkout(&self) -> Option<Result<PooledArena<'_>, ArenaError>> {
        let perch = self.own_perch();
        let buffer = match perch.and_then(|perch| self.take_own(perch)) {
            Some(buffer) => Ok(buffer),
            None => self.checkout_slow(perch, false)?,
        };
        Some(buffer.map(|buffer| PooledArena::new(self, buffer, perch)))
    }

    #[inline(always)]
    fn own_perch(&self) -> Option<&Perch> {
        thread_slot::current().and_then(|i| self.perches.get(i).map(|p| &**p))
    }

    /// The buffer in this thread's own perch, taken without the mutex.
    #[inline(always)]
    fn take_own(&self, perch: &Perch) -> Option<NonNull<u8>> {
        // Only this thread makes the perch non-null: null stays null.
        if perch.parked.load(Relaxed).is_null() {
            return None;
        }
        perch.busy.store(true, Relaxed);
        self.barriers.light();
        let taken = if self.signals.stealing.load(Acquire) {
            ptr::null_mut() // a thief is looking: go through the mutex
        } else {
            let parked = perch.parked.load(Relaxed);
            perch.parked.store(ptr::null_mut(), Relaxed);
            parked
        };
        perch.busy.store(false, Release);
        // No thief takes what we took: a thief that started before our
        // `busy` store was seen by the `stealing` load (we backed off), and
        // one that starts after sees `busy` and skips this perch (the
        // light/heavy barrier pair orders the two flags).
        NonNull::new(taken)
    }

    /// The perch's buffer, taken under the mutex (so no thief runs; the
    /// only other party, the owner, is the caller or excluded by `busy`).
    fn take_locked(perch: &Perch) -> Option<NonNull<u8>> {
        NonNull::new(perch.parked.swap(ptr::null_mut(), Acquire))
    }

    /// Takes an arena parked with some thread whose owner is not using its
    /// perch right now. The caller holds the mutex.
    fn steal(&self, _held: &MutexGuard<'_, Shared>) -> Steal {
        self.signals.stealing.store(true, Relaxed);
        let mut found = Steal::Nothing;
        if !self.barriers.heavy() {
            found = Steal::Unsynchronised;
        } else {
            for perch in &self.perches[..thread_slot::assigned()] {
                if perch.busy.load(Acquire) {
                    continue; // its owner is taking or parking right now
                }
                if let Some(buffer) = Self::take_locked(perch) {
                    found = Steal::Took(buffer);
                    break;
                }
            }
        }
        self.signals.stealing.store(false, Release);
        found
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The state is a Vec and a count, consistent between statements, so
        // a panic elsewhere while the lock was held cannot corrupt it.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cold]
    #[inline(never)]
    fn checkout_slow(
        &self,
        perch: Option<&Perch>,
        wait: bool,
    ) -> Option<Result<NonNull<u8>, ArenaError>> {
        let mut shared = self.lock();
        loop {
            if let Some(buffer) = perch.and_then(Self::take_locked) {
                return Some(Ok(buffer));
            }
            if let Some(buffer) = shared.idle.pop() {
                return Some(Ok(buffer.into_raw()));
            }
            if shared.live < self.max {
                shared.live += 1;
                drop(shared);
                return Some(match HeapBuffer::with_layout(self.layout) {
                    Ok(buffer) => Ok(buffer.into_raw()),
                    Err(e) => {
                        self.lock().live -= 1;
                        if self.signals.waiting.load(SeqCst) > 0 {
                            self.returned.notify_one();
                        }
                        Err(e)
                    }
                });
            }
            if !wait {
                return match self.steal(&shared) {
                    Steal::Took(buffer) => Some(Ok(buffer)),
                    Steal::Nothing | Steal::Unsynchronised => None,
                };
            }
            // About to wait: announce it, then look in every perch. A
            // return parks its arena and then checks `waiting`, so either
            // it sees this waiter and brings the arena to the shared list,
            // or this steal sees the parked arena.
            self.signals.waiting.fetch_add(1, SeqCst);
            shared = match self.steal(&shared) {
                Steal::Took(buffer) => {
                    self.signals.waiting.fetch_sub(1, SeqCst);
                    return Some(Ok(buffer));
                }
                Steal::Nothing => self
                    .returned
                    .wait(shared)
                    .unwrap_or_else(PoisonError::into_inner),
                // The perches could not be read safely: sleep with a
                // deadline and look again.
                Steal::Unsynchronised => {
                    self.returned
                        .wait_timeout(shared, REPOLL)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            self.signals.waiting.fetch_sub(1, SeqCst);
        }
    }

    /// Takes back `buffer` from a guard on the thread whose `perch` (if it
    /// has one) this is.
    #[inline]
    fn give_back(&self, buffer: NonNull<u8>, perch: Option<&Perch>) {
        // Parking needs no `busy` section: only this thread makes the perch
        // non-null, and a thief that takes the arena the moment it lands
        // is welcome to it (its swap reads the latest value, so nothing is
        // lost). The `Release` store hands the reset arena over.
        if let Some(perch) = perch.filter(|perch| perch.parked.load(Relaxed).is_null()) {
            perch.parked.store(buffer.as_ptr(), Release);
            self.barriers.light();
            if self.signals.waiting.load(Relaxed) > 0 {
                self.hand_to_waiter(perch);
            }
            return;
        }
        self.return_shared(buffer);
    }

    /// Someone waits: move what this thread just parked to the shared list
    /// (unless a thief already took it), which wakes a waiter.
    #[cold]
    #[inline(never)]
    fn hand_to_waiter(&self, perch: &Perch) {
        let shared = self.lock();
        if let Some(buffer) = Self::take_locked(perch) {
            self.shelve(shared, buffer);
        }
    }

    #[cold]
    #[inline(never)]
    fn return_shared(&self, buffer: NonNull<u8>) {
        self.shelve(self.lock(), buffer);
    }

    /// Keeps `buffer` in the shared list if there is room (freeing it
    /// otherwise, after the lock is released), then wakes a waiter if
    /// there is one.
    fn shelve(&self, mut shared: MutexGuard<'_, Shared>, buffer: NonNull<u8>) {
        // SAFETY: every buffer the pool hands out or parks came from
        // `HeapBuffer::into_raw` with `self.layout`, and its one holder
        // passes it here once.
        let buffer = unsafe { HeapBuffer::from_raw(buffer, self.layout) };
        let freed = if shared.idle.len() < self.keep {
            shared.idle.push(buffer);
            None
        } else {
            shared.live -= 1;
            Some(buffer)
        };
        drop(shared);
        drop(freed); // freed outside the lock
        if self.signals.waiting.load(SeqCst) > 0 {
            self.returned.notify_one();
        }
    }

    fn parked_count(&self) -> usize {
        self.perches
            .iter()
            .filter(|perch| !perch.parked.load(Acquire).is_null())
            .count()
    }

    /// Idle arenas now (in the shared list or parked with a thread).
    pub fn idle(&self) -> usize {
        self.lock().idle.len() + self.parked_count()
    }

    /// Arenas in existence now, idle or checked out.
    pub fn live(&self) -> usize {
        self.lock().live
    }

    /// Bytes per arena.
    pub fn arena_capacity(&self) -> usize {
        self.arena_capacity
    }
}

impl Drop for ResourcePool {
    fn drop(&mut self) {
        for perch in self.perches.iter_mut() {
            if let Some(parked) = NonNull::new(*perch.parked.get_mut()) {
                // SAFETY: parked buffers came from `HeapBuffer::into_raw`
                // with `self.layout`; `&mut self` means no other thread can
                // reach the perch.
                drop(unsafe { HeapBuffer::from_raw(parked, self.layout) });
            }
        }
    }
}

impl fmt::Debug for ResourcePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("ResourcePool")
            .field("arena_capacity", &self.arena_capacity)
            .field("idle", &(shared.idle.len() + self.parked_count()))
            .field("live", &shared.live)
            .field("max", &self.max)
            .finish()
    }
}

/// An arena checked out of a [`ResourcePool`]; the core arena's API through
/// `Deref`. Dropping it resets the arena and returns it to the pool.
pub struct PooledArena<'p> {
    // Dropped (with its values) in `drop` before the buffer goes back.
    arena: std::mem::ManuallyDrop<CoreArena<'p>>,
    /// The arena's memory, owned by this guard (from `HeapBuffer::into_raw`
    /// with the pool's layout).
    buffer: NonNull<u8>,
    pool: &'p ResourcePool,
    /// The checking-out thread's perch. The guard is not `Send` (the core
    /// arena is not), so it is dropped on that same thread.
    perch: Option<&'p Perch>,
}

impl<'p> PooledArena<'p> {
    #[inline(always)]
    fn new(
        pool: &'p ResourcePool,
        buffer: NonNull<u8>,
        perch: Option<&'p Perch>,
    ) -> PooledArena<'p> {
        // SAFETY: the buffer is valid for the pool's layout and this guard's
        // alone (the pool hands a buffer to one guard at a time) until `drop`
        // gives it back, after dropping the arena.
        let arena = unsafe { CoreArena::from_raw_parts(buffer.as_ptr(), pool.layout.size()) };
        PooledArena {
            arena: std::mem::ManuallyDrop::new(arena),
            buffer,
            pool,
            perch,
        }
    }

    /// Frees everything allocated so far, keeping the arena checked out.
    pub fn reset(&mut self) {
        self.arena.reset();
    }
}

impl<'p> Deref for PooledArena<'p> {
    type Target = CoreArena<'p>;

    #[inline(always)]
    fn deref(&self) -> &CoreArena<'p> {
        &self.arena
    }
}

impl Drop for PooledArena<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, and not used afterwards.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.arena) };
        self.pool.give_back(self.buffer, self.perch);
    }
}

impl fmt::Debug for PooledArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.arena, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    #[test]
    fn pools_never_hand_one_arena_to_two_workers_and_stay_bounded() {
        let pool = ResourcePool::new(4096, 2, 3).unwrap();
        let in_use = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..8_u64 {
                let (pool, in_use, most) = (&pool, &in_use, &most);
                s.spawn(move || {
                    for batch in 0..50_u64 {
                        let arena = pool.checkout().unwrap();
                        let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Nobody else writes this arena while we hold it.
                        let mark = arena.alloc([t, batch, 0, 0]).unwrap();
                        std::thread::yield_now();
                        assert_eq!(mark[..2], [t, batch]);
                        assert_eq!(arena.used(), 32, "the arena came back reset");
                        in_use.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        // Parked arenas (one per thread slot) may keep more than `keep`
        // idle, never more than `max` in all.
        assert!(pool.live() <= 3 && pool.idle() <= 3);
        assert!(pool.try_checkout().is_some());
    }

    #[test]
    fn owners_and_thieves_never_share_an_arena() {
        owners_and_thieves_race(ResourcePool::new(256, 0, 2).unwrap());
    }

    #[test]
    fn owners_and_thieves_never_share_an_arena_with_plain_fences() {
        let pool = ResourcePool::with_barriers(256, 0, 2, Asymmetric::symmetric()).unwrap();
        owners_and_thieves_race(pool);
    }

    #[test]
    fn threads_that_come_later_inherit_the_perches_of_exited_ones() {
        // One arena, none kept in the shared list: an arena returned by a
        // thread without a perch would be freed. Each of more threads than
        // there are perches finds one (handed on by an exited thread), so
        // the one arena stays parked and is reused by every thread.
        let pool = ResourcePool::new(4096, 0, 1).unwrap();
        for batch in 0..SLOTS as u64 + 8 {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let arena = pool.checkout().unwrap();
                    assert_eq!(arena.used(), 0, "the arena came back reset");
                    arena.alloc(batch).unwrap();
                })
                .join()
                .unwrap();
            });
            assert_eq!((pool.live(), pool.idle()), (1, 1), "batch {batch}");
        }
    }

    #[test]
    fn nested_checkouts_on_one_thread_get_distinct_arenas() {
        let pool = ResourcePool::new(4096, 2, 2).unwrap();
        drop(pool.checkout().unwrap()); // parked in this thread's perch
        let first = pool.checkout().unwrap(); // taken from the perch
        let second = pool.checkout().unwrap(); // a nested checkout
        let (a, b) = (first.alloc(1_u8).unwrap(), second.alloc(2_u8).unwrap());
        assert_ne!(
            std::ptr::from_ref(a),
            std::ptr::from_ref(b),
            "one arena, two guards"
        );
        assert!(pool.try_checkout().is_none(), "max is 2 and both are out");
        assert_eq!(pool.idle(), 0, "both arenas are out");
        drop(second); // parked in the empty perch
        drop(first); // the perch is full: to the shared list
        assert_eq!((pool.idle(), pool.live()), (2, 2));
        let again = pool.checkout().unwrap();
        assert_eq!(again.used(), 0, "the arena came back reset");
    }

    #[test]
    fn a_thief_never_takes_what_its_owner_is_taking() {
        owner_against_thief(ResourcePool::new(256, 1, 1).unwrap());
    }

    #[test]
    fn a_thief_never_takes_what_its_owner_is_taking_with_plain_fences() {
        let pool = ResourcePool::with_barriers(256, 1, 1, Asymmetric::symmetric()).unwrap();
        owner_against_thief(pool);
    }

    // Under Miri (which interprets, and explores schedules with
    // -Zmiri-many-seeds) a few rounds cover the handshake; natively many.
    const ROUNDS: usize = if cfg!(miri) { 200 } else { 100_000 };
    const STEALS: usize = if cfg!(miri) { 1 } else { 2_000 };
    const RACERS: usize = if cfg!(miri) { 4 } else { 16 };
    const RACE_ROUNDS: usize = if cfg!(miri) { 25 } else { 2_000 };

    /// One arena. The owner checks it out and back as fast as it can, so
    /// it is nearly always in its perch or in flight; the thief steals it
    /// with `try_checkout` (which does not announce a waiter, so the owner
    /// keeps parking it). Whoever holds the arena must be alone.
    fn owner_against_thief(pool: ResourcePool) {
        let holder = AtomicUsize::new(0);
        let stolen = AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        let hold = |who: usize, arena: &CoreArena<'_>| {
            let claimed = holder.compare_exchange(0, who, Ordering::SeqCst, Ordering::SeqCst);
            assert_eq!(claimed, Ok(0), "the arena was handed to two threads");
            assert_eq!(arena.used(), 0, "the arena came back reset");
            arena.alloc(who).unwrap();
            holder.store(0, Ordering::SeqCst);
        };
        // Whichever thread ends (or panics) first stops the other.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _stop = Stop(&done);
                start.wait();
                let mut rounds = 0;
                while !done.load(Ordering::SeqCst)
                    && (rounds < ROUNDS || stolen.load(Ordering::Relaxed) < STEALS)
                    && std::time::Instant::now() < deadline
                {
                    if let Some(arena) = pool.try_checkout() {
                        hold(1, &arena.unwrap());
                    }
                    rounds += 1;
                }
            });
            s.spawn(|| {
                let _stop = Stop(&done);
                start.wait();
                while !done.load(Ordering::SeqCst) {
                    if let Some(arena) = pool.try_checkout() {
                        hold(2, &arena.unwrap());
                        stolen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        });
        assert!(
            stolen.load(Ordering::Relaxed) > 0,
            "the thief never got the arena"
        );
        assert_eq!((pool.live(), pool.idle()), (1, 1));
    }

    /// Many more threads than arenas: every checkout past the first two
    /// steals from a perch or waits, racing owners that take and park.
    fn owners_and_thieves_race(pool: ResourcePool) {
        let holders = [const { AtomicUsize::new(usize::MAX) }; 2];
        std::thread::scope(|s| {
            for t in 0..RACERS {
                let (pool, holders) = (&pool, &holders);
                s.spawn(move || {
                    for round in 0..RACE_ROUNDS {
                        let arena = pool.checkout().unwrap();
                        let mark = arena.alloc(t).unwrap();
                        // Claim one of two holder places: needing a third
                        // would mean more arenas out than the pool's max.
                        let which = holders
                            .iter()
                            .position(|h| {
                                h.compare_exchange(
                                    usize::MAX,
                                    t,
                                    Ordering::SeqCst,
                                    Ordering::SeqCst,
                                )
                                .is_ok()
                            })
                            .expect("more arenas out than the pool's max");
                        if round % 64 == 0 {
                            std::thread::yield_now();
                        }
                        assert_eq!(*mark, t, "another thread wrote into this arena");
                        assert_eq!(arena.used(), 8, "the arena came back reset");
                        holders[which].store(usize::MAX, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(pool.live() <= 2);
    }

    #[test]
    fn arenas_parked_by_exited_threads_are_taken_not_waited_for() {
        let pool = Arc::new(ResourcePool::new(4096, 1, 1).unwrap());
        // A worker checks the only arena out and returns it: it parks in
        // the worker's slot, and the worker exits.
        let worker = Arc::clone(&pool);
        std::thread::spawn(move || drop(worker.checkout().unwrap()))
            .join()
            .unwrap();
        assert_eq!((pool.live(), pool.idle()), (1, 1));
        // Another thread must get it without blocking forever: run the
        // checkout on a helper and give it a deadline.
        let (done, result) = std::sync::mpsc::channel();
        let helper = Arc::clone(&pool);
        std::thread::spawn(move || {
            let got = helper.checkout().map(|arena| arena.capacity());
            let _ = done.send(got);
        });
        let got = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("checkout blocked although an arena was parked");
        assert_eq!(got, Ok(4096));
        assert_eq!(pool.live(), 1, "no second arena was made");
    }

    #[test]
    fn a_waiting_checkout_wakes_when_an_arena_returns() {
        let pool = Arc::new(ResourcePool::new(4096, 1, 1).unwrap());
        let held = pool.checkout().unwrap();
        let (done, result) = std::sync::mpsc::channel();
        let waiter = Arc::clone(&pool);
        std::thread::spawn(move || {
            let got = waiter.checkout().map(|arena| arena.used());
            let _ = done.send(got);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            result.try_recv().is_err(),
            "the waiter waits while the arena is out"
        );
        drop(held);
        let got = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the waiter was not woken by the return");
        assert_eq!(got, Ok(0));
    }

    #[test]
    fn pooled_arenas_drop_their_values_on_return() {
        let pool = ResourcePool::new(4096, 1, 1).unwrap();
        let marker = Arc::new(());
        {
            let arena = pool.checkout().unwrap();
            arena.alloc(Arc::clone(&marker)).unwrap();
            assert!(pool.try_checkout().is_none(), "max is 1 and it is out");
            assert_eq!(Arc::strong_count(&marker), 2);
        }
        assert_eq!(Arc::strong_count(&marker), 1);
        assert_eq!(
            ResourcePool::new(0, 1, 1).unwrap_err(),
            ArenaError::ZeroCapacity
        );
    }
}
