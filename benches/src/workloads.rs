//! The batches both the report and the criterion benches run, one function
//! per (operation, subject), so the two always measure the same code.

use std::hint::black_box;
use std::mem::{self, MaybeUninit};

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

/// The experiment behind knhk's word rounding: the same downward bump over
/// a buffer, but byte-granular, so a 3-byte value takes 3 bytes. With no
/// rounding the pointer is no longer word-aligned, so every allocation
/// masks it down to the value's alignment (one more operation) before the
/// one compare. Measured beside knhk's arena in the report's `arena`
/// section (`alloc_bytes3/1000`): knhk rounds because of what this costs.
pub struct ByteBump {
    buf: Vec<MaybeUninit<u8>>,
    /// Offset of the next allocation's end within `buf`.
    top: usize,
}

impl ByteBump {
    /// A bump over `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> ByteBump {
        ByteBump {
            buf: vec![MaybeUninit::uninit(); bytes],
            top: bytes,
        }
    }

    /// Moves `value` into the buffer, byte-granular; `None` when full.
    #[inline(always)]
    pub fn alloc<T: Copy>(&mut self, value: T) -> Option<&mut T> {
        let base = self.buf.as_mut_ptr().addr();
        let end = (base + self.top).checked_sub(mem::size_of::<T>())?;
        let start = end & !(mem::align_of::<T>() - 1);
        if start < base {
            return None;
        }
        self.top = start - base;
        let slot = self.buf[self.top..].as_mut_ptr().cast::<T>();
        // SAFETY: `slot` (at `start`, masked to T's alignment) and the
        // size_of::<T>() bytes after it lie within `buf` (base <= start, start
        // + size <= old top); `&mut self` makes this the only reference.
        unsafe {
            slot.write(value);
            Some(&mut *slot)
        }
    }

    /// Frees everything.
    pub fn reset(&mut self) {
        self.top = self.buf.len();
    }
}

/// A 3-byte value: what word rounding costs the most on (5 of 8 bytes).
pub type Bytes3 = [u8; 3];

/// The `Bytes3` each `alloc_bytes3` case allocates.
#[inline(always)]
pub fn make_bytes3(i: u64) -> Bytes3 {
    [i as u8, (i >> 8) as u8, (i >> 16) as u8]
}

/// The byte-granular experiment: `n` allocations, then a reset.
#[inline(never)]
pub fn byte_bump_batch<T: Copy>(bump: &mut ByteBump, n: usize, make: impl Fn(u64) -> T) {
    for i in 0..n as u64 {
        black_box(
            bump.alloc(make(i))
                .map(|v| v as *mut T)
                .expect("sized for the batch"),
        );
    }
    bump.reset();
}
