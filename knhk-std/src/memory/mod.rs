//! Memory: arenas, cache-line types, executor statistics, and allocator
//! statistics, at the design document's paths.
//!
//! - [`Arena`] owns a heap buffer and offers the core arena's whole API
//!   ([`knhk_core::arena::Arena`], through `Deref`). [`ArenaAllocator`] is
//!   the per-thread arena for batch loops, whose `reset` works through a
//!   shared reference: it refuses, with [`ResetError`], while anything it
//!   handed out is still alive.
//! - [`CacheAligned`], [`CachePadded`], [`PatternExecutorCached`], and
//!   [`ThreadShardedStats`] for many writer threads.
//! - [`ALLOCATOR_STATS`]: counts of the counting global allocator
//!   (features `jemalloc`, `mimalloc`, or [`count_allocations!`](crate::count_allocations)).

mod allocator;
pub(crate) mod arena;
mod cache_aligned;
pub(crate) mod thread_slot;

pub use allocator::{
    AllocSnapshot, AllocatorStats, AtomicTally, CountingAlloc, GlobalTally, Tally, ThreadTally,
    ALLOCATOR_STATS,
};
pub use arena::{Arena, ArenaAllocator, ArenaBox, ResetError, DEFAULT_CAPACITY};
pub use cache_aligned::{CacheAligned, CachePadded, PatternExecutorCached, ThreadShardedStats};
pub use knhk_core::arena::{ArenaError, Checkpoint, Rejected};
pub use knhk_core::counters::{ExecutorCounters, ExecutorStats, StatsSnapshot};
