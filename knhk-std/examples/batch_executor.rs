//! The design document's Integration Guide, end to end: write a workflow
//! store, register executors for a few workflow patterns, and run batches
//! of tasks on every core: each batch fetches its tasks' workflow specs
//! from the mapped store with one batched lookup (memory latency
//! overlapped), runs each task in an arena checked out of a pool, and
//! counts in per-thread sharded statistics; then filter with the kernels
//! and print what happened.
//!
//! ```text
//! cargo run --release -p knhk-std --example batch_executor [BATCHES_PER_WORKER]
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use knhk_std::initialization::{
    ExecutionError, PatternExecutor, PatternMap, ResourceConfig, ResourcePool, TaskContext,
    GLOBAL_PATTERN_REGISTRY, GLOBAL_RESOURCE_REGISTRY,
};
use knhk_std::memory::{ThreadShardedStats, ALLOCATOR_STATS};
use knhk_std::performance::simd::pattern_matching;
use knhk_std::storage::{MmapWorkflowStore, WorkflowStoreWriter};
use knhk_std::{PatternId, WorkflowSpecId};

// Count every heap allocation, so the run can report allocations per batch
// (the jemalloc and mimalloc features install a counting allocator already).
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
knhk_std::count_allocations!(std::alloc::System, "system");

const TASKS_PER_BATCH: usize = 1000;
/// Workflow specs in the store.
const SPECS: u64 = 10_000;

/// The id of spec `n`.
fn spec_id(n: u64) -> WorkflowSpecId {
    WorkflowSpecId(uuid::Uuid::from_u64_pair(
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        n ^ 0x5EED,
    ))
}

/// Pattern 1: the task's steps run one after another.
struct Sequence;

impl PatternExecutor for Sequence {
    fn pattern_id(&self) -> PatternId {
        PatternId(1)
    }

    fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
        let steps = task
            .arena
            .alloc_slice_fill_with(4, |i| task.task_id * 4 + i as u64)?;
        let total: u64 = steps.iter().sum();
        task.arena.alloc(total)?;
        Ok(())
    }
}

/// Pattern 2: the task forks into branches, each with its own scratch state.
struct ParallelSplit;

impl PatternExecutor for ParallelSplit {
    fn pattern_id(&self) -> PatternId {
        PatternId(2)
    }

    fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
        for branch in 0..3_u64 {
            let state = task.arena.alloc([task.task_id, branch, 0, 0])?;
            state[2] = state[0] ^ state[1];
        }
        Ok(())
    }
}

/// Pattern 4: the task takes one branch; every 97th task's branch fails.
struct ExclusiveChoice;

impl PatternExecutor for ExclusiveChoice {
    fn pattern_id(&self) -> PatternId {
        PatternId(4)
    }

    fn execute(&self, task: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
        let label = task.arena.alloc_str(if task.task_id.is_multiple_of(2) {
            "approve"
        } else {
            "reject"
        })?;
        if task.task_id.is_multiple_of(97) {
            return Err(format!("task {}: no condition held for '{label}'", task.task_id).into());
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches_per_worker: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("BATCHES_PER_WORKER must be a whole number, got {arg:?}: {e}"))?,
        None => 200,
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // KNHK_SIMD=avx2 (say) keeps the kernels off wider vectors.
    let simd = knhk_std::performance::simd::cap_instruction_set_from_env()?;

    // 1. Register the executors once, process-wide.
    let executors = GLOBAL_PATTERN_REGISTRY.try_get_or_init(|| {
        let mut map: PatternMap = HashMap::new();
        map.insert(PatternId(1), Arc::new(Sequence));
        map.insert(PatternId(2), Arc::new(ParallelSplit));
        map.insert(PatternId(4), Arc::new(ExclusiveChoice));
        map
    })?;

    // 2. Configure the arena pool: one idle arena per worker, 256 KiB each.
    let config = ResourceConfig {
        default_pool_size: workers,
        max_pools: workers,
        arena_capacity: 256 * 1024,
    };
    GLOBAL_RESOURCE_REGISTRY
        .init_config(config)
        .map_err(|_| "the resource configuration was already set")?;
    let pools = GLOBAL_RESOURCE_REGISTRY.get_or_init_pools(|| {
        let pool = ResourcePool::with_config(GLOBAL_RESOURCE_REGISTRY.config())
            .expect("a non-zero arena capacity");
        HashMap::from([("batch".to_string(), pool)])
    });
    let pool = &pools["batch"];

    // 3. The workflow store: one spec per workflow, naming its pattern in
    //    its first byte, written atomically and then memory-mapped.
    let known: Vec<u32> = executors.keys().map(|id| id.0).collect();
    let dir = std::env::temp_dir().join(format!("knhk-batch-executor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("workflows.knhk");
    let mut writer = WorkflowStoreWriter::create(&path)?;
    for n in 0..SPECS {
        let pattern = known[n as usize % known.len()] as u8;
        let mut spec = vec![pattern];
        spec.extend_from_slice(format!("<workflow n='{n}'/>").as_bytes());
        writer.add(spec_id(n), &spec)?;
    }
    writer.finish()?;
    let store = MmapWorkflowStore::new(&path)?;

    // The batches: each worker's tasks name the specs they run.
    let batch_ids: Vec<Vec<WorkflowSpecId>> = (0..workers)
        .map(|worker| {
            (0..TASKS_PER_BATCH as u64)
                .map(|i| spec_id((i * 7919 + worker as u64 * 104_729) % SPECS))
                .collect()
        })
        .collect();
    // Counted per thread: a plain load and store on a line no other worker
    // writes, at any number of workers.
    let stats = ThreadShardedStats::new();

    // 4. Run the batches on every core.
    let allocations_before = ALLOCATOR_STATS.allocation_count();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (worker, ids) in batch_ids.iter().enumerate() {
            let (store, stats) = (&store, &stats);
            s.spawn(move || -> Result<(), knhk_std::memory::ArenaError> {
                for batch in 0..batches_per_worker {
                    let arena = pool.checkout()?;
                    // One call for the whole batch: the index lines and
                    // specs of the next lookups load while this one runs.
                    for (i, spec) in store.get_many(ids).enumerate() {
                        let task_id =
                            ((worker * batches_per_worker + batch) * TASKS_PER_BATCH + i) as u64;
                        let pattern = match spec {
                            Ok(Some(spec)) => u32::from(spec.first().copied().unwrap_or(0)),
                            Ok(None) | Err(_) => {
                                stats.inc_failed();
                                continue;
                            }
                        };
                        let Some(executor) = GLOBAL_PATTERN_REGISTRY.get(&PatternId(pattern))
                        else {
                            stats.inc_failed();
                            continue;
                        };
                        stats.inc_active();
                        let mut task = TaskContext {
                            task_id,
                            arena: &arena,
                            stats,
                        };
                        match executor.execute(&mut task) {
                            Ok(()) => stats.inc_completed(),
                            Err(_) => stats.inc_failed(),
                        }
                    }
                } // the arena is reset and returned to the pool here
                Ok(())
            });
        }
    });
    let elapsed = start.elapsed();
    let allocations = ALLOCATOR_STATS.allocation_count() - allocations_before;

    // 5. Filter with the kernels: which tasks of a batch run Exclusive Choice?
    let task_patterns: Vec<u32> = store
        .get_many(&batch_ids[0])
        .map(|spec| spec.ok().flatten().map_or(0, |s| u32::from(s[0])))
        .collect();
    let choices = pattern_matching::vectorized_pattern_filter(&task_patterns, 4);
    drop(store);
    std::fs::remove_dir_all(&dir)?;

    let (active, completed, failed) = stats.snapshot();
    let batches = workers * batches_per_worker;
    let tasks = batches * TASKS_PER_BATCH;
    println!("workers:              {workers}");
    println!("patterns registered:  {} ({})", executors.len(), {
        let mut names: Vec<String> = executors
            .keys()
            .map(|id| format!("{} {id}", id.0))
            .collect();
        names.sort();
        names.join(", ")
    });
    println!("workflow specs:       {SPECS} in a mapped store, fetched a batch at a time");
    println!("batches:              {batches} of {TASKS_PER_BATCH} tasks");
    println!(
        "tasks:                {tasks} ({completed} completed, {failed} failed, {active} active)"
    );
    println!(
        "time:                 {:.1} ms ({:.1} M tasks/s)",
        elapsed.as_secs_f64() * 1e3,
        tasks as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "heap allocations:     {allocations} in all, {:.2} per batch (thread start-up included)",
        allocations as f64 / batches as f64
    );
    println!(
        "arenas in the pool:   {} made, {} idle",
        pool.live(),
        pool.idle()
    );
    println!(
        "exclusive-choice tasks per batch (kernel filter): {}",
        choices.len()
    );
    println!("kernels:              {simd}");
    println!(
        "allocator:            {}",
        ALLOCATOR_STATS.backend().unwrap_or("not counting")
    );
    assert_eq!(completed + failed, tasks as u64);
    Ok(())
}
