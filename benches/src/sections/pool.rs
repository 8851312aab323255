//! Section `pool`: a batch's arena from knhk's `ResourcePool` (check a
//! 1 MiB arena out, allocate a little, return it) against creating a fresh
//! `Arena::with_capacity(1 MiB)` per batch, on 1 and `--threads` threads;
//! `knhk_growing` is the same batch from `ResourcePool::growing` (arenas
//! that start at 1 MiB, grow past it and resize at each return).
//! `ns_per_op` is per batch.

use std::hint::black_box;

use knhk_std::initialization::ResourcePool;
use knhk_std::memory::Arena;
use knhk_std::pool::GrowingArenas;

use super::{Context, Section};
use crate::harness::{self, Sample, SideBySide};
use crate::targets::Target;

/// The pool section.
pub const SECTION: Section = Section {
    name: "pool",
    about: "a batch's 1 MiB arena: pool checkout+return vs a fresh arena",
    run,
    targets: &[
        Target::RatioAtLeast {
            case: "checkout_return/1",
            numerator: "fresh_arena",
            denominator: "knhk",
            min: 10.0,
        },
        Target::RatioAtLeast {
            case: "checkout_return/2",
            numerator: "fresh_arena",
            denominator: "knhk",
            min: 10.0,
        },
    ],
};

const ARENA_BYTES: usize = 1 << 20;

/// What a batch does with its arena: a little allocation.
#[inline(always)]
fn use_arena(arena: &knhk_core::arena::Arena<'_>) {
    let state = arena.alloc([7_u64; 8]).expect("1 MiB holds 64 bytes");
    black_box(state);
    black_box(arena.alloc_str("task-1").expect("room for a name"));
}

fn pooled(pool: &ResourcePool) {
    let arena = pool.checkout().expect("the system has 1 MiB");
    use_arena(&arena);
}

/// The same batch in a pool of growing arenas: its return resets the arena
/// through the adaptive reset.
fn pooled_growing(pool: &ResourcePool<GrowingArenas>) {
    let arena = pool.checkout().expect("the system has 1 MiB");
    black_box(arena.alloc([7_u64; 8]).expect("no limit"));
    black_box(arena.alloc_str("task-1").expect("no limit"));
}

fn fresh() {
    let arena = Arena::with_capacity(ARENA_BYTES).expect("the system has 1 MiB");
    use_arena(&arena);
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let threads = cfg.threads;
    ctx.begin(SECTION.name, 4);
    let pool = ResourcePool::new(ARENA_BYTES, threads, threads).expect("non-zero capacity");
    let growing = ResourcePool::growing(ARENA_BYTES, threads, threads).expect("non-zero capacity");

    let results = SideBySide::new()
        .batch(cfg, "knhk", 1, || pooled(&pool))
        .batch(cfg, "knhk_growing", 1, || pooled_growing(&growing))
        .batch(cfg, "fresh_arena", 1, fresh)
        .run(cfg);
    ctx.record_all("checkout_return/1", results);

    let per_thread: u64 = if cfg.quick { 20_000 } else { 2_000_000 };
    let rounds = if cfg.quick { 5 } else { 9 };
    let (pool, growing) = (&pool, &growing);
    let results = SideBySide::new()
        .sampled("knhk", || on_threads(threads, per_thread, || pooled(pool)))
        .sampled("knhk_growing", || {
            on_threads(threads, per_thread, || pooled_growing(growing))
        })
        .sampled("fresh_arena", || on_threads(threads, per_thread, fresh))
        .run_rounds(rounds);
    ctx.record_all(&format!("checkout_return/{threads}"), results);
}

fn on_threads(threads: usize, per_thread: u64, batch: impl Fn() + Sync) -> Sample {
    harness::on_threads(threads, per_thread * threads as u64, |_| {
        for _ in 0..per_thread {
            batch();
        }
    })
}
