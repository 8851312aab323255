//! Section `allocations`: a pattern-execution batch of 1000 tasks, each
//! creating a task state with a name and a few variables, on the heap (a
//! `Box` holding a `String` and a `Vec`) and in a knhk arena (the same
//! fields as arena slices, the arena reset after the batch). Besides the
//! time per batch, the report counts the heap allocations and requested
//! bytes of one batch with the counting allocator.

use std::hint::black_box;
use std::mem::MaybeUninit;

use knhk_core::arena::Arena;

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::heap_count;
use crate::targets::Target;

/// The allocations section.
pub const SECTION: Section = Section {
    name: "allocations",
    about: "a batch of 1000 task states: heap vs arena, time and allocation counts",
    run,
    targets: &[Target::AllocationsAtMost {
        case: "batch/1000",
        subject: "knhk",
        max: 0.0,
    }],
};

const TASKS: usize = 1000;

/// A task state as heap code builds it.
pub struct HeapTaskState {
    /// Task id.
    pub id: u64,
    /// Task name.
    pub name: String,
    /// Named variables.
    pub variables: Vec<(&'static str, u64)>,
}

/// The same state with its parts in an arena.
#[derive(Clone, Copy)]
pub struct ArenaTaskState<'s> {
    /// Task id.
    pub id: u64,
    /// Task name.
    pub name: &'s str,
    /// Named variables.
    pub variables: &'s [(&'static str, u64)],
}

/// Writes `task-{i}` into `buf` (no heap, so both subjects format alike).
fn task_name(i: usize, buf: &mut [u8; 32]) -> &str {
    let prefix = b"task-";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0_u8; 20];
    let mut n = i;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (k, d) in digits[..len].iter().rev().enumerate() {
        buf[prefix.len() + k] = *d;
    }
    std::str::from_utf8(&buf[..prefix.len() + len]).expect("ASCII digits")
}

fn variables(i: usize) -> [(&'static str, u64); 3] {
    [
        ("retries", 3),
        ("priority", (i % 5) as u64),
        ("deadline", i as u64 * 8),
    ]
}

/// One batch on the heap; the states live until the batch ends.
#[inline(never)]
pub fn heap_batch(tasks: usize) -> usize {
    let mut states = Vec::with_capacity(tasks);
    let mut buf = [0_u8; 32];
    for i in 0..tasks {
        states.push(Box::new(HeapTaskState {
            id: i as u64,
            name: String::from(task_name(i, &mut buf)),
            variables: variables(i).to_vec(),
        }));
    }
    states
        .iter()
        .map(|s| s.name.len() + s.variables.len() + s.id as usize)
        .sum()
}

/// One batch in the arena; everything goes at the reset.
#[inline(never)]
pub fn arena_batch(arena: &mut Arena<'_>, tasks: usize) -> usize {
    let mut sum = 0;
    let mut buf = [0_u8; 32];
    for i in 0..tasks {
        let name = arena
            .alloc_str(task_name(i, &mut buf))
            .expect("sized for the batch");
        let vars = arena
            .alloc_slice_copy(&variables(i))
            .expect("sized for the batch");
        let state = arena
            .alloc_copy(ArenaTaskState {
                id: i as u64,
                name,
                variables: vars,
            })
            .expect("sized for the batch");
        sum += state.name.len() + state.variables.len() + state.id as usize;
    }
    arena.reset();
    sum
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    ctx.begin(SECTION.name, 2);
    let case = format!("batch/{TASKS}");
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 256 * 1024];
    let mut arena = Arena::new(&mut buf);
    assert_eq!(
        heap_batch(TASKS),
        arena_batch(&mut arena, TASKS),
        "same work"
    );

    let results = SideBySide::new()
        .batch(cfg, "heap", 1, || {
            black_box(heap_batch(TASKS));
        })
        .batch(cfg, "knhk", 1, || {
            black_box(arena_batch(&mut arena, TASKS));
        })
        .run(cfg);
    ctx.record_all(&case, results);

    if heap_count::installed() {
        let (_, allocations, bytes) = heap_count::count(|| black_box(heap_batch(TASKS)));
        ctx.annotate(&case, "heap", allocations as f64, bytes as f64);
        let (_, allocations, bytes) =
            heap_count::count(|| black_box(arena_batch(&mut arena, TASKS)));
        ctx.annotate(&case, "knhk", allocations as f64, bytes as f64);
        eprintln!(
            "           arena bytes per batch (reused, not heap): {}",
            arena.high_water()
        );
    } else {
        eprintln!("           (heap counts need the report binary's counting allocator)");
    }
}
