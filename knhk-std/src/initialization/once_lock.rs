//! `PatternRegistry`, `GlobalResourceRegistry` and `ResourcePool` over
//! `std::sync::OnceLock`.
//!
//! Behaviour the design document left open, defined here:
//!
//! - **Races.** However many threads call `get_or_init` at once, the
//!   initialiser runs exactly once; the others block until it is done.
//! - **A panicking initialiser** leaves the registry uninitialised (not
//!   poisoned): the panic propagates to its caller, and the next
//!   `get_or_init` runs its own initialiser. (knhk-core's spin-based cells
//!   poison instead; see [`knhk_core::registry`].)
//! - **Recursive initialisation** (an initialiser calling `get_or_init` on
//!   the same registry) panics with a message that says so, instead of
//!   deadlocking as a bare `OnceLock` does.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

use knhk_core::arena::{Arena as CoreArena, ArenaError};
use knhk_core::patterns::PatternId;

use knhk_core::cache::CachePadded;

use crate::memory::arena::HeapBuffer;
use crate::memory::thread_slot::{self, SLOTS};
use crate::memory::{PatternExecutorCached, DEFAULT_CAPACITY};

/// What a pattern executor's `execute` can fail with.
pub type ExecutionError = Box<dyn std::error::Error + Send + Sync>;

/// What one task gets while a pattern executes it.
pub struct TaskContext<'t, 'a> {
    /// The task's id.
    pub task_id: u64,
    /// The batch's arena: allocate the task's scratch state here; it is
    /// freed when the batch's arena is reset.
    pub arena: &'t CoreArena<'a>,
    /// The executor statistics to count in.
    pub stats: &'t PatternExecutorCached,
}

/// A workflow pattern's implementation, provided by the engine.
///
/// ```
/// use knhk_std::initialization::{ExecutionError, PatternExecutor, TaskContext};
/// use knhk_std::PatternId;
///
/// struct Sequence;
///
/// impl PatternExecutor for Sequence {
///     fn pattern_id(&self) -> PatternId {
///         PatternId(1)
///     }
///     fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
///         let steps = task.arena.alloc_slice_fill_with(3, |i| task.task_id + i as u64)?;
///         if steps.iter().sum::<u64>() == 0 {
///             return Err("empty sequence".into());
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait PatternExecutor: Send + Sync {
    /// The pattern this executor implements.
    fn pattern_id(&self) -> PatternId;

    /// Executes one task.
    fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError>;
}

impl fmt::Debug for dyn PatternExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.pattern_id();
        write!(f, "PatternExecutor({}: {id})", id.0)
    }
}

/// The map a [`PatternRegistry`] is initialised with.
pub type PatternMap = HashMap<PatternId, Arc<dyn PatternExecutor>>;

/// An executor the registry did not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedExecutor {
    /// The key it was registered under.
    pub key: PatternId,
    /// The pattern the executor says it implements.
    pub implements: PatternId,
}

impl fmt::Display for RefusedExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.key.is_known() {
            write!(
                f,
                "pattern id {} is not in the catalogue (1 to 43)",
                self.key.0
            )
        } else {
            write!(
                f,
                "executor for pattern {} ({}) was registered under {} ({})",
                self.implements.0, self.implements, self.key.0, self.key
            )
        }
    }
}

impl std::error::Error for RefusedExecutor {}

struct PatternTableStd {
    map: PatternMap,
    dense: [Option<Arc<dyn PatternExecutor>>; 43],
    refused: Vec<RefusedExecutor>,
}

/// Pattern executors by [`PatternId`], initialised once.
///
/// ```
/// use std::collections::HashMap;
/// use knhk_std::initialization::PatternRegistry;
///
/// let registry = PatternRegistry::new();
/// let patterns = registry.get_or_init(|| {
///     // Initialization logic (called once)
///     HashMap::new()
/// });
/// assert!(patterns.is_empty());
/// assert!(registry.is_initialized());
/// ```
///
/// Executors whose key is not in the catalogue (1 to 43), or whose own
/// [`pattern_id`](PatternExecutor::pattern_id) differs from their key, are
/// refused: they are left out of the registry and listed by
/// [`refused`](Self::refused); [`try_get_or_init`](Self::try_get_or_init)
/// reports them as an error.
pub struct PatternRegistry {
    cell: OnceLock<PatternTableStd>,
    /// Which thread is running the initialiser (its marker's address), or 0.
    initializing: AtomicUsize,
}

thread_local! {
    static THREAD_MARKER: u8 = const { 0 };
}

/// A number unique to the calling thread among live threads.
fn thread_marker() -> usize {
    THREAD_MARKER.with(|m| m as *const u8 as usize)
}

/// Clears the "initialising" mark, also when the initialiser panics.
struct InitMark<'a>(&'a AtomicUsize);

impl<'a> InitMark<'a> {
    /// Panics if this thread is already running the initialiser guarded by
    /// `slot`: waiting on the `OnceLock` for itself would deadlock. Called
    /// before entering the `OnceLock`, where a recursive call would block.
    fn refuse_recursion(slot: &AtomicUsize, what: &str) {
        if slot.load(Ordering::Acquire) == thread_marker() {
            panic!(
                "{what} initialiser called back into the same {what}: \
                 recursive initialisation would deadlock"
            );
        }
    }

    /// Marks this thread as running the initialiser.
    fn enter(slot: &'a AtomicUsize) -> InitMark<'a> {
        slot.store(thread_marker(), Ordering::Release);
        InitMark(slot)
    }
}

impl Drop for InitMark<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl PatternRegistry {
    /// An uninitialised registry (usable in a `static`).
    pub const fn new() -> PatternRegistry {
        PatternRegistry {
            cell: OnceLock::new(),
            initializing: AtomicUsize::new(0),
        }
    }

    fn init_with(&self, init: impl FnOnce() -> PatternMap) -> (&PatternTableStd, bool) {
        if let Some(table) = self.cell.get() {
            return (table, false);
        }
        InitMark::refuse_recursion(&self.initializing, "PatternRegistry");
        let mut ran = false;
        let table = self.cell.get_or_init(|| {
            let _mark = InitMark::enter(&self.initializing);
            ran = true;
            build_table(init())
        });
        (table, ran)
    }

    /// The registered executors, running `init` if this is the first call.
    /// Refused executors (see the type's docs) are left out.
    pub fn get_or_init(&self, init: impl FnOnce() -> PatternMap) -> &PatternMap {
        &self.init_with(init).0.map
    }

    /// Like [`get_or_init`](Self::get_or_init), but if this call's `init`
    /// produced executors the registry refused, returns the first of them
    /// as an error (the registry keeps the valid ones).
    pub fn try_get_or_init(
        &self,
        init: impl FnOnce() -> PatternMap,
    ) -> Result<&PatternMap, RefusedExecutor> {
        let (table, ran) = self.init_with(init);
        match table.refused.first() {
            Some(&refused) if ran => Err(refused),
            _ => Ok(&table.map),
        }
    }

    /// The executor for `id`: one acquire load, a bounds check, an index.
    #[inline]
    pub fn get(&self, id: &PatternId) -> Option<&Arc<dyn PatternExecutor>> {
        self.cell
            .get()?
            .dense
            .get(id.0.wrapping_sub(1) as usize)?
            .as_ref()
    }

    /// Whether the registry has been initialised.
    pub fn is_initialized(&self) -> bool {
        self.cell.get().is_some()
    }

    /// How many executors are registered.
    pub fn count(&self) -> usize {
        self.cell.get().map_or(0, |t| t.map.len())
    }

    /// The executors the initialiser produced but the registry refused.
    pub fn refused(&self) -> &[RefusedExecutor] {
        self.cell.get().map_or(&[], |t| &t.refused)
    }
}

impl Default for PatternRegistry {
    fn default() -> Self {
        PatternRegistry::new()
    }
}

impl fmt::Debug for PatternRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternRegistry")
            .field("initialized", &self.is_initialized())
            .field("count", &self.count())
            .field("refused", &self.refused())
            .finish()
    }
}

fn build_table(map: PatternMap) -> PatternTableStd {
    let mut refused = Vec::new();
    let mut kept = PatternMap::with_capacity(map.len());
    for (key, executor) in map {
        let implements = executor.pattern_id();
        if key.is_known() && implements == key {
            kept.insert(key, executor);
        } else {
            refused.push(RefusedExecutor { key, implements });
        }
    }
    refused.sort_by_key(|r| r.key);
    let dense = std::array::from_fn(|i| kept.get(&PatternId(i as u32 + 1)).cloned());
    PatternTableStd {
        map: kept,
        dense,
        refused,
    }
}

/// The process-wide pattern registry.
pub static GLOBAL_PATTERN_REGISTRY: PatternRegistry = PatternRegistry::new();

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

/// Configuration and named arena pools, initialised once.
pub struct GlobalResourceRegistry {
    config: OnceLock<ResourceConfig>,
    pools: OnceLock<HashMap<String, ResourcePool>>,
    initializing: AtomicUsize,
}

impl GlobalResourceRegistry {
    /// An uninitialised registry.
    pub const fn new() -> GlobalResourceRegistry {
        GlobalResourceRegistry {
            config: OnceLock::new(),
            pools: OnceLock::new(),
            initializing: AtomicUsize::new(0),
        }
    }

    /// The configuration: what [`init_config`](Self::init_config) set
    /// first, or the defaults once anything has read it.
    pub fn config(&self) -> &ResourceConfig {
        self.config.get_or_init(ResourceConfig::default)
    }

    /// Sets the configuration, if nothing has set or read it yet;
    /// otherwise hands `config` back.
    pub fn init_config(&self, config: ResourceConfig) -> Result<(), ResourceConfig> {
        self.config.set(config)
    }

    /// The named pools, running `init` if this is the first call.
    pub fn get_or_init_pools(
        &self,
        init: impl FnOnce() -> HashMap<String, ResourcePool>,
    ) -> &HashMap<String, ResourcePool> {
        if let Some(pools) = self.pools.get() {
            return pools;
        }
        InitMark::refuse_recursion(&self.initializing, "GlobalResourceRegistry");
        self.pools.get_or_init(|| {
            let _mark = InitMark::enter(&self.initializing);
            init()
        })
    }

    /// The pool called `name`, once the pools are initialised.
    pub fn get_pool(&self, name: &str) -> Option<&ResourcePool> {
        self.pools.get()?.get(name)
    }
}

impl Default for GlobalResourceRegistry {
    fn default() -> Self {
        GlobalResourceRegistry::new()
    }
}

impl fmt::Debug for GlobalResourceRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalResourceRegistry")
            .field("config", &self.config.get())
            .field("pools", &self.pools.get().map(|p| p.len()))
            .finish()
    }
}

/// The process-wide resource registry.
pub static GLOBAL_RESOURCE_REGISTRY: GlobalResourceRegistry = GlobalResourceRegistry::new();

struct PoolState {
    // Boxed because the same allocation moves in and out of the per-thread
    // `AtomicPtr` slots (`Box::into_raw`/`from_raw`) without copying.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<HeapBuffer>>,
    /// Arenas in existence: idle, cached per thread, or checked out.
    live: usize,
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
/// The common case takes no lock: each thread keeps the arena it returned
/// last in a slot of its own (one atomic swap to take it, one to put it
/// back), so workers that check out and return on their own thread never
/// contend. The shared list, under a mutex, serves the rest; a checkout
/// that would block first takes arenas parked in other threads' slots
/// (those of exited threads included), so none is stranded.
///
/// ```
/// use knhk_std::initialization::ResourcePool;
///
/// let pool = ResourcePool::new(64 * 1024, 2, 4)?;
/// {
///     let arena = pool.checkout()?;
///     let name = arena.alloc_str("task-7")?;
///     assert_eq!(&*name, "task-7");
/// } // reset and returned here
/// assert_eq!((pool.idle(), pool.live()), (1, 1));
/// # Ok::<(), knhk_std::memory::ArenaError>(())
/// ```
pub struct ResourcePool {
    state: Mutex<PoolState>,
    returned: Condvar,
    /// Threads blocked in `checkout`. Returns notify only when there are
    /// some (std's `Condvar::notify_one` makes a futex system call even
    /// when nobody waits), and do not park an arena in their own slot
    /// while anyone waits.
    waiting: AtomicUsize,
    /// One parked idle arena per thread slot (null when empty).
    parked: Box<[CachePadded<AtomicPtr<HeapBuffer>>]>,
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
        if arena_capacity == 0 {
            return Err(ArenaError::ZeroCapacity);
        }
        let max = max.max(1);
        Ok(ResourcePool {
            state: Mutex::new(PoolState {
                idle: Vec::with_capacity(keep.min(max)),
                live: 0,
            }),
            returned: Condvar::new(),
            waiting: AtomicUsize::new(0),
            parked: (0..SLOTS)
                .map(|_| CachePadded::new(AtomicPtr::new(std::ptr::null_mut())))
                .collect(),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is a Vec and a count, consistent between statements, so
        // a panic elsewhere while the lock was held cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the arena parked in `slot`, if any.
    fn unpark(&self, slot: &AtomicPtr<HeapBuffer>) -> Option<Box<HeapBuffer>> {
        let parked = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: a non-null pointer in a slot came from `Box::into_raw` in
        // `give_back`, and the swap made this caller its only owner.
        (!parked.is_null()).then(|| unsafe { Box::from_raw(parked) })
    }

    /// An arena for one batch, waiting for a return if `max` are out.
    /// Fails only if a new arena's memory cannot be allocated.
    pub fn checkout(&self) -> Result<PooledArena<'_>, ArenaError> {
        if let Some(buffer) = thread_slot::current().and_then(|i| self.unpark(&self.parked[i])) {
            return Ok(PooledArena::new(self, buffer));
        }
        let mut state = self.lock();
        loop {
            if let Some(buffer) = state.idle.pop() {
                return Ok(PooledArena::new(self, buffer));
            }
            if state.live < self.max {
                state.live += 1;
                drop(state);
                return match HeapBuffer::new(self.arena_capacity) {
                    Ok(buffer) => Ok(PooledArena::new(self, Box::new(buffer))),
                    Err(e) => {
                        self.lock().live -= 1;
                        if self.waiting.load(Ordering::SeqCst) > 0 {
                            self.returned.notify_one();
                        }
                        Err(e)
                    }
                };
            }
            // About to wait: announce it, then look in every thread's slot.
            // A return parks its arena and then checks `waiting` (both
            // SeqCst), so either it sees this waiter and brings the arena
            // to the shared list, or this scan sees the parked arena.
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let stolen = self.parked.iter().find_map(|slot| self.unpark(slot));
            if let Some(buffer) = stolen {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                return Ok(PooledArena::new(self, buffer));
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// An arena if one is free now (or may be made); `None` if `max` are
    /// out. Never waits.
    pub fn try_checkout(&self) -> Option<Result<PooledArena<'_>, ArenaError>> {
        if let Some(buffer) = self.parked.iter().find_map(|slot| self.unpark(slot)) {
            return Some(Ok(PooledArena::new(self, buffer)));
        }
        let state = self.lock();
        if state.idle.is_empty() && state.live >= self.max {
            return None;
        }
        drop(state);
        Some(self.checkout())
    }

    fn give_back(&self, buffer: Box<HeapBuffer>) {
        let mut buffer = buffer;
        if let Some(i) = thread_slot::current() {
            let slot = &self.parked[i];
            let displaced = slot.swap(Box::into_raw(buffer), Ordering::SeqCst);
            if self.waiting.load(Ordering::SeqCst) == 0 && displaced.is_null() {
                return; // parked for this thread's next checkout
            }
            // Someone waits (or the slot was taken): go through the shared
            // list, which wakes waiters. Take back what we parked, unless a
            // waiter already took it.
            let mine = self.unpark(slot);
            // SAFETY: a displaced pointer came from `Box::into_raw` too.
            let displaced = (!displaced.is_null()).then(|| unsafe { Box::from_raw(displaced) });
            match (mine, displaced) {
                (Some(a), Some(b)) => {
                    self.return_shared(a);
                    buffer = b;
                }
                (Some(a), None) | (None, Some(a)) => buffer = a,
                (None, None) => return,
            }
        }
        self.return_shared(buffer);
    }

    fn return_shared(&self, buffer: Box<HeapBuffer>) {
        let mut state = self.lock();
        let freed = if state.idle.len() < self.keep {
            state.idle.push(buffer);
            None
        } else {
            state.live -= 1;
            Some(buffer)
        };
        drop(state);
        drop(freed); // freed outside the lock
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.returned.notify_one();
        }
    }

    fn parked_count(&self) -> usize {
        self.parked
            .iter()
            .filter(|slot| !slot.load(Ordering::Acquire).is_null())
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
        for slot in self.parked.iter() {
            drop(self.unpark(slot));
        }
    }
}

impl fmt::Debug for ResourcePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ResourcePool")
            .field("arena_capacity", &self.arena_capacity)
            .field("idle", &(state.idle.len() + self.parked_count()))
            .field("live", &state.live)
            .field("max", &self.max)
            .finish()
    }
}

/// An arena checked out of a [`ResourcePool`]; the core arena's API through
/// `Deref`. Dropping it resets the arena and returns it to the pool.
pub struct PooledArena<'p> {
    // Dropped (with its values) in `drop` before the buffer goes back.
    arena: std::mem::ManuallyDrop<CoreArena<'p>>,
    buffer: Option<Box<HeapBuffer>>,
    pool: &'p ResourcePool,
}

impl<'p> PooledArena<'p> {
    fn new(pool: &'p ResourcePool, buffer: Box<HeapBuffer>) -> PooledArena<'p> {
        // SAFETY: the arena is dropped in `Drop::drop` before the buffer is
        // given back or freed, and it is the only arena over this buffer
        // (the pool hands each buffer to one guard at a time).
        let arena = unsafe { buffer.arena() };
        PooledArena {
            arena: std::mem::ManuallyDrop::new(arena),
            buffer: Some(buffer),
            pool,
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
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, and not used afterwards.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.arena) };
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer);
        }
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

    struct Fixed(PatternId);

    impl PatternExecutor for Fixed {
        fn pattern_id(&self) -> PatternId {
            self.0
        }
        fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
            task.arena.alloc(task.task_id)?;
            task.stats.inc_active();
            task.stats.inc_completed();
            Ok(())
        }
    }

    fn map(ids: &[(u32, u32)]) -> PatternMap {
        ids.iter()
            .map(|&(key, implements)| {
                (
                    PatternId(key),
                    Arc::new(Fixed(PatternId(implements))) as Arc<dyn PatternExecutor>,
                )
            })
            .collect()
    }

    #[test]
    fn sixteen_racing_threads_initialise_once() {
        let registry = PatternRegistry::new();
        let runs = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let m = registry.get_or_init(|| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        map(&[(1, 1), (2, 2)])
                    });
                    assert_eq!(m.len(), 2);
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(registry.count(), 2);
        assert!(registry.get(&PatternId(2)).is_some());
        assert!(registry.get(&PatternId(3)).is_none());
        assert!(registry.get(&PatternId(0)).is_none());
        assert!(registry.get(&PatternId(99)).is_none());
    }

    #[test]
    fn unknown_ids_and_mismatched_executors_are_refused() {
        let registry = PatternRegistry::new();
        let err = registry
            .try_get_or_init(|| map(&[(1, 1), (44, 44), (3, 5)]))
            .unwrap_err();
        assert_eq!(
            err,
            RefusedExecutor {
                key: PatternId(3),
                implements: PatternId(5)
            }
        );
        assert_eq!(registry.count(), 1, "the valid executor is kept");
        assert_eq!(registry.refused().len(), 2);
        assert!(registry.refused()[1]
            .to_string()
            .contains("not in the catalogue"));
        // Later calls see the initialised registry and no new refusals.
        assert!(registry.try_get_or_init(|| map(&[(9, 9)])).is_ok());
        assert_eq!(registry.count(), 1);
    }

    #[test]
    fn a_panicking_initialiser_lets_the_next_call_retry() {
        let registry = PatternRegistry::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registry.get_or_init(|| panic!("configuration missing"));
        }));
        assert!(first.is_err());
        assert!(!registry.is_initialized());
        assert_eq!(registry.get_or_init(|| map(&[(4, 4)])).len(), 1);
    }

    #[test]
    fn recursive_initialisation_panics_clearly() {
        let registry = PatternRegistry::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registry.get_or_init(|| registry.get_or_init(PatternMap::new).clone());
        }));
        let payload = result.unwrap_err();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(message.contains("recursive initialisation"), "{message}");
        assert!(!registry.is_initialized());

        let resources = GlobalResourceRegistry::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            resources.get_or_init_pools(|| {
                resources.get_or_init_pools(HashMap::new);
                HashMap::new()
            });
        }));
        assert!(result.is_err());
    }

    #[test]
    fn config_is_set_once_and_handed_back_after() {
        let resources = GlobalResourceRegistry::new();
        let custom = ResourceConfig {
            default_pool_size: 2,
            max_pools: 3,
            arena_capacity: 4096,
        };
        assert_eq!(resources.init_config(custom.clone()), Ok(()));
        assert_eq!(resources.config(), &custom);
        let again = ResourceConfig::default();
        assert_eq!(resources.init_config(again.clone()), Err(again));
        let defaults = GlobalResourceRegistry::new();
        assert_eq!(defaults.config(), &ResourceConfig::default());
        assert!(
            defaults.init_config(custom).is_err(),
            "reading the defaults fixes them"
        );
    }

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

    #[test]
    fn executors_run_with_the_task_context() {
        let pool = ResourcePool::new(4096, 1, 1).unwrap();
        let stats = PatternExecutorCached::new();
        let arena = pool.checkout().unwrap();
        let executor = Fixed(PatternId(1));
        let mut task = TaskContext {
            task_id: 7,
            arena: &arena,
            stats: &stats,
        };
        executor.execute(&mut task).unwrap();
        assert_eq!(stats.snapshot(), (0, 1, 0));
        assert_eq!(arena.used(), 8);
    }
}
