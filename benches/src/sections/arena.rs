//! Section `arena`: a batch of n allocations then a reset, in knhk's core
//! arena, in `bumpalo::Bump`, and as `Box`es on the system allocator; and the
//! cost of the reset alone.

use std::hint::black_box;
use std::mem::MaybeUninit;

use bumpalo::Bump;
use knhk_core::arena::Arena;

use super::{Context, Section};
use crate::harness::{timed, SideBySide};
use crate::targets::Target;
use crate::workloads::{
    batch_bytes, box_batch, bumpalo_batch, byte_bump_batch, knhk_batch, make_bytes3, make_u64,
    ByteBump, TaskState,
};

/// The arena section.
pub const SECTION: Section = Section {
    name: "arena",
    about: "bump allocation in batches: knhk core arena vs bumpalo vs Box",
    run,
    targets: &[
        Target::ratio_at_most("alloc_u64/100", "knhk", "bumpalo", 1.0),
        Target::ratio_at_most("alloc_u64/1000", "knhk", "bumpalo", 1.0),
        Target::ratio_at_most("alloc_u64/10000", "knhk", "bumpalo", 1.0),
        Target::ratio_at_most("alloc_task_state/1000", "knhk", "bumpalo", 1.0),
        Target::RatioAtLeast {
            case: "alloc_u64/1000",
            numerator: "box",
            denominator: "knhk",
            min: 15.0,
        },
        Target::TicksAtMost {
            case: "alloc_u64/1000",
            subject: "knhk",
            max: 4.0,
        },
        Target::Flat {
            subject: "knhk",
            from: "reset/100",
            to: "reset/10000",
            max: 1.5,
        },
    ],
};

const ALLOC_SIZES: [usize; 3] = [100, 1000, 10_000];
const RESET_SIZES: [usize; 2] = [100, 10_000];
const SUBJECTS: usize = 3;

fn run(ctx: &mut Context) {
    ctx.begin(
        SECTION.name,
        (ALLOC_SIZES.len() + 2 + RESET_SIZES.len()) * SUBJECTS,
    );
    for n in ALLOC_SIZES {
        alloc_case(ctx, &format!("alloc_u64/{n}"), n, make_u64);
    }
    alloc_case(ctx, "alloc_task_state/1000", 1000, TaskState::new);
    bytes_case(ctx, 1000);
    for n in RESET_SIZES {
        reset_case(ctx, n);
    }
}

fn alloc_case<T: Copy, F: Fn(u64) -> T + Copy>(ctx: &mut Context, case: &str, n: usize, make: F) {
    let cfg = ctx.cfg;
    let mut buf = vec![MaybeUninit::<u8>::uninit(); batch_bytes::<T>(n)];
    let mut arena = Arena::new(&mut buf);
    let mut bump = Bump::with_capacity(batch_bytes::<T>(n));
    let mut held = Vec::with_capacity(n);
    let results = SideBySide::new()
        .batch(cfg, "knhk", n as u64, || knhk_batch(&mut arena, n, make))
        .batch(cfg, "bumpalo", n as u64, || {
            bumpalo_batch(&mut bump, n, make)
        })
        .batch(cfg, "box", n as u64, || box_batch(&mut held, n, make))
        .run(cfg);
    ctx.record_all(case, results);
}

/// 3-byte values: knhk's word-rounded arena (8 bytes each) against the
/// byte-granular experiment (3 bytes each, one more operation a
/// allocation) and bumpalo; the report also says the bytes each used.
fn bytes_case(ctx: &mut Context, n: usize) {
    let cfg = ctx.cfg;
    let case = format!("alloc_bytes3/{n}");
    let mut buf = vec![MaybeUninit::<u8>::uninit(); n * 8 + 64];
    let mut arena = Arena::new(&mut buf);
    let mut bytes = ByteBump::with_capacity(n * 3 + 64);
    let mut bump = Bump::with_capacity(n * 8 + 64);
    for _ in 0..n {
        arena.alloc(make_bytes3(0)).expect("sized for the batch");
    }
    eprintln!(
        "           {case}: knhk uses {} bytes (word-rounded); knhk_bytes would use {}",
        arena.used(),
        n * 3
    );
    arena.reset();
    let results = SideBySide::new()
        .batch(cfg, "knhk", n as u64, || {
            knhk_batch(&mut arena, n, make_bytes3)
        })
        .batch(cfg, "knhk_bytes", n as u64, || {
            byte_bump_batch(&mut bytes, n, make_bytes3)
        })
        .batch(cfg, "bumpalo", n as u64, || {
            bumpalo_batch(&mut bump, n, make_bytes3)
        })
        .run(cfg);
    ctx.record_all(&case, results);
}

/// Times only the reset: each sample fills many arenas (untimed), then
/// resets them all (timed), so one reset's cost is not lost in timer noise.
///
/// Every sample, whatever n, starts the timed part from the same cache
/// state: the data just written is pushed out by reading a buffer larger
/// than the last-level cache (so its write-backs happen untimed), then each
/// subject's own bookkeeping is read once, as a reset right after its
/// batch would find it.
fn reset_case(ctx: &mut Context, n: usize) {
    let cfg = ctx.cfg;
    let case = format!("reset/{n}");
    // The same number of arenas for every n, so every case resets the same
    // set of arena structs; only their contents differ.
    let many = 512;
    // Dropping n boxes is O(n), so fewer batches give the same sample time.
    let few = (200_000 / n).clamp(8, 1024);

    let mut bufs: Vec<Vec<MaybeUninit<u8>>> = (0..many)
        .map(|_| vec![MaybeUninit::uninit(); batch_bytes::<u64>(n)])
        .collect();
    let mut arenas: Vec<Arena<'_>> = bufs.iter_mut().map(|b| Arena::new(b)).collect();
    let mut bumps: Vec<Bump> = (0..many)
        .map(|_| Bump::with_capacity(batch_bytes::<u64>(n)))
        .collect();
    let mut helds: Vec<Vec<Box<u64>>> = (0..few).map(|_| Vec::with_capacity(n)).collect();
    let scratch = vec![1_u8; EVICTION_BYTES];

    let results = SideBySide::new()
        .sampled("knhk", || {
            for arena in &arenas {
                for i in 0..n as u64 {
                    black_box(arena.alloc(i).expect("sized for the batch"));
                }
            }
            evict_caches(&scratch);
            for arena in &arenas {
                black_box(arena.used());
            }
            let ((), mut s) = timed(|| {
                for arena in arenas.iter_mut() {
                    arena.reset();
                }
            });
            s.ops = many as u64;
            s
        })
        .sampled("bumpalo", || {
            for bump in &bumps {
                for i in 0..n as u64 {
                    black_box(bump.alloc(i));
                }
            }
            evict_caches(&scratch);
            for bump in &bumps {
                // Reads the current chunk's footer, which reset writes.
                black_box(bump.chunk_capacity());
            }
            let ((), mut s) = timed(|| {
                for bump in bumps.iter_mut() {
                    bump.reset();
                }
            });
            s.ops = many as u64;
            s
        })
        .sampled("box", || {
            for held in helds.iter_mut() {
                held.extend((0..n as u64).map(|i| black_box(Box::new(i))));
            }
            evict_caches(&scratch);
            for held in &helds {
                black_box(held.len());
            }
            let ((), mut s) = timed(|| {
                for held in helds.iter_mut() {
                    held.clear();
                }
            });
            s.ops = few as u64;
            s
        })
        .run(cfg);
    ctx.record_all(&case, results);
}

/// Larger than the last-level cache of the machines we measure on.
const EVICTION_BYTES: usize = 64 << 20;

/// Reads `scratch` one byte per cache line, pushing everything else out.
fn evict_caches(scratch: &[u8]) {
    let mut sum = 0_u8;
    for line in scratch.chunks(64) {
        sum = sum.wrapping_add(line[0]);
    }
    black_box(sum);
}
