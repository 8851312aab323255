//! A bump arena over memory the caller supplies.
//!
//! Workflow engines build many short-lived values per batch (task states,
//! scratch slices, names) and throw them all away together. A bump arena
//! makes each allocation a subtraction and a compare, and the throw-away a
//! single store, instead of a `malloc`/`free` pair per value.
//!
//! [`Arena`] works over a `&mut [MaybeUninit<u8>]`: a stack array, a slice of a
//! heap buffer, or a `&'static mut` buffer carved out of a `static` on a
//! microcontroller. It never allocates and never panics on bad input: every
//! failure is an [`ArenaError`] that says what was asked and what remained.
//!
//! # How it differs from `bumpalo`
//!
//! - **One region, no chunk chain.** The bump pointer and the region's floor
//!   live in the arena itself, so the fast path reads two fields of `self`
//!   rather than following a pointer to a chunk footer. When the region is
//!   full, allocation fails with [`ArenaError::Exhausted`]; it does not grow.
//! - **Values are dropped.** A value whose type needs `Drop` is dropped exactly
//!   once: on [`reset`](Arena::reset), on [`rewind`](Arena::rewind) past it,
//!   at the end of the [`scope`](Arena::scope) it was allocated in, or when the
//!   arena is dropped. The bookkeeping is a small record allocated in the
//!   arena beside the value; for types without drop glue it is compiled out
//!   (`core::mem::needs_drop` is a constant), so `Copy` data costs nothing.
//! - **Checkpoints and scopes** free everything allocated since a point.
//!
//! # Soundness: why `alloc` asks for `T: 'a`
//!
//! Dropping values later is only sound if everything they borrow is still
//! alive then. `Arena<'a>` is *invariant* in `'a` and has a `Drop` impl, so the
//! borrow checker keeps `'a` alive until the arena is gone; `alloc` accepts
//! only `T: 'a`, so every value the arena will drop outlives the arena. Types
//! without drop glue never need that guarantee, so the `Copy` entry points
//! ([`alloc_copy`](Arena::alloc_copy), [`alloc_slice_copy`](Arena::alloc_slice_copy),
//! [`alloc_str`](Arena::alloc_str)) do not ask for it: use them to build
//! structures that point into the arena itself.
//!
//! ```
//! use core::mem::MaybeUninit;
//! use knhk_core::arena::{Arena, ArenaError};
//!
//! #[derive(Clone, Copy)]
//! struct Node<'n> {
//!     value: u32,
//!     next: Option<&'n Node<'n>>,
//! }
//!
//! let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
//! let arena = Arena::new(&mut buf);
//! let tail = arena.alloc_copy(Node { value: 2, next: None })?;
//! let head = arena.alloc_copy(Node { value: 1, next: Some(tail) })?;
//! assert_eq!(head.next.map(|n| n.value), Some(2));
//! # Ok::<(), ArenaError>(())
//! ```
//!
//! # What the borrow checker rules out
//!
//! Each of these is a compile error (the doc tests check it):
//!
//! A reference used after a reset:
//!
//! ```compile_fail
//! # use core::mem::MaybeUninit;
//! # use knhk_core::arena::Arena;
//! let mut buf = [MaybeUninit::<u8>::uninit(); 64];
//! let mut arena = Arena::new(&mut buf);
//! let x = arena.alloc(1_u64).unwrap();
//! arena.reset();
//! *x += 1; // error: `arena` is still borrowed by `x`
//! ```
//!
//! A value that borrows something that dies before the arena (its `Drop`
//! would run on a dangling borrow):
//!
//! ```compile_fail
//! # use core::mem::MaybeUninit;
//! # use knhk_core::arena::Arena;
//! struct Logger<'l>(&'l String);
//! impl Drop for Logger<'_> {
//!     fn drop(&mut self) { println!("{}", self.0) }
//! }
//! let mut buf = [MaybeUninit::<u8>::uninit(); 64];
//! let arena = Arena::new(&mut buf);
//! {
//!     let name = String::from("task");
//!     arena.alloc(Logger(&name)).unwrap(); // error: `name` does not live long enough
//! }
//! ```
//!
//! A reference escaping the scope that freed it:
//!
//! ```compile_fail
//! # use core::mem::MaybeUninit;
//! # use knhk_core::arena::Arena;
//! let mut buf = [MaybeUninit::<u8>::uninit(); 64];
//! let arena = Arena::new(&mut buf);
//! let leaked = arena.scope(|inner| inner.alloc(1_u64).unwrap()); // error
//! ```
//!
//! Sharing an arena between threads (it is neither `Send` nor `Sync`):
//!
//! ```compile_fail
//! # use core::mem::MaybeUninit;
//! # use knhk_core::arena::Arena;
//! fn needs_sync<T: Sync>(_: &T) {}
//! let mut buf = [MaybeUninit::<u8>::uninit(); 64];
//! needs_sync(&Arena::new(&mut buf));
//! ```
//!
//! # Layout
//!
//! The arena bumps *downwards*, from the end of the buffer towards its start:
//! rounding an address down to an alignment is a single mask, where rounding
//! up needs an add as well. [`used`](Arena::used) counts bytes from the end.
//!
//! Every allocation's size is rounded up to a multiple of [`WORD`] (8 bytes
//! on 64-bit targets, 4 on 32-bit ones), so the bump pointer is always
//! word-aligned. For the common case, a type aligned to at most a word, the
//! fast path then needs no alignment mask and only one bounds check: one
//! subtraction and one compare per allocation. The price is that a value
//! smaller than a word (a `u8`, a 3-byte string) occupies a whole word.
//! The usable buffer ends at its last word boundary, so
//! [`capacity`](Arena::capacity) can be up to `WORD - 1` bytes less than the
//! buffer's length.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, MaybeUninit};
use core::ptr::{self, NonNull};

/// Why an arena operation failed.
///
/// Every variant carries the numbers needed to act on it: how much was asked,
/// and how much there was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ArenaError {
    /// The request fits the arena's capacity but not what remains now. A
    /// [`reset`](Arena::reset) or [`rewind`](Arena::rewind) frees space.
    Exhausted {
        /// Bytes requested.
        size: usize,
        /// Alignment requested.
        align: usize,
        /// Free bytes left (before alignment padding).
        remaining: usize,
    },
    /// The request can never fit: even an empty arena of this capacity has no
    /// suitably aligned run of `size` bytes. Use a larger buffer.
    TooLarge {
        /// Bytes requested.
        size: usize,
        /// Alignment requested.
        align: usize,
        /// The arena's capacity in bytes.
        capacity: usize,
    },
    /// `len` elements of `elem_size` bytes overflow `isize::MAX` bytes.
    SizeOverflow {
        /// Size of one element in bytes.
        elem_size: usize,
        /// Number of elements requested.
        len: usize,
    },
    /// A [`scope`](Arena::scope) currently holds all of this arena's free
    /// memory; allocate through the arena the scope's closure received.
    ScopeActive,
    /// [`rewind`](Arena::rewind) was given a checkpoint that lies beyond the
    /// arena's current position, so there is nothing to free back to it.
    CheckpointAhead {
        /// Bytes in use when the checkpoint was taken.
        checkpoint: usize,
        /// Bytes in use now.
        used: usize,
    },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArenaError::Exhausted {
                size,
                align,
                remaining,
            } => write!(
                f,
                "arena exhausted: requested {size} bytes aligned to {align}, \
                 but only {remaining} bytes remain; reset the arena or give it more capacity"
            ),
            ArenaError::TooLarge {
                size,
                align,
                capacity,
            } => write!(
                f,
                "request of {size} bytes aligned to {align} can never fit \
                 in an arena of {capacity} bytes"
            ),
            ArenaError::SizeOverflow { elem_size, len } => write!(
                f,
                "{len} elements of {elem_size} bytes overflow the largest possible allocation"
            ),
            ArenaError::ScopeActive => f.write_str(
                "a scope holds this arena's free memory; allocate through the scope's arena",
            ),
            ArenaError::CheckpointAhead { checkpoint, used } => write!(
                f,
                "cannot rewind to a checkpoint at {checkpoint} bytes: only {used} bytes are in use"
            ),
        }
    }
}

impl core::error::Error for ArenaError {}

/// A value the arena could not take, handed back with the reason.
///
/// Returned by [`Arena::alloc_or_return`], so that a caller can keep the value
/// (put it on the heap, or retry after a reset) instead of losing it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected<T> {
    /// The value that was not allocated.
    pub value: T,
    /// Why it was not allocated.
    pub error: ArenaError,
}

impl<T> Rejected<T> {
    /// The value that was not allocated.
    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T: fmt::Debug> core::error::Error for Rejected<T> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The granule of arena allocations: every allocation's size is rounded up
/// to a multiple of this, which keeps the bump pointer aligned to it.
pub const WORD: usize = mem::align_of::<usize>();

/// `size` rounded up to a multiple of [`WORD`]. `size` is at most
/// `isize::MAX` (a `Layout` size), so this cannot overflow.
#[inline(always)]
const fn round_to_word(size: usize) -> usize {
    (size + (WORD - 1)) & !(WORD - 1)
}

/// A position in an arena, taken by [`Arena::checkpoint`].
///
/// [`Arena::rewind`] frees (and drops) everything allocated after it. A
/// checkpoint is only a position: rewinding to one that is stale, or that
/// came from another arena, is never unsound; it frees back to that position
/// if the arena has reached it and fails with
/// [`ArenaError::CheckpointAhead`] otherwise. A value whose memory straddles
/// the position (possible only with a stale checkpoint) is dropped, since
/// part of it is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Checkpoint {
    used: usize,
}

impl Checkpoint {
    /// Bytes the arena had in use when the checkpoint was taken.
    pub const fn used(self) -> usize {
        self.used
    }
}

/// Bookkeeping for one allocation that needs dropping, stored in the arena
/// just below the value (the arena bumps downwards, so a record is always at
/// a lower address than the value it drops, and newer records are lower
/// still: the list from `Arena::drops` runs newest to oldest, lowest address
/// to highest).
struct DropRecord {
    next: Option<NonNull<DropRecord>>,
    data: *mut u8,
    /// Number of initialised elements at `data`.
    len: usize,
    drop_fn: unsafe fn(*mut u8, usize),
}

/// Drops `len` values of type `T` starting at `data`.
///
/// # Safety
/// `data` must point to `len` initialised, properly aligned values of `T`
/// that nothing else will use or drop afterwards.
unsafe fn drop_values<T>(data: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(data.cast::<T>(), len)) }
}

/// A bump arena over a caller-supplied buffer.
///
/// Allocation takes `&self` and hands out references that borrow the arena,
/// so many values can be alive at once; [`reset`](Arena::reset) takes
/// `&mut self`, so no reference can outlive it.
///
/// ```
/// use core::mem::MaybeUninit;
/// use knhk_core::arena::Arena;
///
/// let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
/// let mut arena = Arena::new(&mut buf);
/// for batch in 0..3_u64 {
///     let mut total = 0;
///     for task in 0..100_u64 {
///         let state = arena.alloc([batch, task, 0, 0])?;
///         state[2] = batch * task;
///         total += state[2];
///     }
///     assert_eq!(total, batch * 4950);
///     arena.reset(); // O(1): the next batch reuses the same memory
/// }
/// # Ok::<(), knhk_core::arena::ArenaError>(())
/// ```
///
/// The arena is neither `Send` nor `Sync`: it may hold values of any type
/// (including `!Send` ones such as `Rc`) and drops them where it is reset.
pub struct Arena<'a> {
    /// Next allocation ends at or below this address.
    ptr: Cell<*mut u8>,
    /// Lowest address available to allocate. Equal to `base` except while a
    /// scope has borrowed the free space below `ptr`.
    floor: Cell<*mut u8>,
    /// First byte of the buffer.
    base: Cell<*mut u8>,
    /// One past the last byte of the buffer.
    end: Cell<*mut u8>,
    /// Newest allocation that needs dropping.
    drops: Cell<Option<NonNull<DropRecord>>>,
    /// Largest `used()` seen before the last decrease of the bump position.
    high_water: Cell<usize>,
    /// The arena holds the buffer's unique borrow for `'a` ...
    _buffer: PhantomData<&'a mut [MaybeUninit<u8>]>,
    /// ... and is invariant in `'a`, so `'a` cannot be shortened to let a
    /// value with a shorter borrow in (see the module docs).
    _invariant: PhantomData<fn(&'a ()) -> &'a ()>,
}

// Handing out `&mut T` from `&self` is what an arena is for: each reference
// covers memory no other reference covers (the bump pointer only moves past
// it), so the references never alias.
#[allow(clippy::mut_from_ref)]
impl<'a> Arena<'a> {
    /// An arena over `buffer`. Its capacity is the part of the buffer from
    /// its first to its last [`WORD`] boundary (every byte of it can be
    /// handed out); a buffer with no whole aligned word gives an arena in
    /// which every non-zero-sized allocation fails with
    /// [`ArenaError::TooLarge`].
    ///
    /// The buffer may have any alignment: the up to `WORD - 1` bytes before
    /// its first word boundary and after its last are left out, and each
    /// allocation is aligned on its own.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    /// // Start one byte in, so the buffer is misaligned.
    /// let arena = Arena::new(&mut buf[1..]);
    /// assert_eq!(arena.capacity(), arena.remaining());
    /// let all = core::alloc::Layout::from_size_align(arena.remaining(), 1).unwrap();
    /// assert!(arena.alloc_layout(all).is_ok()); // every counted byte is usable
    /// ```
    pub fn new(buffer: &'a mut [MaybeUninit<u8>]) -> Arena<'a> {
        let len = buffer.len();
        let base = buffer.as_mut_ptr().cast::<u8>();
        // SAFETY: `buffer` is valid for reads and writes of `len` bytes for
        // `'a` and we hold its unique borrow for `'a`.
        unsafe { Arena::from_raw_parts(base, len) }
    }

    /// An arena over `len` bytes at `base`.
    ///
    /// This is how an owner of a buffer (a heap allocation, a memory-mapped
    /// region) builds an arena without a Rust slice.
    ///
    /// # Safety
    ///
    /// `base` must be non-null and valid for reads and writes of `len`
    /// bytes for `'a`, `len` must not exceed `isize::MAX`, and nothing else
    /// may read or write those bytes while the arena or any reference it
    /// handed out is alive.
    #[inline]
    pub unsafe fn from_raw_parts(base: *mut u8, len: usize) -> Arena<'a> {
        // The arena covers the buffer's whole words: from its first word
        // boundary to its last. Bytes outside could never be handed out
        // (allocations are word-rounded and bump down from a word-aligned
        // pointer), so they are not counted either.
        let lead = base.addr().wrapping_neg() % WORD;
        let (lead, usable) = if lead >= len {
            (0, 0)
        } else {
            (lead, (len - lead) & !(WORD - 1))
        };
        // SAFETY: `lead + usable <= len`, so both are within (or one past
        // the end of) the caller's allocation.
        let (start, end) = unsafe { (base.add(lead), base.add(lead + usable)) };
        Arena::between(start, end)
    }

    /// An empty arena from `start` to `end`, both word-aligned.
    const fn between(start: *mut u8, end: *mut u8) -> Arena<'a> {
        Arena {
            ptr: Cell::new(end),
            floor: Cell::new(start),
            base: Cell::new(start),
            end: Cell::new(end),
            drops: Cell::new(None),
            high_water: Cell::new(0),
            _buffer: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// An arena over no memory: every allocation that needs a byte of it
    /// fails ([`ArenaError::TooLarge`]; [`ArenaError::Exhausted`] for a
    /// zero-sized value whose `Drop` would need a record). A placeholder for
    /// an arena that gets its buffer later, through
    /// [`replace`](Arena::replace).
    ///
    /// ```
    /// # use knhk_core::arena::{Arena, ArenaError};
    /// let arena = Arena::empty();
    /// assert_eq!(arena.capacity(), 0);
    /// assert!(matches!(arena.alloc(1_u8), Err(ArenaError::TooLarge { .. })));
    /// assert!(arena.alloc(()).is_ok()); // zero-sized values take no space
    /// ```
    pub const fn empty() -> Arena<'a> {
        // A word-aligned address that is never dereferenced: the arena has
        // no byte to hand out.
        let at = ptr::without_provenance_mut(WORD);
        Arena::between(at, at)
    }

    /// Makes this arena `other`, through a shared reference, and returns
    /// what it was (its buffer, the values in it and their drop records,
    /// its high-water mark) as an arena of its own.
    ///
    /// For owners that chain buffers: knhk-std's `GrowingArena` keeps the
    /// arena it allocates in inline, so an allocation reads the bump
    /// pointer without first loading a pointer to the arena, and when that
    /// arena is full it swaps in one over a new buffer with this and keeps
    /// the full one. A caller that holds `&self` across the swap (a
    /// closure allocating in the same owner) sees the new arena from then
    /// on.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut first = [MaybeUninit::<u8>::uninit(); 64];
    /// let mut second = [MaybeUninit::<u8>::uninit(); 64];
    /// let arena = Arena::new(&mut first);
    /// let a = arena.alloc(1_u64)?;
    /// // SAFETY: no scope is active, and `full` outlives `a` untouched.
    /// let full = unsafe { arena.replace(Arena::new(&mut second)) };
    /// let b = arena.alloc(2_u64)?;
    /// assert_eq!((*a, *b), (1, 2));
    /// assert_eq!((full.used(), arena.used()), (8, 8));
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    ///
    /// # Safety
    ///
    /// - This arena must not be one that [`scope`](Arena::scope) lends to
    ///   its closure (it would outlive the scope), and no scope of this
    ///   arena may be active (a scope hands the memory it lent back to the
    ///   arena it came from when it ends).
    /// - The returned arena must not be reset, rewound or dropped until
    ///   this arena has been reset or dropped: the references this arena
    ///   handed out before the call point into the returned arena's buffer,
    ///   and a value whose `alloc_with` was running when the swap happened
    ///   (its `make` made the call) lies in that buffer with its drop
    ///   record in this arena.
    pub unsafe fn replace(&self, other: Arena<'a>) -> Arena<'a> {
        // Every field is a `Cell` (or a marker), so each can be swapped
        // while other shared references to this arena exist.
        let was = Arena {
            ptr: Cell::new(self.ptr.replace(other.ptr.get())),
            floor: Cell::new(self.floor.replace(other.floor.get())),
            base: Cell::new(self.base.replace(other.base.get())),
            end: Cell::new(self.end.replace(other.end.get())),
            drops: Cell::new(self.drops.replace(other.drops.get())),
            high_water: Cell::new(self.high_water.replace(other.high_water.get())),
            _buffer: PhantomData,
            _invariant: PhantomData,
        };
        // `other`'s values now belong to this arena: it must not drop them.
        mem::forget(other);
        was
    }

    /// Bytes the arena can hand out: the buffer from its first to its last
    /// [`WORD`] boundary. Every allocation is rounded up to a whole word, so
    /// a `u8` takes 8 bytes: the price of a fast path with a single compare
    /// (see `bump`); pack small values into one allocation (a slice, a
    /// struct) where memory is tight.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.end.get().addr() - self.base.get().addr()
    }

    /// Bytes in use, counting rounding to [`WORD`], alignment padding and
    /// drop records.
    ///
    /// While a [`scope`](Arena::scope) is active, this counts only the
    /// allocations made before it; the scope's arena counts its own.
    #[inline]
    pub fn used(&self) -> usize {
        self.end.get().addr() - self.ptr.get().addr()
    }

    /// Free bytes. A request for `n` bytes may still fail when fewer than
    /// `n` plus the alignment padding remain. Zero while a scope is active.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.ptr.get().addr() - self.floor.get().addr()
    }

    /// The most bytes this arena has had in use at once since it was created,
    /// including what its scopes used.
    ///
    /// Use it to size arenas: run a representative batch, then read it.
    pub fn high_water(&self) -> usize {
        self.high_water.get().max(self.used())
    }

    /// Moves `value` into the arena and returns a mutable reference to it.
    ///
    /// Zero-sized values take no space. A value whose type needs `Drop` is
    /// dropped exactly once, when its memory is freed (see the module docs).
    /// On failure the value is dropped; use
    /// [`alloc_or_return`](Arena::alloc_or_return) to get it back.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::{Arena, ArenaError};
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 16];
    /// let arena = Arena::new(&mut buf);
    /// assert_eq!(*arena.alloc(7_u32)?, 7);
    /// assert!(matches!(arena.alloc([0_u64; 4]), Err(ArenaError::TooLarge { size: 32, .. })));
    /// # Ok::<(), ArenaError>(())
    /// ```
    #[inline(always)]
    pub fn alloc<T: 'a>(&self, value: T) -> Result<&mut T, ArenaError> {
        match self.alloc_or_return(value) {
            Ok(slot) => Ok(slot),
            Err(rejected) => Err(rejected.error),
        }
    }

    /// Like [`alloc`](Arena::alloc), but hands the value back on failure.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 4];
    /// let arena = Arena::new(&mut buf);
    /// let rejected = arena.alloc_or_return(u64::MAX).unwrap_err();
    /// assert_eq!(rejected.into_value(), u64::MAX);
    /// ```
    #[inline(always)]
    pub fn alloc_or_return<T: 'a>(&self, value: T) -> Result<&mut T, Rejected<T>> {
        match self.reserve_value::<T>() {
            Some(slot) => {
                // SAFETY: `slot` is aligned, valid for a write of `T`, and no
                // other reference covers it (it was free until now).
                unsafe {
                    slot.as_ptr().write(value);
                    Ok(&mut *slot.as_ptr())
                }
            }
            None => {
                let error = self.failure(Layout::new::<T>());
                Err(Rejected { value, error })
            }
        }
    }

    /// Allocates a value built by `make`.
    ///
    /// The slot (and, for a type with drop glue, its drop record) is
    /// reserved first, so a full arena refuses without calling `make`, and
    /// the compiler can build large values in place.
    ///
    /// `make` may allocate in this arena itself. Its values are then freed
    /// (and dropped) after the value `make` returns, so that value's `Drop`
    /// can still use them; this takes one more drop record below them, and
    /// in the rare case that `make` used up the space for it, the value is
    /// dropped and [`ArenaError::Exhausted`] returned.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 16];
    /// let arena = Arena::new(&mut buf);
    /// let mut called = false;
    /// assert!(arena.alloc_with(|| { called = true; [0_u64; 8] }).is_err());
    /// assert!(!called, "a full arena refuses before building the value");
    /// ```
    #[inline(always)]
    pub fn alloc_with<T: 'a, F: FnOnce() -> T>(&self, make: F) -> Result<&mut T, ArenaError> {
        if !mem::needs_drop::<T>() {
            return match self.bump_for::<T>() {
                Some(slot) => {
                    // SAFETY: as in `alloc_or_return`. If `make` panics the
                    // slot stays reserved and unused, which is harmless for
                    // a type without drop glue.
                    unsafe {
                        slot.as_ptr().write(make());
                        Ok(&mut *slot.as_ptr())
                    }
                }
                None => Err(self.failure(Layout::new::<T>())),
            };
        }
        self.alloc_with_record(make)
    }

    /// [`alloc_with`](Self::alloc_with) for a type with drop glue.
    fn alloc_with_record<T: 'a, F: FnOnce() -> T>(&self, make: F) -> Result<&mut T, ArenaError> {
        let saved = self.ptr.get();
        let reserved = self.bump_for::<T>().and_then(|slot| {
            let record = self.bump_for::<DropRecord>()?;
            Some((slot, record))
        });
        let Some((slot, reserved_record)) = reserved else {
            self.ptr.set(saved);
            return Err(self.failure(Layout::new::<(T, DropRecord)>()));
        };
        let before = self.ptr.get();
        // If `make` panics, the reserved memory stays unused and unlinked:
        // nothing is dropped that was not built.
        let value = make();
        // Drop records must run from the lowest address up (`drop_below`),
        // and this value must be dropped before anything `make` allocated:
        // its record has to be the lowest. It is, unless `make` allocated
        // here; then a new one goes below those allocations.
        let record = if self.ptr.get() == before {
            reserved_record
        } else {
            match self.bump_for::<DropRecord>() {
                Some(record) => record,
                None => {
                    drop(value);
                    return Err(self.failure(Layout::new::<DropRecord>()));
                }
            }
        };
        // SAFETY: `slot` and `record` are fresh, aligned and unaliased
        // arena memory; the record is the lowest, so linking it first in
        // the list keeps the list in address order.
        unsafe {
            slot.as_ptr().write(value);
            record.as_ptr().write(DropRecord {
                next: self.drops.get(),
                data: slot.as_ptr().cast(),
                len: 1,
                drop_fn: drop_values::<T>,
            });
            self.drops.set(Some(record));
            Ok(&mut *slot.as_ptr())
        }
    }

    /// Copies a `Copy` value into the arena.
    ///
    /// Unlike [`alloc`](Arena::alloc) this does not require `T: 'a`, because
    /// a `Copy` value is never dropped: use it for nodes that point to other
    /// values in the same arena.
    #[inline(always)]
    pub fn alloc_copy<T: Copy>(&self, value: T) -> Result<&mut T, ArenaError> {
        match self.bump_for::<T>() {
            Some(slot) => {
                // SAFETY: as in `alloc_or_return`.
                unsafe {
                    slot.as_ptr().write(value);
                    Ok(&mut *slot.as_ptr())
                }
            }
            None => Err(self.failure(Layout::new::<T>())),
        }
    }

    /// Copies a slice into the arena.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    /// let arena = Arena::new(&mut buf);
    /// let ids = arena.alloc_slice_copy(&[3_u32, 1, 4])?;
    /// ids.sort();
    /// assert_eq!(ids, &[1, 3, 4]);
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaError> {
        let layout = Layout::for_value(src);
        let data = self.alloc_layout(layout)?.cast::<T>();
        // SAFETY: `data` is aligned for `T` and valid for `src.len()` values;
        // fresh arena memory cannot overlap `src`, which the caller borrows.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), data.as_ptr(), src.len());
            Ok(&mut *ptr::slice_from_raw_parts_mut(
                data.as_ptr(),
                src.len(),
            ))
        }
    }

    /// Copies a string into the arena.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    /// let arena = Arena::new(&mut buf);
    /// let name = arena.alloc_str("approve-order")?;
    /// name.make_ascii_uppercase();
    /// assert_eq!(name, "APPROVE-ORDER");
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    #[inline]
    pub fn alloc_str(&self, src: &str) -> Result<&mut str, ArenaError> {
        let bytes = self.alloc_slice_copy(src.as_bytes())?;
        // SAFETY: the bytes are a copy of a `str`, so they are UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
    }

    /// Allocates a slice of `len` values, the `i`-th being `fill(i)`.
    ///
    /// If `fill` panics, the values already built are dropped with the
    /// arena's other values (nothing leaks, nothing is dropped twice).
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 128];
    /// let arena = Arena::new(&mut buf);
    /// let squares = arena.alloc_slice_fill_with(5, |i| (i * i) as u16)?;
    /// assert_eq!(squares, &[0, 1, 4, 9, 16]);
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    pub fn alloc_slice_fill_with<T: 'a, F: FnMut(usize) -> T>(
        &self,
        len: usize,
        mut fill: F,
    ) -> Result<&mut [T], ArenaError> {
        let layout = Layout::array::<T>(len).map_err(|_| ArenaError::SizeOverflow {
            elem_size: mem::size_of::<T>(),
            len,
        })?;
        if len == 0 {
            // An empty slice takes no space, and nothing needs dropping.
            return Ok(&mut []);
        }
        if !mem::needs_drop::<T>() {
            let data = self.alloc_layout(layout)?.cast::<T>();
            for i in 0..len {
                // SAFETY: `i < len` and `data` has room for `len` values.
                unsafe { data.as_ptr().add(i).write(fill(i)) };
            }
            // SAFETY: all `len` values were just initialised.
            return Ok(unsafe { &mut *ptr::slice_from_raw_parts_mut(data.as_ptr(), len) });
        }
        let (data, record) = self
            .reserve_with_record::<T>(layout, 0)
            .ok_or_else(|| self.failure(layout))?;
        for i in 0..len {
            let value = fill(i);
            // SAFETY: `i < len`; then the record counts the new value, so a
            // panic in a later `fill` drops exactly the values built so far.
            // The record is not moved or freed while `&self` is borrowed.
            unsafe {
                data.as_ptr().add(i).write(value);
                (*record.as_ptr()).len = i + 1;
            }
        }
        // SAFETY: all `len` values were just initialised.
        Ok(unsafe { &mut *ptr::slice_from_raw_parts_mut(data.as_ptr(), len) })
    }

    /// Allocates raw memory for `layout` and returns its start.
    ///
    /// The memory is uninitialised and is never dropped: write to it through
    /// raw pointers. A zero-sized layout takes no space and returns a
    /// dangling pointer aligned to `layout.align()`.
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, ArenaError> {
        if layout.size() == 0 {
            return Ok(dangling(layout.align()));
        }
        match self.bump(layout.size(), layout.align()) {
            Some(p) => Ok(p),
            None => Err(self.failure(layout)),
        }
    }

    /// The arena's current position, for [`rewind`](Arena::rewind).
    #[inline]
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { used: self.used() }
    }

    /// Frees everything allocated after `checkpoint`, dropping the values
    /// that need it (newest first).
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 256];
    /// let mut arena = Arena::new(&mut buf);
    /// arena.alloc(1_u64)?;
    /// let mark = arena.checkpoint();
    /// arena.alloc_str("scratch")?;
    /// arena.rewind(mark)?;
    /// assert_eq!(arena.used(), mark.used());
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    pub fn rewind(&mut self, checkpoint: Checkpoint) -> Result<(), ArenaError> {
        let used = self.used();
        if checkpoint.used > used {
            return Err(ArenaError::CheckpointAhead {
                checkpoint: checkpoint.used,
                used,
            });
        }
        let target = self.end.get().addr() - checkpoint.used;
        self.note_high_water();
        self.drop_below(target);
        self.ptr.set(self.end.get().with_addr(target));
        Ok(())
    }

    /// Frees every allocation, dropping the values that need it (newest
    /// first). O(1) when nothing needs dropping.
    #[inline]
    pub fn reset(&mut self) {
        // SAFETY: `&mut self` proves that no reference into the arena is alive.
        unsafe { self.reset_unchecked() }
    }

    /// [`reset`](Arena::reset) through a shared reference.
    ///
    /// For wrappers that track outstanding allocations themselves (knhk-std's
    /// `ArenaAllocator` counts its guards) and so can prove what the borrow
    /// checker cannot.
    ///
    /// # Safety
    ///
    /// No reference or pointer into memory this arena handed out may be used
    /// afterwards, and no scope of this arena may be active.
    pub unsafe fn reset_unchecked(&self) {
        self.note_high_water();
        self.drop_below(usize::MAX);
        self.ptr.set(self.end.get());
    }

    /// Runs `f` with an arena over this arena's free memory, then frees
    /// everything `f` allocated there, dropping what needs it.
    ///
    /// References allocated before the scope stay usable inside it and after
    /// it. The scope's arena is only lent to `f`, so no reference into it can
    /// escape. While the scope runs, this arena has no free memory of its own
    /// and its allocations fail with [`ArenaError::ScopeActive`]. Scopes nest.
    ///
    /// ```
    /// # use core::mem::MaybeUninit;
    /// # use knhk_core::arena::Arena;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
    /// let arena = Arena::new(&mut buf);
    /// let config = arena.alloc_str("retries=3")?;
    /// let before = arena.used();
    /// let total = arena.scope(|scratch| -> Result<u64, knhk_core::arena::ArenaError> {
    ///     let squares = scratch.alloc_slice_fill_with(10, |i| (i * i) as u64)?;
    ///     Ok(squares.iter().sum())
    /// })?;
    /// assert_eq!(total, 285);
    /// assert_eq!(arena.used(), before); // the scratch space is free again
    /// assert_eq!(config, "retries=3");  // and earlier values are untouched
    /// # Ok::<(), knhk_core::arena::ArenaError>(())
    /// ```
    pub fn scope<R, F>(&self, f: F) -> R
    where
        F: FnOnce(&Arena<'a>) -> R,
    {
        let lent_floor = self.floor.get();
        let lent_top = self.ptr.get();
        // Raising `floor` to `lent_top` below takes the free memory out of
        // this arena until the guard gives it back.
        let lent = lent_top.addr() - lent_floor.addr();
        // SAFETY: `lent_floor..lent_top` is free memory of this arena's buffer,
        // valid for `'a`, and lent to the child alone (see above).
        let child = unsafe { Arena::from_raw_parts(lent_floor, lent) };
        let scope = ScopeGuard {
            parent: self,
            lent_floor,
            used_before: self.used(),
            child,
        };
        self.floor.set(lent_top);
        f(&scope.child)
    }

    /// Records the current use before the bump position moves up.
    #[inline]
    fn note_high_water(&self) {
        let used = self.used();
        if used > self.high_water.get() {
            self.high_water.set(used);
        }
    }

    /// Drops every recorded value whose record lies below address `mark`,
    /// newest first.
    #[inline]
    fn drop_below(&self, mark: usize) {
        while let Some(record) = self.drops.get() {
            if record.as_ptr().addr() >= mark {
                break;
            }
            // SAFETY: records in the list are initialised and stay valid until
            // unlinked; we unlink this one before running user code, so a
            // panicking `Drop` leaves a list that never names it again.
            unsafe {
                let DropRecord {
                    next,
                    data,
                    len,
                    drop_fn,
                } = record.as_ptr().read();
                self.drops.set(next);
                drop_fn(data, len);
            }
        }
    }

    /// The fast path: `size` bytes aligned to `align` below the bump pointer.
    ///
    /// Invariant: `floor <= ptr`, and `ptr` is a multiple of [`WORD`].
    ///
    /// Why it is shaped this way, from the generated code (x86_64, the
    /// report's `alloc_u64` loop, read with `objdump -d`): bumping down
    /// from a word-aligned pointer by a word-rounded size needs no
    /// alignment arithmetic for `align <= 8`, so an allocation is one load
    /// of the pointer, one subtraction of the floor (a second load), one
    /// compare and branch, the new pointer (`lea`) and its store: 12
    /// instructions a loop iteration with the value's store and the loop's
    /// own, against bumpalo's 15 (it also loads its chunk footer and masks
    /// the pointer down to the alignment). The loop-carried chain is the
    /// pointer's store and reload through the `Cell`, one `lea` long here
    /// and two operations long in bumpalo: on CPUs whose store-to-load
    /// forwarding is slow that chain, more than the instruction count, sets
    /// the pace of both. Larger alignments and failures leave the fast path.
    #[inline(always)]
    fn bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two());
        let size = round_to_word(size);
        let ptr = self.ptr.get();
        let start = if align <= WORD {
            // `ptr` is word-aligned and `size` a multiple of a word, so
            // `ptr - size` is aligned: one compare guards it.
            if ptr.addr() - self.floor.get().addr() < size {
                return None;
            }
            ptr.addr() - size
        } else {
            let start = ptr.addr().checked_sub(size)? & !(align - 1);
            if start < self.floor.get().addr() {
                return None;
            }
            start
        };
        let new = ptr.with_addr(start);
        self.ptr.set(new);
        // SAFETY: `start >= floor >= base`, and `base` is non-null.
        Some(unsafe { NonNull::new_unchecked(new) })
    }

    /// Memory for one `T`, ignoring drop bookkeeping.
    #[inline(always)]
    fn bump_for<T>(&self) -> Option<NonNull<T>> {
        if mem::size_of::<T>() == 0 {
            return Some(NonNull::dangling());
        }
        self.bump(mem::size_of::<T>(), mem::align_of::<T>())
            .map(NonNull::cast)
    }

    /// Memory for one `T`, with a drop record when `T` needs one.
    #[inline(always)]
    fn reserve_value<T>(&self) -> Option<NonNull<T>> {
        if !mem::needs_drop::<T>() {
            return self.bump_for::<T>();
        }
        self.reserve_with_record::<T>(Layout::new::<T>(), 1)
            .map(|(data, _)| data)
    }

    /// Memory for `layout` (an array of `T`) plus a linked drop record that
    /// will drop `len` values. Either both are reserved or neither is.
    fn reserve_with_record<T>(
        &self,
        layout: Layout,
        len: usize,
    ) -> Option<(NonNull<T>, NonNull<DropRecord>)> {
        let saved = self.ptr.get();
        let data = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            self.bump(layout.size(), layout.align())?.cast::<T>()
        };
        let Some(record) = self.bump_for::<DropRecord>() else {
            self.ptr.set(saved);
            return None;
        };
        // SAFETY: `record` is fresh, aligned memory for a `DropRecord`.
        unsafe {
            record.as_ptr().write(DropRecord {
                next: self.drops.get(),
                data: data.as_ptr().cast(),
                len,
                drop_fn: drop_values::<T>,
            });
        }
        self.drops.set(Some(record));
        Some((data, record))
    }

    /// Explains why `layout` could not be allocated. Off the fast path.
    #[cold]
    #[inline(never)]
    fn failure(&self, layout: Layout) -> ArenaError {
        let (size, align) = (layout.size(), layout.align());
        if self.floor.get() != self.base.get() {
            return ArenaError::ScopeActive;
        }
        // Would it fit in the empty arena?
        let fits_empty = self
            .end
            .get()
            .addr()
            .checked_sub(round_to_word(size))
            .map(|start| start & !(align - 1))
            .is_some_and(|start| start >= self.base.get().addr());
        if fits_empty {
            ArenaError::Exhausted {
                size,
                align,
                remaining: self.remaining(),
            }
        } else {
            ArenaError::TooLarge {
                size,
                align,
                capacity: self.capacity(),
            }
        }
    }
}

impl Drop for Arena<'_> {
    #[inline]
    fn drop(&mut self) {
        self.drop_below(usize::MAX);
    }
}

impl fmt::Debug for Arena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.capacity())
            .field("used", &self.used())
            .field("remaining", &self.remaining())
            .field("high_water", &self.high_water())
            .finish()
    }
}

/// Gives a scope's memory back to its parent arena, even if the scope's
/// closure panics.
struct ScopeGuard<'p, 'a> {
    parent: &'p Arena<'a>,
    lent_floor: *mut u8,
    used_before: usize,
    // Declared last: dropped (its values with it) after `drop` below has run.
    child: Arena<'a>,
}

impl Drop for ScopeGuard<'_, '_> {
    fn drop(&mut self) {
        let peak = self.used_before + self.child.high_water();
        if peak > self.parent.high_water.get() {
            self.parent.high_water.set(peak);
        }
        // Nothing can use the parent until this guard is gone (the closure
        // has returned or unwound), so handing the memory back before the
        // child drops its values is unobservable.
        self.parent.floor.set(self.lent_floor);
    }
}

/// A non-null pointer aligned to `align`, for zero-sized allocations.
#[inline(always)]
fn dangling(align: usize) -> NonNull<u8> {
    // SAFETY: an alignment is a power of two, so never zero.
    unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(align)) }
}

#[cfg(feature = "allocator-api2")]
mod allocator_api2_impl {
    use super::*;
    use allocator_api2::alloc::{AllocError, Allocator};

    #[cfg_attr(docsrs, doc(cfg(feature = "allocator-api2")))]
    // SAFETY: blocks come from `alloc_layout`, so they are fresh, aligned and
    // of the requested size. They stay valid while `&Arena` is borrowed, since
    // freeing them (`reset`, `rewind`) needs `&mut Arena`, a scope's arena
    // is only lent for the scope, and an arena that `replace` handed back
    // keeps them until this one is reset or dropped (its contract).
    // `deallocate` only ever moves the bump pointer up over the block being
    // freed, which the caller gives up, and never past the buffer's end.
    unsafe impl Allocator for &Arena<'_> {
        #[inline]
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            let data = self.alloc_layout(layout).map_err(|_| AllocError)?;
            Ok(NonNull::slice_from_raw_parts(data, layout.size()))
        }

        #[inline]
        unsafe fn deallocate(&self, block: NonNull<u8>, layout: Layout) {
            // Reclaim the block if it is the newest allocation; otherwise its
            // memory comes back at the next reset, rewind or scope end. (A
            // block from before a `replace` may sit right at the end of the
            // new buffer when the two buffers are adjacent, so the block's
            // end is checked against this buffer's.)
            let rounded = round_to_word(layout.size());
            let newest = block.as_ptr() == self.ptr.get()
                && self.end.get().addr() - block.as_ptr().addr() >= rounded;
            if layout.size() != 0 && newest {
                self.note_high_water();
                // SAFETY: the block was allocated here with its size rounded to
                // a word, at the bump pointer: its rounded end is in the
                // buffer (checked), and word-aligned.
                let end = unsafe { block.as_ptr().add(rounded) };
                self.ptr.set(end);
            }
        }

        #[inline]
        unsafe fn shrink(
            &self,
            block: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            if block.as_ptr().addr().is_multiple_of(new.align()) {
                // The front of the block already satisfies the new layout.
                return Ok(NonNull::slice_from_raw_parts(block, new.size()));
            }
            let fresh = self.allocate(new)?;
            // SAFETY: the new block is fresh, so it does not overlap the old
            // one, and `new.size() <= old.size()` (the trait's contract).
            unsafe {
                ptr::copy_nonoverlapping(block.as_ptr(), fresh.cast().as_ptr(), new.size());
                self.deallocate(block, old);
            }
            Ok(fresh)
        }
    }
}

#[cfg(test)]
mod tests;
