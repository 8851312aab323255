//! Section `allocations`: a pattern-execution batch of 1000 tasks, each
//! creating a task state with a name and a few variables, on the heap (a
//! `Box` holding a `String` and a `Vec`) and in a knhk arena (the same
//! fields as arena slices, the arena reset after the batch). Besides the
//! time per batch, the report counts the heap allocations and requested
//! bytes of one batch with the counting allocator.
//!
//! The same heap batch also runs over each allocator backend as a value
//! (System, jemalloc, mimalloc), bare and under knhk's counting wrapper
//! (`heap_system`, `heap_counting_system`, ...): what exact allocation
//! counting costs on real work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};
use allocator_api2::boxed::Box as ApiBox;
use allocator_api2::vec::Vec as ApiVec;
use knhk_core::arena::Arena;
use mimalloc::MiMalloc;
use tikv_jemallocator::Jemalloc;

use super::alloc_stats::{COUNTING_JEMALLOC, COUNTING_MIMALLOC, COUNTING_SYSTEM};

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::heap_count;
use crate::targets::Target;

/// The allocations section.
pub const SECTION: Section = Section {
    name: "allocations",
    about: "a batch of 1000 task states: heap vs arena, time and allocation counts",
    run,
    targets: &[
        Target::AllocationsAtMost {
            case: "batch/1000",
            subject: "knhk",
            max: 0.0,
        },
        Target::ratio_at_most("batch/1000", "heap_counting_system", "heap_system", 1.03),
        Target::ratio_at_most(
            "batch/1000",
            "heap_counting_jemalloc",
            "heap_jemalloc",
            1.03,
        ),
        Target::ratio_at_most(
            "batch/1000",
            "heap_counting_mimalloc",
            "heap_mimalloc",
            1.03,
        ),
    ],
};

/// A `GlobalAlloc` value as an `allocator_api2` allocator, so that the heap
/// batch runs over any backend in one binary.
pub struct Backend<'g, G: GlobalAlloc>(pub &'g G);

// By hand: a derive would ask `G: Copy`, and only the reference is copied.
impl<G: GlobalAlloc> Clone for Backend<'_, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G: GlobalAlloc> Copy for Backend<'_, G> {}

// SAFETY: every block comes from `G::alloc` with the layout it is freed
// with (`deallocate` gets the allocation's own layout, as the trait
// requires), and `G` hands out blocks that stay valid until freed; moving
// or copying the handle keeps pointing at the same allocator.
unsafe impl<G: GlobalAlloc> Allocator for Backend<'_, G> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            let dangling = NonNull::new(layout.align() as *mut u8).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(dangling, 0));
        }
        // SAFETY: the layout's size is not zero.
        let block = NonNull::new(unsafe { self.0.alloc(layout) }).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(block, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: `ptr` came from `allocate` with this layout (the
            // caller's contract), so from `G::alloc` with it.
            unsafe { self.0.dealloc(ptr.as_ptr(), layout) };
        }
    }
}

/// A task state as heap code builds it, over allocator `A`.
pub struct HeapTaskStateIn<A: Allocator> {
    /// Task id.
    pub id: u64,
    /// Task name.
    pub name: ApiVec<u8, A>,
    /// Named variables.
    pub variables: ApiVec<(&'static str, u64), A>,
}

/// [`heap_batch`] with every allocation made by `alloc`.
#[inline(never)]
pub fn heap_batch_in<A: Allocator + Copy>(tasks: usize, alloc: A) -> usize {
    let mut states = ApiVec::with_capacity_in(tasks, alloc);
    let mut buf = [0_u8; 32];
    for i in 0..tasks {
        let mut name = ApiVec::new_in(alloc);
        name.extend_from_slice(task_name(i, &mut buf).as_bytes());
        let mut variables_in = ApiVec::new_in(alloc);
        variables_in.extend_from_slice(&variables(i));
        states.push(ApiBox::new_in(
            HeapTaskStateIn {
                id: i as u64,
                name,
                variables: variables_in,
            },
            alloc,
        ));
    }
    states
        .iter()
        .map(|s| s.name.len() + s.variables.len() + s.id as usize)
        .sum()
}

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
    ctx.begin(SECTION.name, 8);
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

    // The heap batch over each backend, bare and counted, side by side.
    let backends = SideBySide::new()
        .batch(cfg, "heap_system", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&System)));
        })
        .batch(cfg, "heap_counting_system", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&COUNTING_SYSTEM)));
        })
        .batch(cfg, "heap_jemalloc", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&Jemalloc)));
        })
        .batch(cfg, "heap_counting_jemalloc", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&COUNTING_JEMALLOC)));
        })
        .batch(cfg, "heap_mimalloc", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&MiMalloc)));
        })
        .batch(cfg, "heap_counting_mimalloc", 1, || {
            black_box(heap_batch_in(TASKS, Backend(&COUNTING_MIMALLOC)));
        })
        .run(cfg);
    ctx.record_all(&case, backends);
    assert_eq!(
        heap_batch_in(TASKS, Backend(&COUNTING_JEMALLOC)),
        heap_batch(TASKS),
        "same work"
    );
    // Counted exactly: three allocations a task, one for the batch's vector.
    let before = COUNTING_SYSTEM.snapshot();
    black_box(heap_batch_in(TASKS, Backend(&COUNTING_SYSTEM)));
    let after = COUNTING_SYSTEM.snapshot();
    assert_eq!(after.allocations - before.allocations, 3 * TASKS as u64 + 1);
    assert_eq!(after.current, before.current, "the batch freed everything");

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
