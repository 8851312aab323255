//! Section `huge_pages`: a TLB-bound workload. 4,000,000 task states of 64
//! bytes (256 MB) in one owned arena, then reads of one field of each in a
//! fixed random order (xorshift64, a permutation of all of them), summed.
//! Subjects: `knhk_huge` (the arena's buffer mapped 2 MiB-aligned and
//! advised for transparent huge pages, knhk's default for buffers of 2 MiB
//! or more) and `knhk_small_pages` (the same arena made with huge pages
//! switched off: an ordinary heap buffer). Each row says, in
//! `huge_pages_granted`, whether its buffer got huge pages (read from
//! `/proc/self/smaps`).

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

/// A task state: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct State {
    id: u64,
    _rest: [u64; 7],
}

/// An arena of `STATES` states, with huge pages asked for or not, and
/// whether they were granted.
fn filled(huge: bool) -> (HeapArena, *const State, Option<bool>) {
    let before = set_huge_pages(huge);
    let arena =
        HeapArena::with_capacity(STATES * size_of::<State>() + 4096).expect("memory for the arena");
    set_huge_pages(before);
    let states = arena
        .alloc_slice_fill_with(STATES, |i| State {
            id: i as u64,
            _rest: [0; 7],
        })
        .expect("sized for the states");
    let first = states.as_ptr();
    let granted = arena.huge_page_bytes().map(|bytes| bytes > 0);
    (arena, first, granted)
}

/// A permutation of `0..STATES`, fixed.
fn order() -> Vec<u32> {
    let mut order: Vec<u32> = (0..STATES as u32).collect();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn read_all(states: *const State, order: &[u32]) -> u64 {
    let mut sum = 0_u64;
    for &i in order {
        // SAFETY: `states` points at `STATES` initialised states that live
        // as long as their arena, which outlives this call, and every index
        // of `order` is below `STATES`.
        sum = sum.wrapping_add(unsafe { (*states.add(i as usize)).id });
    }
    sum
}

fn run(ctx: &mut Context) {
    ctx.begin(SECTION.name, 2);
    let order = order();
    let (huge_arena, huge, huge_granted) = filled(true);
    let (small_arena, small, small_granted) = filled(false);
    let expected = (STATES as u64 - 1) * STATES as u64 / 2;
    assert_eq!(read_all(huge, &order), expected);
    assert_eq!(read_all(small, &order), expected);
    let pass = |states: *const State| {
        let (sum, mut sample) = timed(|| read_all(black_box(states), &order));
        black_box(sum);
        sample.ops = STATES as u64;
        sample
    };
    let results = SideBySide::new()
        .sampled("knhk_huge", || pass(huge))
        .sampled("knhk_small_pages", || pass(small))
        .run_rounds(ctx.cfg.samples().clamp(3, 9));
    ctx.record_all(CASE, results);
    for (subject, granted) in [
        ("knhk_huge", huge_granted),
        ("knhk_small_pages", small_granted),
    ] {
        if let Some(row) = ctx.row_mut(CASE, subject) {
            row.huge_pages_granted = granted;
        }
        eprintln!(
            "           {CASE} {subject}: huge pages {}",
            match granted {
                Some(true) => "granted",
                Some(false) => "not granted",
                None => "unknown (no /proc/self/smaps)",
            }
        );
    }
    drop((huge_arena, small_arena));
}
