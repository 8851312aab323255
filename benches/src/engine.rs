//! A workflow engine's hot loop, written once and run over two memory
//! stacks: knhk, and the crates a user would assemble by hand (bumpalo,
//! memmap2 with a `HashMap` index, crossbeam-utils' `CachePadded` counters,
//! a `OnceLock` registry, iterator code for the statistics).
//!
//! The loop ([`run_batch`]) is generic over [`Stack`] and [`Worker`]: the
//! task logic is the same code for every subject, and only the library
//! calls differ. Per task it looks the workflow spec up by id and reads its
//! first bytes (which name the task's pattern), counts the task as active,
//! allocates a 64-byte state and a short string in the batch arena, fetches
//! the pattern's executor from a 43-entry registry, runs it, and counts the
//! task as completed. Per batch it counts, searches and filters the batch's
//! pattern ids and sums, maxes and takes the variance of its durations, then
//! resets the arena.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;
use knhk_core::registry::PatternTable;
use knhk_core::store::layout::FRAME;
use knhk_core::{kernels, PatternId, WorkflowSpecId};
use knhk_std::arena::HeapArena;
use knhk_std::stats::ThreadShardedStats;
use knhk_std::storage::{MmapWorkflowStore, WorkflowStoreWriter};
use memmap2::Mmap;
use uuid::Uuid;

/// Tasks per batch.
pub const TASKS_PER_BATCH: usize = 1000;
/// Workflow specs in the store.
pub const SPECS: u64 = 100_000;
/// Bytes of the smallest spec.
pub const MIN_SPEC: usize = 200;
/// Bytes of the largest spec.
pub const MAX_SPEC: usize = 4000;
/// The batch arena's capacity: a batch's states and strings with room.
pub const ARENA_BYTES: usize = 256 * 1024;

/// A task's scratch state: 64 bytes, allocated in the batch arena.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct TaskState {
    /// The task's number in its batch.
    pub task: u64,
    /// The spec's length.
    pub spec_len: u64,
    /// The spec's first 8 bytes.
    pub head: u64,
    /// The pattern that executes the task.
    pub pattern: u64,
    /// Executor scratch.
    pub progress: [u64; 4],
}

const _: () = assert!(std::mem::size_of::<TaskState>() == 64);

/// A pattern's implementation: the engine's own code, the same on every
/// stack.
pub trait Executor: Send + Sync {
    /// Runs a task; returns its duration (a made-up but data-dependent
    /// number, so the statistics have something to chew on).
    fn execute(&self, state: &mut TaskState, name: &str) -> u64;
}

/// The executor of pattern `pattern`.
struct Step {
    pattern: u64,
}

impl Executor for Step {
    #[inline]
    fn execute(&self, state: &mut TaskState, name: &str) -> u64 {
        state.progress[0] = state.head.rotate_left(self.pattern as u32) ^ state.task;
        state.progress[1] = state.spec_len.wrapping_mul(self.pattern);
        state.progress[2] = name.len() as u64;
        (state.progress[0] ^ state.progress[1]) % 1000 + state.progress[2]
    }
}

fn executors() -> impl Iterator<Item = (PatternId, Box<dyn Executor>)> {
    (1..=PatternId::MAX).map(|p| {
        (
            PatternId(p),
            Box::new(Step {
                pattern: u64::from(p),
            }) as Box<dyn Executor>,
        )
    })
}

/// The short string each task allocates: its pattern's label.
fn label(pattern: u8) -> &'static str {
    const LABELS: [&str; 4] = ["sequence", "parallel-split", "synchronization", "choice"];
    LABELS[usize::from(pattern) % LABELS.len()]
}

/// What a batch's statistics came to (summed into a checksum so nothing is
/// optimised away).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Tasks of pattern 4.
    pub choices: usize,
    /// Whether any task is of pattern 43.
    pub any_termination: bool,
    /// Tasks of pattern 2, found by a filter.
    pub splits: usize,
    /// Sum of durations.
    pub total: u128,
    /// Longest duration.
    pub longest: u64,
    /// Variance of durations.
    pub variance: f64,
}

impl BatchStats {
    fn checksum(&self) -> u64 {
        (self.choices + self.splits) as u64
            ^ u64::from(self.any_termination)
            ^ self.total as u64
            ^ self.longest
            // Exact (knhk) and two-pass f64 (by hand) variances may differ
            // in their last bits.
            ^ self.variance.round() as u64
    }
}

/// A memory stack, shared by the engine's workers.
pub trait Stack: Sync {
    /// One worker's own part: its batch arena and its counter handle.
    type Worker<'s>: Worker
    where
        Self: 's;
    /// A worker's part.
    fn worker(&self) -> Self::Worker<'_>;
    /// Looks up the spec of every id, in order, and hands each to `each`.
    fn for_each_spec(&self, ids: &[WorkflowSpecId], each: impl FnMut(usize, &[u8]));
    /// The executor of `pattern` (1 to 43), from the stack's registry.
    fn executor(&self, pattern: u8) -> &dyn Executor;
}

/// What a worker does with its own memory.
pub trait Worker {
    /// Places a task's state in the batch arena.
    #[allow(clippy::mut_from_ref)] // a bump arena hands out `&mut` from `&self`
    fn alloc_state(&self, state: TaskState) -> &mut TaskState;
    /// Copies a string into the batch arena.
    fn alloc_str(&self, s: &str) -> &str;
    /// A task started.
    fn started(&self);
    /// A task completed.
    fn completed(&self);
    /// The batch's statistics.
    fn batch_stats(&mut self, patterns: &[u32], durations: &[u64]) -> BatchStats;
    /// Frees the batch's arena.
    fn reset(&mut self);
}

/// A worker's buffers for one batch: the pattern and duration of each task.
pub struct Scratch {
    patterns: Vec<u32>,
    durations: Vec<u64>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            patterns: vec![0; TASKS_PER_BATCH],
            durations: vec![0; TASKS_PER_BATCH],
        }
    }
}

/// The engine's loop over one batch: the same code for every stack.
#[inline(never)]
pub fn run_batch<S: Stack>(
    stack: &S,
    worker: &mut S::Worker<'_>,
    scratch: &mut Scratch,
    ids: &[WorkflowSpecId],
) -> u64 {
    let Scratch {
        patterns,
        durations,
    } = scratch;
    {
        let worker = &*worker;
        stack.for_each_spec(ids, |i, spec| {
            worker.started();
            let head = u64::from_le_bytes(spec[..8].try_into().expect("specs have 8 bytes"));
            let pattern = head as u8;
            let state = worker.alloc_state(TaskState {
                task: i as u64,
                spec_len: spec.len() as u64,
                head,
                pattern: u64::from(pattern),
                progress: [0; 4],
            });
            let name = worker.alloc_str(label(pattern));
            durations[i] = stack.executor(pattern).execute(state, name);
            patterns[i] = u32::from(pattern);
            worker.completed();
        });
    }
    let stats = worker.batch_stats(&patterns[..ids.len()], &durations[..ids.len()]);
    worker.reset();
    stats.checksum()
}

/// Runs every batch of `ids` (a whole number of batches) on one worker.
pub fn run_batches<S: Stack>(stack: &S, ids: &[WorkflowSpecId]) -> u64 {
    let mut worker = stack.worker();
    let mut scratch = Scratch::default();
    ids.chunks(TASKS_PER_BATCH)
        .map(|batch| run_batch(stack, &mut worker, &mut scratch, batch))
        .fold(0, u64::wrapping_add)
}

// ---------------------------------------------------------------------------
// knhk

/// How the knhk stack fetches a batch's specs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookups {
    /// [`MmapWorkflowStore::get_many`]: the batch's lookups overlapped.
    Batched,
    /// [`MmapWorkflowStore::get`], one task at a time.
    PerTask,
}

static KNHK_REGISTRY: PatternTable<Box<dyn Executor>> = PatternTable::new();

/// The engine on knhk: the mapped store with its compact index, an owned
/// arena per worker, per-thread sharded statistics, the once-initialised
/// pattern table and the SIMD kernels.
pub struct KnhkStack {
    store: MmapWorkflowStore,
    stats: ThreadShardedStats,
    lookups: Lookups,
}

impl KnhkStack {
    /// Opens the store at `path`.
    pub fn open(path: &Path, lookups: Lookups) -> KnhkStack {
        for (id, executor) in executors() {
            // Already registered by an earlier stack: the table keeps it.
            let _ = KNHK_REGISTRY.register(id, executor);
        }
        KnhkStack {
            store: MmapWorkflowStore::new(path).expect("the engine's store opens"),
            stats: ThreadShardedStats::new(),
            lookups,
        }
    }

    /// The statistics the workers counted in.
    pub fn stats(&self) -> (u64, u64, u64) {
        self.stats.snapshot()
    }
}

/// A knhk worker: its arena, the shared sharded statistics and a filter
/// buffer.
pub struct KnhkWorker<'s> {
    arena: HeapArena,
    stats: &'s ThreadShardedStats,
    matches: Box<[usize; TASKS_PER_BATCH]>,
}

impl Stack for KnhkStack {
    type Worker<'s> = KnhkWorker<'s>;

    fn worker(&self) -> KnhkWorker<'_> {
        KnhkWorker {
            arena: HeapArena::with_capacity(ARENA_BYTES).expect("memory for the arena"),
            stats: &self.stats,
            matches: Box::new([0; TASKS_PER_BATCH]),
        }
    }

    #[inline]
    fn for_each_spec(&self, ids: &[WorkflowSpecId], mut each: impl FnMut(usize, &[u8])) {
        match self.lookups {
            Lookups::Batched => {
                for (i, spec) in self.store.get_many(ids).enumerate() {
                    each(i, spec.ok().flatten().expect("every id is in the store"));
                }
            }
            Lookups::PerTask => {
                for (i, id) in ids.iter().enumerate() {
                    each(i, self.store.get(id).expect("every id is in the store"));
                }
            }
        }
    }

    #[inline]
    fn executor(&self, pattern: u8) -> &dyn Executor {
        &**KNHK_REGISTRY
            .get(PatternId(u32::from(pattern)))
            .expect("every pattern is registered")
    }
}

impl Worker for KnhkWorker<'_> {
    #[inline]
    fn alloc_state(&self, state: TaskState) -> &mut TaskState {
        self.arena.alloc(state).expect("the batch fits its arena")
    }

    #[inline]
    fn alloc_str(&self, s: &str) -> &str {
        self.arena.alloc_str(s).expect("the batch fits its arena")
    }

    #[inline]
    fn started(&self) {
        self.stats.inc_active();
    }

    #[inline]
    fn completed(&self) {
        self.stats.inc_completed();
    }

    fn batch_stats(&mut self, patterns: &[u32], durations: &[u64]) -> BatchStats {
        BatchStats {
            choices: kernels::count(patterns, 4),
            any_termination: kernels::any(patterns, 43),
            splits: kernels::filter_into(patterns, 2, &mut self.matches[..]),
            total: kernels::sum_u64(durations),
            longest: kernels::max_u64(durations).unwrap_or(0),
            variance: kernels::variance_u64(durations).unwrap_or(0.0),
        }
    }

    #[inline]
    fn reset(&mut self) {
        self.arena.reset();
    }
}

// ---------------------------------------------------------------------------
// By hand

static HAND_REGISTRY: OnceLock<Vec<Box<dyn Executor>>> = OnceLock::new();

fn hand_registry() -> &'static [Box<dyn Executor>] {
    HAND_REGISTRY.get_or_init(|| executors().map(|(_, e)| e).collect())
}

/// Active and completed counts, each on its own cache line.
#[derive(Default)]
pub struct HandCounters {
    active: CachePadded<AtomicU64>,
    completed: CachePadded<AtomicU64>,
}

/// The engine on crates assembled by hand: a `memmap2` map of a plain
/// entry file indexed at open by a `HashMap<Uuid, (offset, len)>` with
/// hasher `H`, a bumpalo `Bump` per worker reset per batch, `CachePadded`
/// atomic counters (shared by all workers, or one pair per worker), a
/// `OnceLock<Vec<Box<dyn Executor>>>` registry, iterator statistics.
pub struct HandStack<H> {
    map: Mmap,
    index: HashMap<Uuid, (u64, u32), H>,
    shared: HandCounters,
    per_worker_counters: bool,
}

impl<H: BuildHasher + Default + Sync> HandStack<H> {
    /// Maps the version-1 file at `path` and indexes it.
    pub fn open(path: &Path, per_worker_counters: bool) -> HandStack<H> {
        let file = std::fs::File::open(path).expect("the engine's entry file opens");
        // SAFETY: the bench's files are written once and never changed
        // while mapped.
        let map = unsafe { Mmap::map(&file) }.expect("the entry file maps");
        let mut index = HashMap::with_hasher(H::default());
        let mut at = 0;
        while at + FRAME <= map.len() {
            let id = Uuid::from_bytes(map[at..at + 16].try_into().expect("16 bytes"));
            let len = u64::from_le_bytes(map[at + 16..at + 24].try_into().expect("8 bytes"));
            index.insert(id, ((at + FRAME) as u64, len as u32));
            at += FRAME + len as usize;
        }
        hand_registry();
        HandStack {
            map,
            index,
            shared: HandCounters::default(),
            per_worker_counters,
        }
    }

    /// Number of specs indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no spec is indexed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// A hand-assembled worker.
pub struct HandWorker<'s> {
    bump: bumpalo::Bump,
    counters: HandCountersRef<'s>,
    matches: Vec<usize>,
}

/// The counters a hand worker bumps: the stack's shared pair, or its own.
pub enum HandCountersRef<'s> {
    /// Shared by all workers.
    Shared(&'s HandCounters),
    /// This worker's alone.
    Own(Box<HandCounters>),
}

impl HandCountersRef<'_> {
    #[inline]
    fn get(&self) -> &HandCounters {
        match self {
            HandCountersRef::Shared(c) => c,
            HandCountersRef::Own(c) => c,
        }
    }
}

impl<H: BuildHasher + Default + Sync> Stack for HandStack<H> {
    type Worker<'s>
        = HandWorker<'s>
    where
        H: 's;

    fn worker(&self) -> HandWorker<'_> {
        HandWorker {
            bump: bumpalo::Bump::with_capacity(ARENA_BYTES),
            counters: if self.per_worker_counters {
                HandCountersRef::Own(Box::default())
            } else {
                HandCountersRef::Shared(&self.shared)
            },
            matches: Vec::with_capacity(TASKS_PER_BATCH),
        }
    }

    #[inline]
    fn for_each_spec(&self, ids: &[WorkflowSpecId], mut each: impl FnMut(usize, &[u8])) {
        for (i, id) in ids.iter().enumerate() {
            let &(at, len) = self.index.get(&id.0).expect("every id is in the store");
            let at = at as usize;
            each(i, &self.map[at..at + len as usize]);
        }
    }

    #[inline]
    fn executor(&self, pattern: u8) -> &dyn Executor {
        &*hand_registry()[usize::from(pattern) - 1]
    }
}

impl Worker for HandWorker<'_> {
    #[inline]
    fn alloc_state(&self, state: TaskState) -> &mut TaskState {
        self.bump.alloc(state)
    }

    #[inline]
    fn alloc_str(&self, s: &str) -> &str {
        self.bump.alloc_str(s)
    }

    #[inline]
    fn started(&self) {
        self.counters.get().active.fetch_add(1, Relaxed);
    }

    #[inline]
    fn completed(&self) {
        let c = self.counters.get();
        c.active.fetch_sub(1, Relaxed);
        c.completed.fetch_add(1, Relaxed);
    }

    fn batch_stats(&mut self, patterns: &[u32], durations: &[u64]) -> BatchStats {
        self.matches.clear();
        self.matches.extend(
            patterns
                .iter()
                .enumerate()
                .filter(|&(_, &p)| p == 2)
                .map(|(i, _)| i),
        );
        let n = durations.len() as f64;
        let mean = durations.iter().map(|&d| d as f64).sum::<f64>() / n;
        BatchStats {
            choices: patterns.iter().filter(|&&p| p == 4).count(),
            any_termination: patterns.contains(&43),
            splits: self.matches.len(),
            total: durations.iter().map(|&d| u128::from(d)).sum(),
            longest: durations.iter().copied().max().unwrap_or(0),
            variance: durations
                .iter()
                .map(|&d| (d as f64 - mean) * (d as f64 - mean))
                .sum::<f64>()
                / n,
        }
    }

    #[inline]
    fn reset(&mut self) {
        self.bump.reset();
    }
}

/// `hand_plain`'s stack: std's SipHash, counters shared by all workers.
pub type HandPlain = HandStack<std::hash::RandomState>;
/// `hand_tuned`'s stack: foldhash, counters per worker.
pub type HandTuned = HandStack<foldhash::fast::RandomState>;

// ---------------------------------------------------------------------------
// Data

/// The id of spec `n`: spread like random v4 UUIDs, reproducibly.
pub fn spec_id(n: u64) -> WorkflowSpecId {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED_0E46;
    let b = (n ^ 0xC2B2_AE3D_27D4_EB4F).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    WorkflowSpecId::from_bytes(((u128::from(a) << 64) | u128::from(b)).to_le_bytes())
}

/// A xorshift generator with a fixed seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (not 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Spec `n`: its first byte names its pattern (1 to 43), and its length is
/// between [`MIN_SPEC`] and [`MAX_SPEC`] bytes.
pub fn spec(n: u64, out: &mut Vec<u8>) {
    let mut rng = Rng::new(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xABCD);
    let len = MIN_SPEC + (rng.next_u64() % (MAX_SPEC - MIN_SPEC + 1) as u64) as usize;
    let pattern = 1 + rng.next_u64() % u64::from(PatternId::MAX);
    out.clear();
    out.extend_from_slice(&(pattern | (n << 8)).to_le_bytes());
    let text = format!("<workflow n='{n}' pattern='{pattern}'>");
    while out.len() < len {
        out.extend_from_slice(text.as_bytes());
    }
    out.truncate(len);
}

/// The engine's files: the knhk store (version 3) and the plain entry file
/// the hand stacks index, with [`SPECS`] specs each (written once).
pub fn files(dir: &Path) -> (PathBuf, PathBuf) {
    let knhk = dir.join(format!("engine-{SPECS}.{}.knhk", crate::store_layout_tag()));
    let plain = dir.join(format!("engine-{SPECS}.v1"));
    std::fs::create_dir_all(dir).expect("a writable report directory");
    let mut data = Vec::with_capacity(MAX_SPEC);
    if !knhk.exists() {
        let mut writer = WorkflowStoreWriter::create(&knhk).expect("a writable report directory");
        for n in 0..SPECS {
            spec(n, &mut data);
            writer.add(spec_id(n), &data).expect("distinct ids");
        }
        writer.finish().expect("the store is written");
    }
    if !plain.exists() {
        let temp = dir.join(format!(".engine-{SPECS}.v1.tmp"));
        let mut out = BufWriter::new(std::fs::File::create(&temp).expect("writable"));
        for n in 0..SPECS {
            spec(n, &mut data);
            out.write_all(spec_id(n).as_bytes()).expect("writable");
            out.write_all(&(data.len() as u64).to_le_bytes())
                .expect("writable");
            out.write_all(&data).expect("writable");
        }
        out.flush().expect("writable");
        drop(out);
        std::fs::rename(&temp, &plain).expect("writable");
    }
    (knhk, plain)
}

/// `batches` batches of random ids of the first `specs` specs, for worker
/// `worker`.
pub fn batch_ids(worker: u64, batches: usize, specs: u64) -> Vec<WorkflowSpecId> {
    let mut rng = Rng::new(0x1234_5678 + worker * 0x9E37_79B9);
    (0..batches * TASKS_PER_BATCH)
        .map(|_| spec_id(rng.next_u64() % specs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stack_computes_the_same_batches() {
        let dir = std::env::temp_dir().join(format!("knhk-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A small store with the same generator.
        let knhk = dir.join("small.knhk");
        let plain = dir.join("small.v1");
        let mut writer = WorkflowStoreWriter::create(&knhk).unwrap();
        let mut out = Vec::new();
        let mut data = Vec::new();
        let specs = 2000;
        for n in 0..specs {
            spec(n, &mut data);
            writer.add(spec_id(n), &data).unwrap();
            out.extend_from_slice(spec_id(n).as_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&data);
        }
        writer.finish().unwrap();
        std::fs::write(&plain, &out).unwrap();
        let ids = batch_ids(0, 3, specs);
        let batched = KnhkStack::open(&knhk, Lookups::Batched);
        let expected = run_batches(&batched, &ids);
        assert_eq!(batched.stats(), (0, 3 * TASKS_PER_BATCH as u64, 0));
        assert_eq!(
            run_batches(&KnhkStack::open(&knhk, Lookups::PerTask), &ids),
            expected
        );
        assert_eq!(run_batches(&HandPlain::open(&plain, false), &ids), expected);
        assert_eq!(run_batches(&HandTuned::open(&plain, true), &ids), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
