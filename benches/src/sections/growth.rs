//! Section `growth`: arenas that size themselves, over a sequence of
//! batches whose sizes vary over three orders of magnitude, with a spike.
//!
//! The sequence (fixed, the same in every run): a cycle of 16 batch sizes
//! drawn once, log-uniformly, from 10 to 10,000 allocations (xorshift64,
//! seed `0x9E37_79B9`), run 4 times; one spike batch of 100,000
//! allocations; then the cycle twice more (the calm that follows). Each
//! allocation is a 64-byte task state; after each batch its arena is reset.
//!
//! Subjects: `knhk_growing` (one `GrowingArena`), `bumpalo` (one `Bump`,
//! reset after each batch), `knhk_fixed` (a core arena sized for the
//! spike, which a fixed arena must be), `box` (a `Box` per state, dropped
//! after each batch). Rows: ns per allocation over the whole sequence;
//! `steady_allocations_per_batch`, the heap allocations of one more run of
//! the cycle once the subject has seen the sequence, per batch; and
//! `held_bytes_after_calm`, the heap bytes a fresh subject holds after the
//! whole sequence (and, for `knhk_growing`, `retained_bytes_after_calm`:
//! the spike's chunk, given back to the kernel lazily with `MADV_FREE` and
//! kept mapped for the next spike; resident until the kernel needs the
//! memory, so not held, but not unmapped either).

use std::hint::black_box;
use std::mem::MaybeUninit;

use bumpalo::Bump;
use knhk_core::arena::Arena;
use knhk_std::arena::GrowingArena;

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::heap_count;
use crate::row::Field;
use crate::targets::Target;

/// The growth section.
pub const SECTION: Section = Section {
    name: "growth",
    about: "self-sizing arenas over varying batches with a spike: GrowingArena vs bumpalo vs a fixed arena vs Box",
    run,
    targets: &[
        Target::ratio_at_most(CASE, "knhk_growing", "bumpalo", 1.0),
        Target::FieldAtMost {
            case: CASE,
            subject: "knhk_growing",
            field: Field::SteadyAllocationsPerBatch,
            max: 0.0,
        },
        Target::FieldRatioAtMost {
            case: CASE,
            numerator: "knhk_growing",
            denominator: "bumpalo",
            field: Field::HeldBytesAfterCalm,
            max: 0.5,
        },
    ],
};

const CASE: &str = "sequence/1";
const CYCLE: usize = 16;
const SPIKE: usize = 100_000;

type State = [u64; 8];

/// The cycle's batch sizes.
fn cycle() -> [usize; CYCLE] {
    let mut x = 0x9E37_79B9_u64;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // log-uniform in [10, 10,000]: 10^(1 + 3u), u in [0, 1)
        let u = (x >> 11) as f64 / (1_u64 << 53) as f64;
        10_f64.powf(1.0 + 3.0 * u) as usize
    })
}

/// The whole sequence's batch sizes.
fn sequence() -> Vec<usize> {
    let cycle = cycle();
    let mut batches = Vec::new();
    for _ in 0..4 {
        batches.extend_from_slice(&cycle);
    }
    batches.push(SPIKE);
    for _ in 0..2 {
        batches.extend_from_slice(&cycle);
    }
    batches
}

#[inline(always)]
fn state(i: usize) -> State {
    [i as u64; 8]
}

/// One subject: runs batches, and says how many heap bytes it holds.
trait Subject {
    fn batch(&mut self, n: usize);
    fn held(&self) -> usize;
    /// Bytes given back lazily and kept mapped.
    fn retained(&self) -> usize {
        0
    }
}

struct Growing(GrowingArena);

impl Subject for Growing {
    fn batch(&mut self, n: usize) {
        for i in 0..n {
            black_box(self.0.alloc(state(i)).expect("no limit"));
        }
        self.0.reset();
    }
    fn held(&self) -> usize {
        self.0.held_bytes()
    }
    fn retained(&self) -> usize {
        self.0.retained_bytes()
    }
}

struct Bumpalo(Bump);

impl Subject for Bumpalo {
    fn batch(&mut self, n: usize) {
        for i in 0..n {
            black_box(self.0.alloc(state(i)));
        }
        self.0.reset();
    }
    fn held(&self) -> usize {
        self.0.allocated_bytes()
    }
}

struct Fixed(Vec<MaybeUninit<u8>>);

impl Fixed {
    fn new() -> Fixed {
        // Room for the spike: a fixed arena must be sized for the largest
        // batch it will ever see.
        let largest = sequence().into_iter().max().unwrap_or(0);
        Fixed(vec![MaybeUninit::uninit(); largest * size_of::<State>()])
    }
}

impl Subject for Fixed {
    fn batch(&mut self, n: usize) {
        let arena = Arena::new(&mut self.0);
        for i in 0..n {
            black_box(arena.alloc(state(i)).expect("sized for the spike"));
        }
    }
    fn held(&self) -> usize {
        self.0.len()
    }
}

// A heap allocation per state is what this subject measures.
#[allow(clippy::vec_box)]
struct Boxes(Vec<Box<State>>);

impl Subject for Boxes {
    fn batch(&mut self, n: usize) {
        for i in 0..n {
            self.0.push(Box::new(state(i)));
        }
        black_box(&self.0);
        self.0.clear();
    }
    fn held(&self) -> usize {
        self.0.capacity() * size_of::<Box<State>>()
    }
}

fn run_all(subject: &mut impl Subject, batches: &[usize]) {
    for &n in batches {
        subject.batch(n);
    }
}

/// Heap allocations per batch of one run of the cycle, after the whole
/// sequence.
fn steady(subject: &mut impl Subject) -> f64 {
    run_all(subject, &sequence());
    let ((), allocations, _) = heap_count::count(|| run_all(subject, &cycle()));
    allocations as f64 / CYCLE as f64
}

/// The bytes a fresh subject holds, and retains, after the sequence.
fn held_after_calm(mut subject: impl Subject) -> (f64, f64) {
    run_all(&mut subject, &sequence());
    (subject.held() as f64, subject.retained() as f64)
}

fn run(ctx: &mut Context) {
    ctx.begin(SECTION.name, 4);
    let cfg = ctx.cfg;
    let batches = sequence();
    let total: usize = batches.iter().sum();
    let mut growing = Growing(GrowingArena::new());
    let mut bump = Bumpalo(Bump::new());
    let mut fixed = Fixed::new();
    let mut boxes = Boxes(Vec::new());
    let results = SideBySide::new()
        .batch(cfg, "knhk_growing", total as u64, || {
            run_all(&mut growing, &batches)
        })
        .batch(cfg, "bumpalo", total as u64, || {
            run_all(&mut bump, &batches)
        })
        .batch(cfg, "knhk_fixed", total as u64, || {
            run_all(&mut fixed, &batches)
        })
        .batch(cfg, "box", total as u64, || run_all(&mut boxes, &batches))
        .run(cfg);
    ctx.record_all(CASE, results);
    let figures = [
        (
            "knhk_growing",
            steady(&mut growing),
            held_after_calm(Growing(GrowingArena::new())),
        ),
        (
            "bumpalo",
            steady(&mut bump),
            held_after_calm(Bumpalo(Bump::new())),
        ),
        (
            "knhk_fixed",
            steady(&mut fixed),
            held_after_calm(Fixed::new()),
        ),
        (
            "box",
            steady(&mut boxes),
            held_after_calm(Boxes(Vec::new())),
        ),
    ];
    for (subject, steady, (held, retained)) in figures {
        if let Some(row) = ctx.row_mut(CASE, subject) {
            row.steady_allocations_per_batch = Some(steady);
            row.held_bytes_after_calm = Some(held);
            row.retained_bytes_after_calm = (subject == "knhk_growing").then_some(retained);
        }
        eprintln!(
            "           {CASE} {subject}: {steady:.2} heap allocations per steady batch, {held:.0} bytes held after the calm ({retained:.0} given back lazily, kept mapped)"
        );
    }
}
