//! The batches both the report and the criterion benches run, one function
//! per (operation, subject), so the two always measure the same code.

use std::hint::black_box;

use bumpalo::Bump;
use knhk_core::arena::Arena;

/// A 64-byte task state, the value a pattern-execution batch allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TaskState {
    /// Task id.
    pub id: u64,
    /// Pattern the task executes.
    pub pattern: u32,
    /// Status code.
    pub status: u32,
    /// Inputs.
    pub inputs: [u64; 4],
    /// Deadline, in ticks.
    pub deadline: u64,
    /// Flags.
    pub flags: u64,
}

const _: () = assert!(core::mem::size_of::<TaskState>() == 64);

impl TaskState {
    /// The state of task `i`.
    #[inline(always)]
    pub fn new(i: u64) -> TaskState {
        TaskState {
            id: i,
            pattern: (i % 43) as u32 + 1,
            status: 0,
            inputs: [i, i + 1, i + 2, i + 3],
            deadline: i * 8,
            flags: 0,
        }
    }
}

/// Arena bytes for a batch of `n` values of `T`.
pub fn batch_bytes<T>(n: usize) -> usize {
    n * core::mem::size_of::<T>() + 64
}

/// knhk: `n` allocations in the core arena, then a reset.
#[inline(never)]
pub fn knhk_batch<'a, T: Copy + 'a>(arena: &mut Arena<'a>, n: usize, make: impl Fn(u64) -> T) {
    for i in 0..n as u64 {
        black_box(
            arena
                .alloc(make(i))
                .expect("the arena is sized for the batch"),
        );
    }
    arena.reset();
}

/// bumpalo: `n` allocations in a `Bump`, then a reset.
#[inline(never)]
pub fn bumpalo_batch<T: Copy>(bump: &mut Bump, n: usize, make: impl Fn(u64) -> T) {
    for i in 0..n as u64 {
        black_box(bump.alloc(make(i)));
    }
    bump.reset();
}

/// box: `n` `Box::new`s on the global allocator, all freed at the end.
#[inline(never)]
pub fn box_batch<T: Copy>(held: &mut Vec<Box<T>>, n: usize, make: impl Fn(u64) -> T) {
    for i in 0..n as u64 {
        held.push(black_box(Box::new(make(i))));
    }
    held.clear();
}

/// The `u64` each `alloc_u64` case allocates.
#[inline(always)]
pub fn make_u64(i: u64) -> u64 {
    i
}
