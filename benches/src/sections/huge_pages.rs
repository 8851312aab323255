//! Section `huge_pages`: a TLB-bound workload. 4,000,000 task states of 64
//! bytes (256 MB) in one owned arena; one state in every 32 KiB (8,192
//! states, at varying offsets in their 32 KiB so that they spread over
//! every set of the caches) are linked into one cycle in a fixed random
//! order (Sattolo's shuffle, xorshift64); then a walk of 1,000,000 steps
//! along the links, summing one field of each state it visits.
//!
//! Why this shape: it measures what huge pages change, the cost of
//! finding an address, and not DRAM. The states it visits (512 KB) stay in
//! L2, but they lie on 8,192 small pages, far more than a TLB holds,
//! against the 128 huge ones of the arena, which it does. And each read's
//! address comes from the read before, as when an engine follows a task's
//! links, so each TLB miss's page walk is paid in full instead of
//! overlapped with later reads. (The first version of this walk visited
//! one state in every 4 KiB page, 4 MB of them, taking for granted that
//! they stay in the 32 MB L3. On the machine that first ran it, an AMD
//! EPYC Zen 4 guest, they did not: a chase over 4 MB of contiguous lines
//! took 106 ns a step with huge pages, DRAM latency, since the guest's
//! share of the L3 is small; so that walk measured DRAM as much as the
//! TLB, and its ratio went from 1.09 to 1.45 with the machine's memory
//! traffic. One state in every 32 KiB: 1.33-1.74 in a standalone probe.)
//! Subjects: `knhk_huge` (the arena's buffer mapped 2 MiB-aligned and
//! advised for transparent huge pages, knhk's default for buffers of 2 MiB
//! or more) and `knhk_small_pages` (the same arena made with huge pages
//! switched off: an ordinary heap buffer). Each row says, in
//! `huge_pages_granted`, whether its buffer got huge pages (read from
//! `/proc/self/smaps`: at least half of it), and the log line says how
//! much.

use std::hint::black_box;

use knhk_std::arena::{set_huge_pages, HeapArena};

use super::{Context, Section};
use crate::harness::{timed, SideBySide};
use crate::targets::Target;

/// The huge-pages section.
pub const SECTION: Section = Section {
    name: "huge_pages",
    about: "random reads over a 256 MB arena: huge pages vs small pages",
    run,
    targets: &[Target::RatioAtLeast {
        case: CASE,
        numerator: "knhk_small_pages",
        denominator: "knhk_huge",
        min: 1.2,
    }],
};

const CASE: &str = "random_read/4000000";
const STATES: usize = 4_000_000;
/// States per 32 KiB block: the walk visits one of each.
const PER_BLOCK: usize = 32 * 1024 / size_of::<State>();

/// The state the walk visits in block `block` (of the arena's first
/// state's grid): a different line of each block (7 is prime to the 512
/// lines of a block, so all 512 offsets come round), so that the lines
/// visited spread over every set of the caches (states at the same
/// offset in their blocks would share a few sets and miss the cache for
/// want of ways).
fn visited(block: usize) -> usize {
    block * PER_BLOCK + block * 7 % PER_BLOCK
}
/// States visited per pass.
const STEPS: usize = 1_000_000;

/// A task state: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct State {
    id: u64,
    /// The next state of the walk.
    next: u64,
    _rest: [u64; 6],
}

/// An arena of `STATES` states, with huge pages asked for or not, and how
/// many of its bytes got them.
fn filled(huge: bool) -> (HeapArena, *const State, Option<usize>) {
    let before = set_huge_pages(huge);
    let arena =
        HeapArena::with_capacity(STATES * size_of::<State>() + 4096).expect("memory for the arena");
    set_huge_pages(before);
    let next = cycle();
    let states = arena
        .alloc_slice_fill_with(STATES, |i| State {
            id: i as u64,
            next: u64::from(next[i]),
            _rest: [0; 6],
        })
        .expect("sized for the states");
    let first = states.as_ptr();
    let granted = arena.huge_page_bytes();
    (arena, first, granted)
}

/// The successor of each state: the [`visited`] state of each 32 KiB
/// block linked into one cycle, fixed (Sattolo's shuffle: `j < i`, never
/// `j = i`, gives a single cycle); the other states point at block 0's.
fn cycle() -> Vec<u32> {
    let blocks = STATES / PER_BLOCK;
    let mut order: Vec<u32> = (0..blocks as u32).collect();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % i as u64) as usize);
    }
    // `order` is a cyclic permutation of the blocks: block p links to
    // block order[p].
    let mut next = vec![visited(0) as u32; STATES];
    for (block, &to) in order.iter().enumerate() {
        next[visited(block)] = visited(to as usize) as u32;
    }
    next
}

/// Walks `STEPS` links from block 0's state: the sum of the ids visited.
fn walk(states: *const State) -> u64 {
    let (mut sum, mut at) = (0_u64, visited(0));
    for _ in 0..STEPS {
        // SAFETY: `states` points at `STATES` initialised states that live
        // as long as their arena, which outlives this call, and every `next`
        // (like the first index) is below `STATES`.
        let state = unsafe { &*states.add(at) };
        sum = sum.wrapping_add(state.id);
        at = state.next as usize;
    }
    sum
}

fn run(ctx: &mut Context) {
    ctx.begin(SECTION.name, 2);
    let (huge_arena, huge, huge_granted) = filled(true);
    let (small_arena, small, small_granted) = filled(false);
    // The same walk over the same links in both.
    assert_eq!(walk(huge), walk(small));
    let pass = |states: *const State| {
        let (sum, mut sample) = timed(|| walk(black_box(states)));
        black_box(sum);
        sample.ops = STEPS as u64;
        sample
    };
    let results = SideBySide::new()
        .sampled("knhk_huge", || pass(huge))
        .sampled("knhk_small_pages", || pass(small))
        .run_rounds(ctx.cfg.samples().clamp(3, 9));
    ctx.record_all(CASE, results);
    let total = STATES * size_of::<State>();
    for (subject, granted) in [
        ("knhk_huge", huge_granted),
        ("knhk_small_pages", small_granted),
    ] {
        // Granted: at least half the buffer (a fragmented machine can
        // grant a few huge pages of many, which is not what is measured).
        let mostly = granted.map(|bytes| bytes >= total / 2);
        if let Some(row) = ctx.row_mut(CASE, subject) {
            row.huge_pages_granted = mostly;
        }
        eprintln!(
            "           {CASE} {subject}: huge pages {}",
            match granted {
                Some(bytes) => format!(
                    "{} ({} MiB of huge pages for {} MiB of states)",
                    if mostly == Some(true) {
                        "granted"
                    } else {
                        "not granted"
                    },
                    bytes >> 20,
                    total >> 20
                ),
                None => "unknown (no /proc/self/smaps)".to_string(),
            }
        );
    }
    drop((huge_arena, small_arena));
}
