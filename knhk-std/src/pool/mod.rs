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

use crate::arena::{ArenaError, GrowingArena, HeapBuffer, DEFAULT_CAPACITY};
use crate::thread_slot::{self, SLOTS};

mod barrier;

/// How long a waiter sleeps before looking again when a steal could not
/// be synchronised (a failed membarrier, which should not happen).
const REPOLL: Duration = Duration::from_millis(10);

struct Shared {
    idle: Vec<Idle>,
    /// Arenas in existence: idle, parked, or checked out.
    live: usize,
}

/// An arena's raw handle as a checkout hands it to its guard, with the
/// checking-out thread's perch (if it has one).
type Lent<'p> = (NonNull<u8>, Option<&'p Perch>);

/// An idle arena in the shared list: the raw handle its kind made
/// ([`Arenas::make`]), owned by the list.
struct Idle(NonNull<u8>);

// SAFETY: an idle arena is memory with nothing in it: a buffer (`Send`, as
// `HeapBuffer` is) or a growing arena after its reset, which holds no
// values (so none of their `Drop`s runs on another thread) and whose cells
// nobody else reaches. Moving it to another thread is moving a `Box`.
unsafe impl Send for Idle {}

mod sealed {
    use super::*;

    /// How a pool makes, frees and lends its arenas: each kind hands the
    /// pool its arenas as raw handles, which the perches and the shared
    /// list move between threads.
    pub trait Arenas: Send + Sync + fmt::Debug {
        /// A new arena, as a raw handle.
        fn make(&self) -> Result<NonNull<u8>, ArenaError>;

        /// Frees an idle arena.
        ///
        /// # Safety
        /// `raw` came from [`make`](Self::make) of this value, holds
        /// nothing (it was reset) and is passed here once, after which it
        /// is not used.
        unsafe fn free(&self, raw: NonNull<u8>);
    }
}

use sealed::Arenas;

/// What a [`ResourcePool`]'s arenas are: [`FixedArenas`] (the default) or
/// [`GrowingArenas`]. Sealed: the two are all there is.
pub trait PoolArenas: Arenas {}

/// The arenas of a pool made with [`ResourcePool::new`]: one buffer of a
/// fixed capacity each; an allocation past it gets
/// [`Exhausted`](knhk_core::arena::ArenaError::Exhausted).
#[derive(Debug)]
pub struct FixedArenas {
    /// Every buffer's layout.
    layout: Layout,
    /// The capacity asked for.
    capacity: usize,
}

impl PoolArenas for FixedArenas {}

impl Arenas for FixedArenas {
    fn make(&self) -> Result<NonNull<u8>, ArenaError> {
        Ok(HeapBuffer::with_layout(self.layout)?.into_raw())
    }

    unsafe fn free(&self, raw: NonNull<u8>) {
        // SAFETY: `raw` came from `make`, `HeapBuffer::into_raw` of a
        // buffer with `self.layout`, and is taken back once (the caller's
        // contract).
        drop(unsafe { HeapBuffer::from_raw(raw, self.layout) });
    }
}

/// The arenas of a pool made with [`ResourcePool::growing`]: a
/// [`GrowingArena`] each, which adds chunks as a batch needs them (up to
/// the pool's [`arena_limit`](ResourcePool::arena_limit)) and sizes itself
/// to its recent batches at each return.
#[derive(Debug)]
pub struct GrowingArenas {
    /// Each arena's first chunk, in bytes.
    first_chunk: usize,
    /// The most bytes of chunks each arena may hold.
    limit: usize,
}

impl PoolArenas for GrowingArenas {}

impl Arenas for GrowingArenas {
    fn make(&self) -> Result<NonNull<u8>, ArenaError> {
        let arena = GrowingArena::with_capacity(self.first_chunk)?.with_limit(self.limit);
        let arena = try_box(arena, size_of::<GrowingArena>())?;
        Ok(NonNull::from(Box::leak(arena)).cast())
    }

    unsafe fn free(&self, raw: NonNull<u8>) {
        // SAFETY: `raw` came from `make`, a leaked `Box<GrowingArena>`, and
        // is taken back once (the caller's contract).
        drop(unsafe { Box::from_raw(raw.cast::<GrowingArena>().as_ptr()) });
    }
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
///
/// A pool made with [`growing`](ResourcePool::growing) lends
/// [`GrowingArena`]s instead, which grow past their first chunk rather
/// than refuse a large batch, and size themselves to their recent batches
/// each time they come back.
pub struct ResourcePool<A: PoolArenas = FixedArenas> {
    shared: Mutex<Shared>,
    returned: Condvar,
    signals: CachePadded<Signals>,
    /// One perch per thread slot.
    perches: Box<[CachePadded<Perch>; SLOTS]>,
    /// The owners' and thieves' barriers.
    barriers: Asymmetric,
    /// What the arenas are, and how to make and free them.
    arenas: A,
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
        let arenas = FixedArenas {
            layout: HeapBuffer::layout_for(arena_capacity)?,
            capacity: arena_capacity,
        };
        Ok(ResourcePool::with_arenas(arenas, keep, max, barriers))
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
        let (buffer, perch) = self.checkout_raw()?;
        Ok(PooledArena::new(self, buffer, perch))
    }

    /// An arena if one is free now (or may be made); `None` if `max` are
    /// out. Never waits.
    pub fn try_checkout(&self) -> Option<Result<PooledArena<'_>, ArenaError>> {
        Some(
            self.try_checkout_raw()?
                .map(|(buffer, perch)| PooledArena::new(self, buffer, perch)),
        )
    }

    /// Bytes per arena.
    pub fn arena_capacity(&self) -> usize {
        self.arenas.capacity
    }
}

impl ResourcePool<GrowingArenas> {
    /// A pool of [`GrowingArena`]s, each made with a first chunk of
    /// `first_chunk` bytes, that has at most `max` (at least 1) at once and
    /// keeps up to `keep` idle in its shared list (plus one parked per
    /// thread, within `max`), as [`new`](ResourcePool::new) does.
    ///
    /// A batch larger than an arena's chunk gets a larger chunk instead of
    /// [`Exhausted`](knhk_core::arena::ArenaError::Exhausted); when the arena comes back it
    /// is reset as [`GrowingArena::reset`] does, keeping one chunk sized to
    /// its last [`RESET_HISTORY`](crate::arena::RESET_HISTORY) batches. A
    /// pool of repeating batches thus settles at one chunk per arena and
    /// no heap calls per batch, and after a spike gives the memory back.
    /// No limit unless [`with_arena_limit`](Self::with_arena_limit) sets
    /// one.
    ///
    /// ```
    /// use knhk_std::pool::ResourcePool;
    ///
    /// let pool = ResourcePool::growing(4096, 2, 4)?.with_arena_limit(64 << 20);
    /// for batch in [100, 50_000, 100] {
    ///     let arena = pool.checkout()?;
    ///     for i in 0..batch {
    ///         arena.alloc([i as u64; 4])?; // 50,000 x 32 bytes: past 4096
    ///     }
    ///     assert!(arena.capacity() >= batch * 32);
    /// } // each arena is reset (and resized) as it returns
    /// # Ok::<(), knhk_std::arena::ArenaError>(())
    /// ```
    pub fn growing(
        first_chunk: usize,
        keep: usize,
        max: usize,
    ) -> Result<ResourcePool<GrowingArenas>, ArenaError> {
        // The first chunk's size is checked now, so that a checkout fails
        // only for want of memory.
        HeapBuffer::layout_for(first_chunk)?;
        let arenas = GrowingArenas {
            first_chunk,
            limit: usize::MAX,
        };
        Ok(ResourcePool::with_arenas(
            arenas,
            keep,
            max,
            Asymmetric::new(),
        ))
    }

    /// The same pool, with each arena holding at most `bytes` bytes of
    /// chunks: an allocation that would take an arena past that gets
    /// [`ArenaError::LimitExceeded`]. A first chunk larger than the limit
    /// is cut to it. Call it before the first checkout: arenas made
    /// earlier keep the limit they were made with.
    pub fn with_arena_limit(mut self, bytes: usize) -> ResourcePool<GrowingArenas> {
        self.arenas.limit = bytes;
        self.arenas.first_chunk = self.arenas.first_chunk.min(bytes).max(1);
        self
    }

    /// A growing arena for one batch, waiting for a return if `max` are
    /// out. Fails only if a new arena's first chunk cannot be allocated.
    #[inline]
    pub fn checkout(&self) -> Result<PooledGrowingArena<'_>, ArenaError> {
        Ok(PooledGrowingArena::new(self, self.checkout_raw()?))
    }

    /// A growing arena if one is free now (or may be made); `None` if
    /// `max` are out. Never waits.
    pub fn try_checkout(&self) -> Option<Result<PooledGrowingArena<'_>, ArenaError>> {
        Some(
            self.try_checkout_raw()?
                .map(|lent| PooledGrowingArena::new(self, lent)),
        )
    }

    /// Bytes of each arena's first chunk.
    pub fn first_chunk(&self) -> usize {
        self.arenas.first_chunk
    }

    /// The most bytes of chunks each arena may hold (`usize::MAX` if no
    /// limit was set).
    pub fn arena_limit(&self) -> usize {
        self.arenas.limit
    }
}

impl<A: PoolArenas> ResourcePool<A> {
    fn with_arenas(arenas: A, keep: usize, max: usize, barriers: Asymmetric) -> ResourcePool<A> {
        let max = max.max(1);
        ResourcePool {
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
            arenas,
            keep: keep.min(max),
            max,
        }
    }

    /// An arena's raw handle and this thread's perch, waiting for a return
    /// if `max` are out.
    #[inline(always)]
    fn checkout_raw(&self) -> Result<Lent<'_>, ArenaError> {
        let perch = self.own_perch();
        // Both paths yield a bare pointer and the guard is built once, by
        // the caller: that keeps the common path's values in registers.
        let arena = match perch.and_then(|perch| self.take_own(perch)) {
            Some(arena) => arena,
            None => match self.checkout_slow(perch, true) {
                Some(result) => result?,
                None => unreachable!("a waiting checkout returns an arena or an error"),
            },
        };
        Ok((arena, perch))
    }

    /// As [`checkout_raw`](Self::checkout_raw), but `None` instead of
    /// waiting.
    fn try_checkout_raw(&self) -> Option<Result<Lent<'_>, ArenaError>> {
        let perch = self.own_perch();
        let arena = match perch.and_then(|perch| self.take_own(perch)) {
            Some(arena) => Ok(arena),
            None => self.checkout_slow(perch, false)?,
        };
        Some(arena.map(|arena| (arena, perch)))
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
            if let Some(Idle(arena)) = shared.idle.pop() {
                return Some(Ok(arena));
            }
            if shared.live < self.max {
                shared.live += 1;
                drop(shared);
                return Some(match self.arenas.make() {
                    Ok(arena) => Ok(arena),
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

    /// Keeps the reset arena `buffer` in the shared list if there is room
    /// (freeing it otherwise, after the lock is released), then wakes a
    /// waiter if there is one.
    fn shelve(&self, mut shared: MutexGuard<'_, Shared>, buffer: NonNull<u8>) {
        let freed = if shared.idle.len() < self.keep {
            shared.idle.push(Idle(buffer));
            None
        } else {
            shared.live -= 1;
            Some(buffer)
        };
        drop(shared);
        if let Some(freed) = freed {
            // SAFETY: every arena the pool hands out or parks came from
            // `self.arenas.make()`; its one holder passed it here, reset,
            // and it is in no list or perch (freed outside the lock).
            unsafe { self.arenas.free(freed) };
        }
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
}

impl<A: PoolArenas> Drop for ResourcePool<A> {
    fn drop(&mut self) {
        let shared = self
            .shared
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = shared.idle.drain(..).map(|Idle(arena)| arena);
        let parked = self
            .perches
            .iter_mut()
            .filter_map(|perch| NonNull::new(*perch.parked.get_mut()));
        for arena in idle.chain(parked) {
            // SAFETY: parked and idle arenas came from `self.arenas.make()`
            // and were reset before they were put there; `&mut self` means
            // no other thread can reach them, and each is freed once.
            unsafe { self.arenas.free(arena) };
        }
    }
}

impl<A: PoolArenas> fmt::Debug for ResourcePool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("ResourcePool")
            .field("arenas", &self.arenas)
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
        let size = pool.arenas.layout.size();
        // SAFETY: the buffer is valid for the pool's layout and this guard's
        // alone (the pool hands a buffer to one guard at a time) until `drop`
        // gives it back, after dropping the arena.
        let arena = unsafe { CoreArena::from_raw_parts(buffer.as_ptr(), size) };
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

/// A growing arena checked out of a pool made with
/// [`ResourcePool::growing`]; the [`GrowingArena`] API through `Deref`.
/// Dropping it resets the arena, which drops what it holds and sizes it to
/// its recent batches, and returns it to the pool.
pub struct PooledGrowingArena<'p> {
    /// The arena (a leaked box from `GrowingArenas::make`), this guard's
    /// alone until `drop` gives it back.
    arena: NonNull<GrowingArena>,
    pool: &'p ResourcePool<GrowingArenas>,
    /// The checking-out thread's perch. The guard is not `Send` (it holds
    /// a raw pointer, and the arena is not), so it is dropped on that same
    /// thread.
    perch: Option<&'p Perch>,
}

impl<'p> PooledGrowingArena<'p> {
    /// The guard of an arena the pool lent (a leaked `Box<GrowingArena>`
    /// from `GrowingArenas::make`).
    #[inline(always)]
    fn new(pool: &'p ResourcePool<GrowingArenas>, (arena, perch): Lent<'p>) -> Self {
        PooledGrowingArena {
            arena: arena.cast(),
            pool,
            perch,
        }
    }

    /// Frees everything allocated so far, keeping the arena checked out:
    /// [`GrowingArena::reset`], with its adaptive sizing.
    pub fn reset(&mut self) {
        // SAFETY: the arena is this guard's alone, and `&mut self` means no
        // borrow of it (through `Deref`) is alive.
        unsafe { self.arena.as_mut() }.reset();
    }
}

impl Deref for PooledGrowingArena<'_> {
    type Target = GrowingArena;

    #[inline(always)]
    fn deref(&self) -> &GrowingArena {
        // SAFETY: the arena is valid and this guard's alone until `drop`;
        // the only `&mut` to it is made in `reset(&mut self)` and `drop`,
        // while no shared borrow of the guard is alive.
        unsafe { self.arena.as_ref() }
    }
}

impl Drop for PooledGrowingArena<'_> {
    #[inline]
    fn drop(&mut self) {
        // Reset before the arena leaves this thread: its values drop here,
        // and the pool moves only empty arenas between threads.
        self.reset();
        self.pool.give_back(self.arena.cast(), self.perch);
    }
}

impl fmt::Debug for PooledGrowingArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// `Box::new` that reports a failed allocation as an error instead of
/// aborting (the boxed values are small; this matters only when memory is
/// already exhausted). `bytes` is what the error reports as asked for.
fn try_box<T>(value: T, bytes: usize) -> Result<Box<T>, ArenaError> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: the layout is not zero-sized (checked above).
    let raw = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    let Some(raw) = NonNull::new(raw) else {
        return Err(ArenaError::OutOfMemory { bytes });
    };
    // SAFETY: `raw` is a fresh allocation with `T`'s layout, which is what
    // `Box` frees it with, and it is initialised before the `Box` is made.
    unsafe {
        raw.as_ptr().write(value);
        Ok(Box::from_raw(raw.as_ptr()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use crate::arena::RESET_HISTORY;

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

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn growing_pools_grow_past_the_first_chunk_and_lend_each_arena_once() {
        assert_send_sync::<ResourcePool<GrowingArenas>>();
        let pool = ResourcePool::growing(256, 1, 2).unwrap();
        let batch = if cfg!(miri) { 100 } else { 10_000 };
        let in_use = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                let (pool, in_use) = (&pool, &in_use);
                s.spawn(move || {
                    for round in 0..if cfg!(miri) { 3 } else { 50 } {
                        let arena = pool.checkout().unwrap();
                        assert!(in_use.fetch_add(1, Ordering::SeqCst) < 2, "max is 2");
                        assert_eq!(arena.used(), 0, "the arena came back reset");
                        // Far past the 256-byte first chunk: it grows.
                        let states: Vec<&mut [u64; 4]> = (0..batch)
                            .map(|i| arena.alloc([t, round, i, 0]).unwrap())
                            .collect();
                        std::thread::yield_now();
                        // Nobody else wrote this arena while we held it.
                        for (i, state) in states.iter().enumerate() {
                            assert_eq!(**state, [t, round, i as u64, 0]);
                        }
                        assert!(arena.chunks() >= 1 && arena.capacity() >= 32 * batch as usize);
                        in_use.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(pool.live() <= 2 && pool.idle() <= 2);
    }

    #[test]
    fn growing_pool_arenas_drop_their_values_and_resize_on_return() {
        let pool = ResourcePool::growing(256, 1, 1).unwrap();
        let marker = Arc::new(());
        let spike = if cfg!(miri) { 200 } else { 20_000 };
        {
            let arena = pool.checkout().unwrap();
            for _ in 0..spike {
                arena.alloc(Arc::clone(&marker)).unwrap();
            }
            assert!(arena.chunks() > 1);
            assert!(pool.try_checkout().is_none(), "max is 1 and it is out");
            assert_eq!(Arc::strong_count(&marker), spike + 1);
        }
        assert_eq!(Arc::strong_count(&marker), 1, "dropped on return");
        let spiked = pool.checkout().unwrap().held_bytes();
        assert!(spiked >= spike * size_of::<Arc<()>>(), "{spiked}");
        for _ in 0..RESET_HISTORY {
            let mut arena = pool.checkout().unwrap();
            arena.alloc(Arc::clone(&marker)).unwrap();
            arena.reset(); // a reset inside a checkout drops as well
            assert_eq!(Arc::strong_count(&marker), 1);
            arena.alloc(Arc::clone(&marker)).unwrap();
        }
        assert_eq!(Arc::strong_count(&marker), 1);
        let calm = pool.checkout().unwrap();
        assert_eq!(calm.chunks(), 1);
        assert!(
            calm.held_bytes() < spiked / 4,
            "{} of {spiked}",
            calm.held_bytes()
        );
        drop(calm);
        assert_eq!((pool.live(), pool.idle()), (1, 1));
        assert!(format!("{pool:?}").contains("GrowingArenas"));
    }
}
