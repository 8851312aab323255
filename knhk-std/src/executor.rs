//! The executor contract: what the engine implements for each workflow
//! pattern ([`PatternExecutor`]) and what one task gets while it runs
//! ([`TaskContext`]). The [`registry`](crate::registry) holds executors by
//! pattern id.

use std::fmt;

use knhk_core::arena::Arena as CoreArena;
use knhk_core::counters::ExecutorCounters;
use knhk_core::patterns::PatternId;

/// What a pattern executor's `execute` can fail with.
pub type ExecutionError = Box<dyn std::error::Error + Send + Sync>;

/// What one task gets while a pattern executes it.
///
/// `stats` takes any [`ExecutorCounters`]: the per-thread
/// [`ThreadShardedStats`](crate::stats::ThreadShardedStats), which costs a
/// few nanoseconds a count at any number of threads, or the design
/// document's shared [`ExecutorStats`](crate::stats::ExecutorStats) (the design's `PatternExecutorCached`),
/// whose atomics contend once several threads count.
///
/// ```
/// use core::mem::MaybeUninit;
/// use knhk_std::executor::TaskContext;
/// use knhk_std::stats::ThreadShardedStats;
///
/// static STATS: ThreadShardedStats = ThreadShardedStats::new();
/// let mut buf = [MaybeUninit::uninit(); 256];
/// let arena = knhk_core::arena::Arena::new(&mut buf);
/// let task = TaskContext { task_id: 7, arena: &arena, stats: &STATS };
/// task.stats.inc_active();
/// assert_eq!(STATS.snapshot(), (1, 0, 0));
/// ```
pub struct TaskContext<'t, 'a> {
    /// The task's id.
    pub task_id: u64,
    /// The batch's arena: allocate the task's scratch state here; it is
    /// freed when the batch's arena is reset.
    pub arena: &'t CoreArena<'a>,
    /// The executor statistics to count in.
    pub stats: &'t dyn ExecutorCounters,
}

/// A workflow pattern's implementation, provided by the engine.
///
/// ```
/// use knhk_std::executor::{ExecutionError, PatternExecutor, TaskContext};
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
