//! Once-initialised registries, at the design document's paths: the
//! pattern registry, the resource registry with its arena pools, and their
//! global instances. Built on `std::sync::OnceLock`, so waiters block
//! rather than spin (right when threads outnumber cores); knhk-core's
//! [`registry`](knhk_core::registry) is the spin-based `no_std` counterpart.

mod barrier;
mod once_lock;
mod pool;

pub use knhk_core::patterns::{PatternCategory, PatternInfo, UnknownPattern, CATALOGUE};
pub use once_lock::{
    ExecutionError, GlobalResourceRegistry, PatternExecutor, PatternMap, PatternRegistry,
    RefusedExecutor, TaskContext, GLOBAL_PATTERN_REGISTRY, GLOBAL_RESOURCE_REGISTRY,
};
pub use pool::{PooledArena, ResourceConfig, ResourcePool};
