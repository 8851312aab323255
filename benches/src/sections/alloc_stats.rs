//! Section `alloc_stats`: what counting costs. A 64-byte allocation and
//! free, on each bare allocator and on knhk's counting wrapper over it
//! (knhk-std's `ThreadTally`, as `ALLOCATOR_STATS` uses), on one thread and
//! on `--threads` threads. The allocators are used as values, so all six fit
//! in one binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use knhk_std::memory::{CountingAlloc, ThreadTally};
use mimalloc::MiMalloc;
use tikv_jemallocator::Jemalloc;

use super::{Context, Section};
use crate::harness::{self, Sample, SideBySide};
use crate::targets::Target;

/// The allocator-statistics section.
pub const SECTION: Section = Section {
    name: "alloc_stats",
    about: "counting overhead over system, jemalloc and mimalloc, 1 and N threads",
    run,
    // The pair targets over jemalloc and mimalloc are retired: exact
    // counting costs about 20 instructions a pair, which their 62- and
    // 75-instruction pairs cannot hide. What counting costs on real work
    // is the `allocations` section's `batch/1000` under each backend.
    targets: &[
        Target::ratio_at_most("alloc_free_64/1", "counting_system", "system", 1.10),
        Target::ratio_at_most("alloc_free_64/2", "counting_system", "system", 1.15),
    ],
};

/// knhk's counting wrapper over each backend, as `ALLOCATOR_STATS` uses it.
pub static COUNTING_SYSTEM: CountingAlloc<System, ThreadTally> =
    CountingAlloc::with_tally(System, ThreadTally::new());
/// The counting wrapper over jemalloc.
pub static COUNTING_JEMALLOC: CountingAlloc<Jemalloc, ThreadTally> =
    CountingAlloc::with_tally(Jemalloc, ThreadTally::new());
/// The counting wrapper over mimalloc.
pub static COUNTING_MIMALLOC: CountingAlloc<MiMalloc, ThreadTally> =
    CountingAlloc::with_tally(MiMalloc, ThreadTally::new());

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("64 bytes aligned to 8 is a valid layout"),
};

/// `n` allocate-and-free pairs of 64 bytes.
#[inline(never)]
fn pairs<A: GlobalAlloc>(allocator: &A, n: u64) {
    for _ in 0..n {
        // SAFETY: the layout is non-zero; each block is freed once with it.
        unsafe {
            let block = allocator.alloc(LAYOUT);
            assert!(!block.is_null(), "out of memory");
            allocator.dealloc(black_box(block), LAYOUT);
        }
    }
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let threads = cfg.threads;
    ctx.begin(SECTION.name, 12);

    const BATCH: u64 = 1000;
    let results = SideBySide::new()
        .batch(cfg, "system", BATCH, || pairs(&System, BATCH))
        .batch(cfg, "counting_system", BATCH, || {
            pairs(&COUNTING_SYSTEM, BATCH)
        })
        .batch(cfg, "jemalloc", BATCH, || pairs(&Jemalloc, BATCH))
        .batch(cfg, "counting_jemalloc", BATCH, || {
            pairs(&COUNTING_JEMALLOC, BATCH)
        })
        .batch(cfg, "mimalloc", BATCH, || pairs(&MiMalloc, BATCH))
        .batch(cfg, "counting_mimalloc", BATCH, || {
            pairs(&COUNTING_MIMALLOC, BATCH)
        })
        .run(cfg);
    ctx.record_all("alloc_free_64/1", results);

    let per_thread: u64 = if cfg.quick { 200_000 } else { 2_000_000 };
    let rounds = if cfg.quick { 5 } else { 9 };
    let results = SideBySide::new()
        .sampled("system", || on_threads(threads, per_thread, &System))
        .sampled("counting_system", || {
            on_threads(threads, per_thread, &COUNTING_SYSTEM)
        })
        .sampled("jemalloc", || on_threads(threads, per_thread, &Jemalloc))
        .sampled("counting_jemalloc", || {
            on_threads(threads, per_thread, &COUNTING_JEMALLOC)
        })
        .sampled("mimalloc", || on_threads(threads, per_thread, &MiMalloc))
        .sampled("counting_mimalloc", || {
            on_threads(threads, per_thread, &COUNTING_MIMALLOC)
        })
        .run_rounds(rounds);
    ctx.record_all(&format!("alloc_free_64/{threads}"), results);

    // The counting wrappers saw every pair, and nothing is left live (the
    // `allocations` section, which uses them too, runs after this one).
    for counting in [
        COUNTING_SYSTEM.snapshot(),
        COUNTING_JEMALLOC.snapshot(),
        COUNTING_MIMALLOC.snapshot(),
    ] {
        assert_eq!(counting.allocations, counting.deallocations);
        assert_eq!(counting.current, 0);
    }
}

/// `threads` threads each doing `per_thread` pairs at once.
fn on_threads<A: GlobalAlloc + Sync>(threads: usize, per_thread: u64, allocator: &A) -> Sample {
    harness::on_threads(threads, per_thread * threads as u64, |_| {
        pairs(allocator, per_thread)
    })
}
