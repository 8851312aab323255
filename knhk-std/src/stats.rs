//! Executor statistics and the cache-line types they are built of.
//!
//! [`CacheAligned`], [`CachePadded`], [`ExecutorStats`] (shared atomics,
//! the design's `PatternExecutorCached`) and the [`ExecutorCounters`]
//! trait are knhk-core's ([`knhk_core::cache`], [`knhk_core::counters`]).
//! [`ThreadShardedStats`] adds what needs threads: each thread that bumps
//! it writes a shard of its own, chosen for it.

use std::fmt;

use knhk_core::counters::ShardedExecutorStats;

pub use knhk_core::cache::{CacheAligned, CachePadded};
pub use knhk_core::counters::{ExecutorCounters, ExecutorStats};

use crate::thread_slot::{self, SLOTS};

/// Executor statistics for many writer threads: each thread bumps its own
/// padded shard with a plain load and store (no locked instruction, no
/// cache line shared with another writer), and reads add the shards up.
///
/// Up to 256 threads at once get a shard each (an exiting thread hands its
/// shard, counts and all, to a later one); others share an exact but
/// contended shard. The object is about 32 KiB; put it in an
/// `Arc` or a `static`.
///
/// ```
/// use std::sync::Arc;
/// use knhk_std::stats::ThreadShardedStats;
///
/// let stats = Arc::new(ThreadShardedStats::new());
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let stats = Arc::clone(&stats);
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 stats.inc_active();
///                 stats.inc_completed();
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(stats.snapshot(), (0, 4000, 0));
/// ```
///
/// What a snapshot guarantees while threads write is documented on
/// [`ShardedExecutorStats`]: each total is monotonic and never ahead of
/// the truth, and once the writers stop it is exact.
pub struct ThreadShardedStats {
    shards: ShardedExecutorStats<SLOTS>,
}

macro_rules! per_thread {
    ($($name:ident: $what:literal),* $(,)?) => {
        $(
            #[doc = $what]
            #[inline]
            pub fn $name(&self) {
                // No two live threads hold one slot index, and a slot passes
                // from an exited thread to the next through a release/acquire
                // hand-off (thread_slot); `shards` is private, so nothing
                // `claim`s a shard.
                // SAFETY: so this thread is the only writer of shard `i`
                // while it runs, and it sees its predecessor's counts.
                match thread_slot::current().and_then(|i| unsafe { self.shards.writer_unchecked(i) }) {
                    Some(writer) => writer.$name(),
                    None => self.shards.shared().$name(),
                }
            }
        )*
    };
}

impl ThreadShardedStats {
    /// All counters at zero.
    pub const fn new() -> ThreadShardedStats {
        ThreadShardedStats {
            shards: ShardedExecutorStats::new(),
        }
    }

    per_thread!(
        inc_active: "A task started.",
        inc_completed: "A task completed.",
        inc_failed: "A task failed.",
    );

    /// `(active, completed, failed)`.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        self.shards.snapshot()
    }
}

impl ExecutorCounters for ThreadShardedStats {
    #[inline]
    fn inc_active(&self) {
        ThreadShardedStats::inc_active(self);
    }
    #[inline]
    fn inc_completed(&self) {
        ThreadShardedStats::inc_completed(self);
    }
    #[inline]
    fn inc_failed(&self) {
        ThreadShardedStats::inc_failed(self);
    }
}

impl Default for ThreadShardedStats {
    fn default() -> Self {
        ThreadShardedStats::new()
    }
}

impl fmt::Debug for ThreadShardedStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (active, completed, failed) = self.snapshot();
        f.debug_struct("ThreadShardedStats")
            .field("active", &active)
            .field("completed", &completed)
            .field("failed", &failed)
            .finish()
    }
}
