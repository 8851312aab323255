//! Arenas that own their buffer: [`HeapArena`] and the per-thread
//! [`ArenaAllocator`].
//!
//! Both place the core arena ([`knhk_core::arena::Arena`]) over a heap buffer
//! they allocate once; neither re-implements the bump logic.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::alloc::Layout;
use std::cell::{Cell, OnceCell, UnsafeCell};

use knhk_core::arena as core_arena;

pub use growing::{GrowingArena, FIRST_CHUNK, RESET_HISTORY};
pub use knhk_core::arena::{Checkpoint, Rejected};
pub use pages::{huge_pages_enabled, set_huge_pages, HUGE_PAGE};

mod growing;
mod pages;

/// Why an owned arena could not be made, or an allocation through
/// [`ArenaAllocator`] failed. knhk-core's own error (full, too large, ...)
/// is the [`Alloc`](ArenaError::Alloc) variant; the others are about owning
/// memory, which only knhk-std does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArenaError {
    /// The allocation failed in the arena itself: it is full, the request
    /// can never fit, or its size overflows (knhk-core's error).
    Alloc(core_arena::ArenaError),
    /// An owned arena was asked for a capacity of zero bytes.
    ZeroCapacity,
    /// An owned arena's buffer of `bytes` bytes could not be allocated.
    OutOfMemory {
        /// Capacity requested.
        bytes: usize,
    },
    /// An owned arena was asked for more than `isize::MAX` bytes.
    CapacityOverflow {
        /// Capacity requested.
        bytes: usize,
    },
    /// The thread's arena is no longer available because the thread is
    /// shutting down (its thread-locals are being destroyed).
    ThreadLocalDestroyed,
    /// A [`GrowingArena`] would pass its limit to serve this request.
    LimitExceeded {
        /// Bytes the request needed (its size).
        requested: usize,
        /// Bytes of chunks the arena holds now.
        held: usize,
        /// The most it may hold.
        limit: usize,
    },
}

impl From<core_arena::ArenaError> for ArenaError {
    fn from(e: core_arena::ArenaError) -> ArenaError {
        ArenaError::Alloc(e)
    }
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArenaError::Alloc(e) => fmt::Display::fmt(&e, f),
            ArenaError::ZeroCapacity => f.write_str("an arena needs a capacity of at least 1 byte"),
            ArenaError::OutOfMemory { bytes } => {
                write!(f, "could not allocate an arena buffer of {bytes} bytes")
            }
            ArenaError::CapacityOverflow { bytes } => write!(
                f,
                "arena capacity of {bytes} bytes exceeds the largest possible allocation"
            ),
            ArenaError::ThreadLocalDestroyed => {
                f.write_str("the thread's arena was already destroyed (thread is exiting)")
            }
            ArenaError::LimitExceeded {
                requested,
                held,
                limit,
            } => write!(
                f,
                "a request of {requested} bytes would take the arena past its limit: \
                 it holds {held} bytes of at most {limit}; reset it or raise the limit"
            ),
        }
    }
}

impl std::error::Error for ArenaError {}

/// Capacity of [`ArenaAllocator::new`]: 1 MiB, the low end of the design
/// document's "1-10 MB typical" and enough for a batch of a thousand 1 KiB
/// task states.
pub const DEFAULT_CAPACITY: usize = 1024 * 1024;

/// Buffers start on a cache line, so that the first allocations of two
/// arenas never share one.
const BUFFER_ALIGN: usize = 64;

/// A heap buffer that is freed when dropped.
pub(crate) struct HeapBuffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is plain owned memory with no shared state; moving its
// ownership to another thread is like moving a `Box<[u8]>`.
unsafe impl Send for HeapBuffer {}

impl HeapBuffer {
    /// The layout of a buffer for an arena of at least `bytes`.
    pub(crate) fn layout_for(bytes: usize) -> Result<Layout, ArenaError> {
        if bytes == 0 {
            return Err(ArenaError::ZeroCapacity);
        }
        // Padded to a whole cache line (a whole huge page for the large
        // buffers that get them): the arena's capacity is then at least
        // `bytes` (its usable end is the buffer's last word boundary).
        Ok(
            Layout::from_size_align(bytes, pages::align_for(bytes, BUFFER_ALIGN))
                .map_err(|_| ArenaError::CapacityOverflow { bytes })?
                .pad_to_align(),
        )
    }

    /// The layout of a buffer of at least `bytes` that takes at most
    /// `room` bytes: `layout_for`'s, or, if its rounding to whole huge
    /// pages would pass `room`, one on small pages; `None` if neither fits.
    pub(crate) fn layout_within(bytes: usize, room: usize) -> Option<Layout> {
        let layout = HeapBuffer::layout_for(bytes).ok()?;
        if layout.size() <= room {
            return Some(layout);
        }
        let small = Layout::from_size_align(bytes, BUFFER_ALIGN)
            .ok()?
            .pad_to_align();
        (small.size() <= room).then_some(small)
    }

    pub(crate) fn new(bytes: usize) -> Result<HeapBuffer, ArenaError> {
        HeapBuffer::with_layout(HeapBuffer::layout_for(bytes)?)
    }

    /// A buffer with a layout from [`layout_for`](Self::layout_for) (kept by
    /// a pool, so that all its buffers share one layout even if huge pages
    /// are switched in between).
    pub(crate) fn with_layout(layout: Layout) -> Result<HeapBuffer, ArenaError> {
        // SAFETY: `layout_for` never returns a zero size.
        let ptr = unsafe { pages::allocate(layout) };
        let ptr = NonNull::new(ptr).ok_or(ArenaError::OutOfMemory {
            bytes: layout.size(),
        })?;
        Ok(HeapBuffer { ptr, layout })
    }

    /// Whether the buffer is a mapping of its own (huge-page aligned, on
    /// Linux) rather than heap memory.
    pub(crate) fn is_mapped(&self) -> bool {
        self.layout.align() == pages::HUGE_PAGE && cfg!(all(target_os = "linux", not(miri)))
    }

    /// Bytes in the buffer.
    pub(crate) fn len(&self) -> usize {
        self.layout.size()
    }

    /// Bytes of the buffer backed by huge pages, where that can be read.
    pub(crate) fn huge_page_bytes(&self) -> Option<usize> {
        if self.layout.align() != pages::HUGE_PAGE {
            // Heap memory: never asked for huge pages (and its mapping is
            // the heap's, shared with everything else).
            return Some(0);
        }
        pages::huge_page_bytes(self.ptr.as_ptr(), self.layout.size())
            .map(|bytes| bytes.min(self.layout.size()))
    }

    /// Gives the buffer's pages back to the kernel lazily, keeping the
    /// mapping: the kernel takes them when it needs memory, and until then
    /// writing to them again costs no page fault; taken, they read as
    /// zeros again. Only mapped buffers (huge-page aligned, on Linux) do
    /// this; `false` for the rest, and where the kernel refuses.
    pub(crate) fn lazy_free(&self) -> bool {
        self.layout.align() == pages::HUGE_PAGE
            // SAFETY: a huge-page-aligned buffer is a mapping of exactly
            // `layout.size()` bytes (`pages::allocate`), owned by `self`;
            // its contents are not read again before they are written.
            && unsafe { pages::lazy_free(self.ptr, self.layout.size()) }
    }

    /// Gives up ownership of the memory, which [`from_raw`](Self::from_raw)
    /// with this buffer's layout takes back.
    pub(crate) fn into_raw(self) -> NonNull<u8> {
        let ptr = self.ptr;
        core::mem::forget(self);
        ptr
    }

    /// Takes back a buffer given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of a buffer with this `layout`, and is
    /// taken back once.
    pub(crate) unsafe fn from_raw(ptr: NonNull<u8>, layout: Layout) -> HeapBuffer {
        HeapBuffer { ptr, layout }
    }

    /// A core arena over the whole buffer.
    ///
    /// # Safety
    /// The returned arena must be dropped before this buffer, and at most one
    /// arena over the buffer may be alive at a time.
    #[inline]
    pub(crate) unsafe fn arena<'a>(&self) -> core_arena::Arena<'a> {
        // SAFETY: the buffer is valid for `layout.size()` bytes until it is
        // dropped, which the caller orders after the arena.
        unsafe { core_arena::Arena::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for HeapBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` (by `pages::allocate`) with this same
        // layout, and freed once.
        unsafe { pages::free(self.ptr, self.layout) }
    }
}

/// A bump arena that owns its heap buffer.
///
/// All of the core arena's methods are available through `Deref` (`alloc`,
/// `alloc_slice_copy`, `alloc_str`, `scope`, `checkpoint`, `used`, ...), and
/// the two that need exclusive access, [`reset`](HeapArena::reset) and
/// [`rewind`](HeapArena::rewind), are forwarded here.
///
/// It has no lifetime parameter, so it sits in a struct or a `thread_local!` as it
/// is: the arena it owns lives as long as it does. Values in it must
/// therefore not borrow anything shorter-lived (`T: 'static`, which the
/// core arena's `alloc` asks as `T: 'a`), because a value that needs `Drop`
/// is dropped at the next reset. To keep borrowed values in an arena, put
/// a core [`Arena<'a>`](knhk_core::arena::Arena) over a buffer of yours.
/// (The design document calls this type `memory::Arena`.)
///
/// ```
/// use knhk_std::arena::HeapArena;
///
/// let mut arena = HeapArena::with_capacity(64 * 1024)?;
/// let name = arena.alloc_str("review")?;
/// let retries = arena.alloc(3_u32)?;
/// assert_eq!((&*name, *retries), ("review", 3));
/// arena.reset();
/// assert_eq!(arena.used(), 0);
/// # Ok::<(), knhk_std::arena::ArenaError>(())
/// ```
///
/// There is deliberately no `DerefMut` to the core arena: swapping two core
/// arenas between their owners would leave each over the other's buffer.
pub struct HeapArena {
    // Declared first, so dropped (with its values) before the buffer.
    inner: core_arena::Arena<'static>,
    buffer: HeapBuffer,
}

impl HeapArena {
    /// An arena with a fresh buffer of at least `bytes` bytes (rounded up
    /// to a multiple of 64, or of 2 MiB for the buffers of 2 MiB or more
    /// that get huge pages; see [`set_huge_pages`]).
    ///
    /// Fails with [`ArenaError::ZeroCapacity`] for 0,
    /// [`ArenaError::CapacityOverflow`] beyond `isize::MAX`, and
    /// [`ArenaError::OutOfMemory`] when the system refuses the buffer; it
    /// never aborts the process.
    pub fn with_capacity(bytes: usize) -> Result<HeapArena, ArenaError> {
        let buffer = HeapBuffer::new(bytes)?;
        // The arena's `'static` is the bound on the values it takes (they
        // may be dropped at any later reset, so must borrow nothing
        // shorter-lived); what it hands out borrows `&self`, never the
        // buffer for `'static`, and no `DerefMut` lets it be moved out from
        // over its buffer.
        // SAFETY: the arena is a field declared before the buffer, so it is
        // dropped first, and it is the only arena over this buffer.
        let inner = unsafe { buffer.arena() };
        Ok(HeapArena { inner, buffer })
    }

    /// Frees every allocation, dropping the values that need it.
    /// See [`knhk_core::arena::Arena::reset`].
    #[inline]
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Bytes of the arena's buffer backed by huge pages (buffers of 2 MiB
    /// or more ask for them), read from `/proc/self/smaps`; `None` where
    /// that cannot be read.
    pub fn huge_page_bytes(&self) -> Option<usize> {
        self.buffer.huge_page_bytes()
    }

    /// Frees everything allocated after `checkpoint`.
    /// See [`knhk_core::arena::Arena::rewind`].
    pub fn rewind(&mut self, checkpoint: Checkpoint) -> Result<(), ArenaError> {
        Ok(self.inner.rewind(checkpoint)?)
    }
}

impl Deref for HeapArena {
    type Target = core_arena::Arena<'static>;

    #[inline(always)]
    fn deref(&self) -> &core_arena::Arena<'static> {
        &self.inner
    }
}

impl fmt::Debug for HeapArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// Why [`ArenaAllocator::reset`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetError {
    /// Values handed out by the allocator are still alive; resetting would
    /// pull their memory out from under them.
    LiveAllocations {
        /// How many [`ArenaBox`]es are still alive (or were leaked with
        /// `mem::forget`).
        live: usize,
    },
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ResetError::LiveAllocations { live } => write!(
                f,
                "cannot reset the arena: {live} value(s) it handed out are still alive; \
                 drop them first (or use reset_mut if they were leaked)"
            ),
        }
    }
}

impl std::error::Error for ResetError {}

/// A per-thread bump arena for batch processing, reset through `&self`.
///
/// Each allocation returns an [`ArenaBox`], which owns the value and counts
/// as live until dropped. [`reset`](ArenaAllocator::reset) frees the whole
/// arena in O(1) when no box is alive and refuses with
/// [`ResetError::LiveAllocations`] otherwise, so no safe code can reach freed
/// memory. The type is `!Sync` (one per thread); see
/// [`with_thread_local`](ArenaAllocator::with_thread_local) for an arena
/// per thread without passing one around.
///
/// ```
/// use knhk_std::arena::ArenaAllocator;
///
/// struct TaskState { id: u64, retries: u32 }
///
/// let allocator = ArenaAllocator::with_capacity(1024 * 1024)?;
/// for batch in 0..3_u64 {
///     for id in 0..1000 {
///         let mut state = allocator.alloc(TaskState { id, retries: 0 })?;
///         state.retries += 1;
///         assert_eq!(state.id, id);
///     } // each state is dropped here
///     allocator.reset()?; // reuse the same memory for the next batch
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A box cannot outlive the allocator, and the allocator cannot be shared
/// between threads; both are compile errors:
///
/// ```compile_fail
/// # use knhk_std::arena::ArenaAllocator;
/// let boxed = {
///     let allocator = ArenaAllocator::new().unwrap();
///     allocator.alloc(1_u64).unwrap() // error: `allocator` does not live long enough
/// };
/// ```
///
/// ```compile_fail
/// # use knhk_std::arena::ArenaAllocator;
/// fn needs_sync<T: Sync>(_: &T) {}
/// needs_sync(&ArenaAllocator::new().unwrap());
/// ```
pub struct ArenaAllocator {
    memory: Memory,
    live: Cell<usize>,
}

/// Where an [`ArenaAllocator`] allocates. Only raw `alloc_layout` is used
/// on either: the boxes drop their values, so the arenas' drop lists stay
/// empty and `'static` is never relied upon.
// The growing variant is the larger (its active core arena is inline): an
// allocator is one per thread, and boxing it would cost every allocation
// the load of that box's address, which `GrowingArena` keeps its arena
// inline to avoid.
#[allow(clippy::large_enum_variant)]
enum Memory {
    /// One buffer of fixed capacity.
    Fixed {
        // Declared first, so dropped before the buffer.
        arena: core_arena::Arena<'static>,
        _buffer: HeapBuffer,
    },
    /// A growing arena: shared access to allocate; exclusive access only in
    /// a reset, when no box (the only handle to its memory) is alive.
    Growing(UnsafeCell<GrowingArena>),
}

impl ArenaAllocator {
    /// An allocator with [`DEFAULT_CAPACITY`] bytes (1 MiB).
    pub fn new() -> Result<ArenaAllocator, ArenaError> {
        ArenaAllocator::with_capacity(DEFAULT_CAPACITY)
    }

    /// An allocator with `bytes` bytes; fails as [`HeapArena::with_capacity`] does.
    pub fn with_capacity(bytes: usize) -> Result<ArenaAllocator, ArenaError> {
        let buffer = HeapBuffer::new(bytes)?;
        // SAFETY: the arena field is declared before the buffer, so it is
        // dropped first, and it is the only arena over this buffer.
        let arena = unsafe { buffer.arena() };
        Ok(ArenaAllocator {
            memory: Memory::Fixed {
                arena,
                _buffer: buffer,
            },
            live: Cell::new(0),
        })
    }

    /// An allocator over a [`GrowingArena`]: it grows instead of refusing
    /// with `Exhausted` (up to the growing arena's limit, if it has one),
    /// and each reset sizes it to the recent batches.
    ///
    /// ```
    /// use knhk_std::arena::{ArenaAllocator, GrowingArena};
    ///
    /// let allocator = ArenaAllocator::growing(GrowingArena::new().with_limit(64 << 20));
    /// for batch in 0..10_u64 {
    ///     let states: Vec<_> = (0..5000).map(|i| allocator.alloc([batch, i]).unwrap()).collect();
    ///     assert_eq!(states.len(), 5000);
    ///     drop(states);
    ///     allocator.reset()?;
    /// }
    /// assert!(allocator.capacity() >= 5000 * 16);
    /// # Ok::<(), knhk_std::arena::ResetError>(())
    /// ```
    pub fn growing(arena: GrowingArena) -> ArenaAllocator {
        ArenaAllocator {
            memory: Memory::Growing(UnsafeCell::new(arena)),
            live: Cell::new(0),
        }
    }

    /// Uninitialised memory for `layout`.
    #[inline(always)]
    fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, ArenaError> {
        match &self.memory {
            Memory::Fixed { arena, .. } => Ok(arena.alloc_layout(layout)?),
            // SAFETY: shared access; the only exclusive access is in a reset
            // (or `&mut self`), which cannot run while this call does.
            Memory::Growing(growing) => unsafe { &*growing.get() }.alloc_layout(layout),
        }
    }

    /// A figure of the arena underneath.
    fn read<R>(
        &self,
        fixed: impl FnOnce(&core_arena::Arena<'static>) -> R,
        growing: impl FnOnce(&GrowingArena) -> R,
    ) -> R {
        match &self.memory {
            Memory::Fixed { arena, .. } => fixed(arena),
            // SAFETY: as in `alloc_layout`.
            Memory::Growing(cell) => growing(unsafe { &*cell.get() }),
        }
    }

    /// Moves `value` into the arena. The returned box owns it: dropping the
    /// box drops the value (its memory comes back at the next reset).
    #[inline(always)]
    pub fn alloc<T>(&self, value: T) -> Result<ArenaBox<'_, T>, ArenaError> {
        let slot = self.alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `slot` is fresh, aligned memory for one `T`.
        unsafe { slot.as_ptr().write(value) };
        Ok(self.boxed(slot))
    }

    /// Copies a slice into the arena.
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<ArenaBox<'_, [T]>, ArenaError> {
        let slice = self.copy_slice(src)?;
        Ok(self.boxed(slice))
    }

    /// A slice of `len` copies of `value` (`len` zeroed bytes, say).
    ///
    /// ```
    /// use knhk_std::arena::ArenaAllocator;
    ///
    /// let arena = ArenaAllocator::with_capacity(1024)?;
    /// let zeros = arena.alloc_slice_fill_copy(4, 0_u8)?;
    /// assert_eq!(&*zeros, &[0, 0, 0, 0]);
    /// # Ok::<(), knhk_std::arena::ArenaError>(())
    /// ```
    pub fn alloc_slice_fill_copy<T: Copy>(
        &self,
        len: usize,
        value: T,
    ) -> Result<ArenaBox<'_, [T]>, ArenaError> {
        let layout = Layout::array::<T>(len).map_err(|_| core_arena::ArenaError::SizeOverflow {
            elem_size: core::mem::size_of::<T>(),
            len,
        })?;
        let data = self.alloc_layout(layout)?.cast::<T>();
        for i in 0..len {
            // SAFETY: `data` is fresh, aligned memory for `len` values of
            // `T`, and `i < len`.
            unsafe { data.as_ptr().add(i).write(value) };
        }
        Ok(self.boxed(NonNull::slice_from_raw_parts(data, len)))
    }

    /// Copies a string into the arena.
    pub fn alloc_str(&self, src: &str) -> Result<ArenaBox<'_, str>, ArenaError> {
        let bytes = self.copy_slice(src.as_bytes())?;
        // SAFETY: the bytes are a copy of a `str`, so they are UTF-8.
        let text = unsafe { NonNull::new_unchecked(bytes.as_ptr() as *mut str) };
        Ok(self.boxed(text))
    }

    fn copy_slice<T: Copy>(&self, src: &[T]) -> Result<NonNull<[T]>, ArenaError> {
        let data = self.alloc_layout(Layout::for_value(src))?.cast::<T>();
        // SAFETY: `data` is fresh, aligned memory for `src.len()` values and
        // cannot overlap `src`.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), data.as_ptr(), src.len()) };
        Ok(NonNull::slice_from_raw_parts(data, src.len()))
    }

    #[inline(always)]
    fn boxed<T: ?Sized>(&self, ptr: NonNull<T>) -> ArenaBox<'_, T> {
        self.live.set(self.live.get() + 1);
        ArenaBox {
            ptr,
            live: &self.live,
            _owns: PhantomData,
        }
    }

    /// Frees every allocation in O(1), if no [`ArenaBox`] is alive.
    ///
    /// Otherwise nothing is freed and the error says how many are.
    pub fn reset(&self) -> Result<(), ResetError> {
        match self.live.get() {
            0 => {
                match &self.memory {
                    // SAFETY: no box is alive, and boxes are the only handles
                    // to this arena's memory; the arena has no scopes (it is
                    // private).
                    Memory::Fixed { arena, .. } => unsafe { arena.reset_unchecked() },
                    // No box is alive, so nothing points into the growing
                    // arena, and no other call on it is running: the
                    // allocator is not `Sync`, and while one of its calls
                    // holds a reference it runs no user code (the global
                    // allocator aside, which cannot reach this allocator
                    // safely). The reset runs no `Drop` of user values
                    // either: boxes drop their own, so the lists are empty.
                    // SAFETY: so this is the only reference for the reset.
                    Memory::Growing(cell) => unsafe { &mut *cell.get() }.reset(),
                }
                Ok(())
            }
            live => Err(ResetError::LiveAllocations { live }),
        }
    }

    /// Frees every allocation. `&mut self` proves no box is alive (they
    /// borrow the allocator), so this also recovers from boxes leaked with
    /// `mem::forget`, whose values are then never dropped.
    pub fn reset_mut(&mut self) {
        self.live.set(0);
        match &mut self.memory {
            Memory::Fixed { arena, .. } => arena.reset(),
            Memory::Growing(cell) => cell.get_mut().reset(),
        }
    }

    /// How many [`ArenaBox`]es are alive.
    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Bytes the arena can hand out (all chunks, for a growing one).
    pub fn capacity(&self) -> usize {
        self.read(|a| a.capacity(), |g| g.capacity())
    }

    /// Bytes in use, counting alignment padding.
    pub fn used(&self) -> usize {
        self.read(|a| a.used(), |g| g.used())
    }

    /// Free bytes (before a growing arena grows).
    pub fn remaining(&self) -> usize {
        self.read(|a| a.remaining(), |g| g.capacity() - g.used())
    }

    /// The most bytes in use at once since creation.
    pub fn high_water(&self) -> usize {
        self.read(|a| a.high_water(), |g| g.high_water())
    }

    /// Runs `f` with this thread's allocator, creating it on first use with
    /// [`DEFAULT_CAPACITY`], and resets it afterwards if `f` left no box
    /// alive (boxes cannot leave `f`, so this is the case unless they were
    /// leaked, or this is a nested call).
    ///
    /// Fails if the buffer cannot be allocated or the thread is exiting.
    ///
    /// ```
    /// use knhk_std::arena::ArenaAllocator;
    ///
    /// let total = ArenaAllocator::with_thread_local(|arena| {
    ///     let a = arena.alloc(20_u64).unwrap();
    ///     let b = arena.alloc(22_u64).unwrap();
    ///     *a + *b
    /// })?;
    /// assert_eq!(total, 42);
    /// # Ok::<(), knhk_std::arena::ArenaError>(())
    /// ```
    pub fn with_thread_local<R>(f: impl FnOnce(&ArenaAllocator) -> R) -> Result<R, ArenaError> {
        thread_local! {
            static THREAD_ARENA: OnceCell<ArenaAllocator> = const { OnceCell::new() };
        }
        THREAD_ARENA
            .try_with(|cell| {
                let arena = match cell.get() {
                    Some(arena) => arena,
                    None => {
                        let _ = cell.set(ArenaAllocator::new()?);
                        cell.get().ok_or(ArenaError::ThreadLocalDestroyed)?
                    }
                };
                let result = f(arena);
                // Refused while boxes live (a nested call's caller still
                // holds some): then the outermost call resets.
                let _ = arena.reset();
                Ok(result)
            })
            .map_err(|_| ArenaError::ThreadLocalDestroyed)?
    }
}

impl fmt::Debug for ArenaAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaAllocator")
            .field("capacity", &self.capacity())
            .field("used", &self.used())
            .field("live", &self.live())
            .finish()
    }
}

/// A value in an [`ArenaAllocator`], owned like a `Box`.
///
/// Dropping it drops the value and lets the allocator reset once every box
/// is gone.
pub struct ArenaBox<'s, T: ?Sized> {
    ptr: NonNull<T>,
    live: &'s Cell<usize>,
    _owns: PhantomData<T>,
}

impl<T> ArenaBox<'_, T> {
    /// Moves the value out of the arena.
    pub fn into_inner(this: ArenaBox<'_, T>) -> T {
        // SAFETY: the box owns an initialised value; forgetting the box
        // afterwards keeps it from being dropped twice.
        let value = unsafe { this.ptr.as_ptr().read() };
        this.live.set(this.live.get() - 1);
        core::mem::forget(this);
        value
    }
}

impl<T: ?Sized> Deref for ArenaBox<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialised value that lives until the box
        // is dropped (the allocator cannot reset while the box is counted).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for ArenaBox<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: ?Sized> Drop for ArenaBox<'_, T> {
    #[inline]
    fn drop(&mut self) {
        /// Uncounts the box once its value is gone, even if the value's
        /// `Drop` panics. Not before: a `Drop` that resets the allocator must
        /// still see this box as alive.
        struct Uncount<'c>(&'c Cell<usize>);
        impl Drop for Uncount<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        let _uncount = Uncount(self.live);
        // SAFETY: the box owns the value and is dropped once.
        unsafe { core::ptr::drop_in_place(self.ptr.as_ptr()) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ArenaBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for ArenaBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> AsRef<T> for ArenaBox<'_, T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> AsMut<T> for ArenaBox<'_, T> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn capacity_errors_are_typed() {
        assert_eq!(
            HeapArena::with_capacity(0).unwrap_err(),
            ArenaError::ZeroCapacity
        );
        assert_eq!(
            HeapArena::with_capacity(usize::MAX).unwrap_err(),
            ArenaError::CapacityOverflow { bytes: usize::MAX }
        );
        assert_eq!(
            ArenaAllocator::with_capacity(0).unwrap_err(),
            ArenaError::ZeroCapacity
        );
    }

    #[test]
    fn owned_arena_drops_values_and_frees_its_buffer() {
        let marker = Rc::new(());
        {
            let mut arena = HeapArena::with_capacity(4096).unwrap();
            for _ in 0..10 {
                arena.alloc(Rc::clone(&marker)).unwrap();
            }
            assert_eq!(Rc::strong_count(&marker), 11);
            arena.reset();
            assert_eq!(Rc::strong_count(&marker), 1);
            arena.alloc(Rc::clone(&marker)).unwrap();
        }
        assert_eq!(Rc::strong_count(&marker), 1);
    }

    #[test]
    fn reset_refuses_while_a_box_lives() {
        let allocator = ArenaAllocator::with_capacity(1024).unwrap();
        let a = allocator.alloc(1_u64).unwrap();
        let b = allocator.alloc_str("held").unwrap();
        assert_eq!(
            allocator.reset(),
            Err(ResetError::LiveAllocations { live: 2 })
        );
        assert_eq!(*a, 1);
        drop(a);
        assert_eq!(&*b, "held");
        drop(b);
        assert_eq!(allocator.reset(), Ok(()));
        assert_eq!(allocator.used(), 0);
    }

    #[test]
    fn filled_slices_of_any_length_count_as_live_boxes() {
        for allocator in [
            ArenaAllocator::with_capacity(1024).unwrap(),
            ArenaAllocator::growing(GrowingArena::new()),
        ] {
            let zeros = allocator.alloc_slice_fill_copy(100, 0_u8).unwrap();
            let empty = allocator.alloc_slice_fill_copy(0, 7_u64).unwrap();
            let units = allocator.alloc_slice_fill_copy(5, ()).unwrap();
            let words = allocator.alloc_slice_fill_copy(3, 9_u64).unwrap();
            assert!(zeros.iter().all(|&b| b == 0) && zeros.len() == 100);
            assert!(empty.is_empty());
            assert_eq!(units.len(), 5);
            assert_eq!(&*words, &[9, 9, 9]);
            assert_eq!(words.as_ptr().align_offset(8), 0);
            assert_eq!(allocator.live(), 4);
            drop((zeros, empty, units, words));
            assert_eq!(allocator.reset(), Ok(()));
        }
        let small = ArenaAllocator::with_capacity(64).unwrap();
        assert!(small.alloc_slice_fill_copy(65, 0_u8).is_err());
        assert!(small.alloc_slice_fill_copy(usize::MAX, 0_u64).is_err());
        assert_eq!(small.live(), 0);
    }

    #[test]
    fn boxes_drop_their_values() {
        let marker = Rc::new(());
        let allocator = ArenaAllocator::with_capacity(1024).unwrap();
        let boxed = allocator.alloc(Rc::clone(&marker)).unwrap();
        assert_eq!(Rc::strong_count(&marker), 2);
        drop(boxed);
        assert_eq!(Rc::strong_count(&marker), 1);
        let boxed = allocator.alloc(Rc::clone(&marker)).unwrap();
        let back = ArenaBox::into_inner(boxed);
        assert_eq!(allocator.live(), 0);
        assert_eq!(Rc::strong_count(&marker), 2);
        drop(back);
    }

    #[test]
    fn reset_mut_recovers_from_leaked_boxes() {
        let mut allocator = ArenaAllocator::with_capacity(1024).unwrap();
        core::mem::forget(allocator.alloc(5_u32).unwrap());
        assert!(allocator.reset().is_err());
        allocator.reset_mut();
        assert_eq!(allocator.live(), 0);
        assert_eq!(allocator.used(), 0);
    }

    #[test]
    fn thread_local_arena_is_reset_after_each_use() {
        let used_inside = ArenaAllocator::with_thread_local(|a| {
            let _x = a.alloc([0_u8; 100]).unwrap();
            a.used()
        })
        .unwrap();
        assert!(used_inside >= 100);
        let used_after = ArenaAllocator::with_thread_local(|a| a.used()).unwrap();
        assert_eq!(used_after, 0);
    }

    #[test]
    fn exhaustion_is_reported_not_panicked() {
        let allocator = ArenaAllocator::with_capacity(16).unwrap();
        assert_eq!(
            allocator.capacity(),
            64,
            "capacity is padded to a cache line"
        );
        let held: Vec<_> = (0..8_u64).map(|i| allocator.alloc(i).unwrap()).collect();
        assert!(matches!(
            allocator.alloc(8_u64),
            Err(ArenaError::Alloc(core_arena::ArenaError::Exhausted {
                size: 8,
                remaining: 0,
                ..
            }))
        ));
        assert_eq!(held.iter().map(|b| **b).sum::<u64>(), 28);
    }

    #[test]
    fn a_growing_allocator_grows_refuses_resets_while_boxes_live_and_settles() {
        let allocator = ArenaAllocator::growing(GrowingArena::with_capacity(64).unwrap());
        let held: Vec<_> = (0..1000_u64).map(|i| allocator.alloc(i).unwrap()).collect();
        assert!(allocator.capacity() >= 1000 * 8, "it grew");
        assert_eq!(
            allocator.reset(),
            Err(ResetError::LiveAllocations { live: 1000 })
        );
        assert_eq!(held.iter().map(|b| **b).sum::<u64>(), 999 * 1000 / 2);
        drop(held);
        allocator.reset().unwrap();
        assert_eq!(allocator.used(), 0);
        let text = allocator.alloc_str("approve").unwrap();
        assert_eq!(&*text, "approve");
        drop(text);
        let limited = ArenaAllocator::growing(GrowingArena::new().with_limit(8192));
        assert!(matches!(
            limited.alloc_slice_copy(&[0_u8; 100_000]),
            Err(ArenaError::LimitExceeded {
                requested: 100_000,
                ..
            })
        ));
    }
}
