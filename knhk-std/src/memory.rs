//! The design document's `memory` paths. Each item is one of
//! [`crate::arena`], [`crate::stats`] or [`crate::alloc_stats`] (or
//! knhk-core's) under the design's name.

pub use crate::alloc_stats::{
    AllocSnapshot, AllocatorStats, AtomicTally, CountingAlloc, GlobalTally, Tally, ThreadTally,
    ALLOCATOR_STATS,
};
pub use crate::arena::{
    ArenaAllocator, ArenaBox, ArenaError, Checkpoint, GrowingArena, Rejected, ResetError,
};
pub use crate::arena::{HeapArena as Arena, DEFAULT_CAPACITY};
pub use crate::stats::{CacheAligned, CachePadded, ExecutorStats as PatternExecutorCached};
pub use crate::stats::{ExecutorCounters, ExecutorStats, ThreadShardedStats};
