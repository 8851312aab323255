//! Once-initialised registries over `std::sync::OnceLock`: the pattern
//! registry ([`PatternRegistry`]), the resource registry with its arena
//! pools ([`GlobalResourceRegistry`]), and their global instances.
//!
//! Behaviour the design document left open, defined here:
//!
//! - **Races.** However many threads call `get_or_init` at once, the
//!   initialiser runs exactly once; the others block until it is done.
//! - **A panicking initialiser** leaves the registry uninitialised (not
//!   poisoned): the panic propagates to its caller, and the next
//!   `get_or_init` runs its own initialiser, as knhk-core's spin-based
//!   cells do too (see [`knhk_core::registry`]).
//! - **Recursive initialisation** (an initialiser calling `get_or_init` on
//!   the same registry) panics with a message that says so, instead of
//!   deadlocking as a bare `OnceLock` does.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use knhk_core::patterns::PatternId;
use knhk_core::registry::PatternTable;

use crate::executor::PatternExecutor;
use crate::pool::{ResourceConfig, ResourcePool};

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
    /// The kept executors by id: knhk-core's table, one slot per pattern.
    dense: PatternTable<Arc<dyn PatternExecutor>>,
    refused: Vec<RefusedExecutor>,
}

/// Pattern executors by [`PatternId`], initialised once.
///
/// ```
/// use std::collections::HashMap;
/// use knhk_std::registry::PatternRegistry;
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

    /// The executor for `id`: an acquire load, a bounds check, and the
    /// slot's acquire load (plain loads on x86-64).
    #[inline]
    pub fn get(&self, id: &PatternId) -> Option<&Arc<dyn PatternExecutor>> {
        self.cell.get()?.dense.get(*id)
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
    let dense = PatternTable::new();
    for (&id, executor) in &kept {
        // Every kept key is in the catalogue and appears once.
        let _ = dense.register(id, Arc::clone(executor));
    }
    PatternTableStd {
        map: kept,
        dense,
        refused,
    }
}

/// The process-wide pattern registry.
pub static GLOBAL_PATTERN_REGISTRY: PatternRegistry = PatternRegistry::new();

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ExecutionError, TaskContext};
    use crate::stats::ExecutorCounters;
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
    fn executors_run_with_the_task_context() {
        let pool = ResourcePool::new(4096, 1, 1).unwrap();
        let shared = crate::stats::ExecutorStats::new();
        let sharded = crate::stats::ThreadShardedStats::new();
        let executor = Fixed(PatternId(1));
        // Either kind of statistics goes in the context.
        for stats in [&shared as &dyn ExecutorCounters, &sharded] {
            let arena = pool.checkout().unwrap();
            let mut task = TaskContext {
                task_id: 7,
                arena: &arena,
                stats,
            };
            executor.execute(&mut task).unwrap();
            assert_eq!(arena.used(), 8);
        }
        assert_eq!(shared.snapshot(), (0, 1, 0));
        assert_eq!(sharded.snapshot(), (0, 1, 0));
    }
}
