//! [`GrowingArena`]: an owned arena that adds chunks as it fills and, at
//! each reset, sizes itself to the recent batches.

use core::alloc::Layout;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::mem;
use core::ptr::NonNull;

use knhk_core::arena::{self as core_arena, ArenaError as CoreError};

use super::{ArenaError, HeapBuffer};

/// Batches [`GrowingArena::reset`] remembers when it sizes the chunk it
/// keeps.
pub const RESET_HISTORY: usize = 8;

/// The first chunk of [`GrowingArena::new`]: 4 KiB.
pub const FIRST_CHUNK: usize = 4 * 1024;

/// An upper bound on what the core arena adds to a request in one chunk:
/// alignment padding beyond a word and, for a type that needs `Drop`, its
/// drop record (four words).
const OVERHEAD: usize = 64;

/// A core arena over its own heap buffer: a full chunk, or the active
/// one's arena and buffer put together as they are freed.
struct Chunk {
    // Declared first, so dropped (with its values) before the buffer.
    arena: core_arena::Arena<'static>,
    buffer: HeapBuffer,
}

/// A chunk as [`GrowingArena::chunk_list`] shows it: the active one or a
/// full one.
struct ChunkRef<'a> {
    arena: &'a core_arena::Arena<'static>,
    buffer: &'a HeapBuffer,
}

/// A bump arena that owns its memory and grows: when its chunk is full,
/// it adds one at least twice as large (and large enough for the request),
/// up to an optional limit. Allocation is the core arena's fast path (one
/// subtraction and one compare) in the active chunk, whose core arena
/// lives inside this struct: no pointer to it is loaded first.
///
/// [`reset`](Self::reset) frees every chunk but one, and that one is sized
/// to the recent demand: at least the most bytes used by any of the last
/// [`RESET_HISTORY`] batches (rounded up to a cache line). It keeps the
/// chunk it has while that chunk is large enough and at most twice that
/// size, so a repeating workload settles into one chunk and makes no heap
/// calls per batch, and after a spike followed by calm batches the memory
/// held falls back to what the calm batches need.
///
/// Values that need `Drop` are dropped exactly once, at the reset or drop
/// that frees them, chunk by chunk from the newest (and newest first
/// within a chunk). One difference from the core arena: values that an
/// `alloc_slice_fill_with` closure allocated in a *newer* chunk (because
/// the arena grew meanwhile) are dropped before the slice, not after it.
/// As with [`HeapArena`](super::HeapArena), values must borrow nothing
/// shorter-lived than the arena (`T: 'static`), which is what makes that
/// order unobservable to safe code.
///
/// ```
/// use knhk_std::arena::GrowingArena;
///
/// let mut arena = GrowingArena::new().with_limit(64 << 20);
/// for batch in 0..20_u64 {
///     for task in 0..1000_u64 {
///         let state = arena.alloc([batch, task, 0, 0])?;
///         state[2] = task * 2;
///     }
///     arena.reset(); // after the first batches: one chunk, no heap calls
/// }
/// assert_eq!(arena.chunks(), 1);
/// assert!(arena.capacity() >= 1000 * 32);
/// # Ok::<(), knhk_std::arena::ArenaError>(())
/// ```
pub struct GrowingArena {
    /// The core arena of the chunk allocations bump in (the newest), held
    /// inline: an allocation reads its bump pointer straight from `self`,
    /// with no load of a pointer to a chunk first (what that load cost is
    /// measured in docs/benchmarks.md, "The active arena inline"). When it
    /// is full, `install` swaps in an arena over a new buffer
    /// (`Arena::replace`, which works through `&self`: a closure given to
    /// `alloc_with` may grow the arena while the call holds `&active`) and
    /// moves the full one to `full`. The empty arena, over no memory,
    /// before the first chunk (and after a reset that could not allocate
    /// one).
    active: core_arena::Arena<'static>,
    /// The buffer `active` hands out; `None` while `active` is the empty
    /// arena.
    active_buffer: UnsafeCell<Option<HeapBuffer>>,
    /// The full chunks, oldest first. Held by value: nothing borrows a full
    /// chunk's arena (references handed out point into its buffer, which
    /// does not move with it), so the vector may move them as it grows;
    /// and it keeps its capacity through resets, so a workload that
    /// repeats adds chunks with no heap call beside their buffers'.
    full: UnsafeCell<Vec<Chunk>>,
    /// The most bytes of chunks the arena may hold.
    limit: usize,
    /// The first chunk's size, and the least a reset keeps.
    first: usize,
    /// Bytes used by the last batches (at their resets), newest at `at`.
    history: [usize; RESET_HISTORY],
    at: usize,
    /// The most of `history`, kept as it changes.
    demand: usize,
    /// The most bytes in use at once so far.
    high_water: Cell<usize>,
    /// The largest mapped chunk freed by a reset, its pages given back to
    /// the kernel lazily (`MADV_FREE`), kept to serve the next growth
    /// without page faults. Not counted in `held_bytes`; counted with it
    /// against the limit.
    retained: Cell<Option<HeapBuffer>>,
    /// The largest heap chunk a reset freed while it kept a larger one
    /// (the calm batches' chunk, when a spike's is kept), held for the
    /// reset that shrinks back to it: reused, it costs no heap call (a
    /// free and a malloc of the same size otherwise, which in glibc can
    /// mean consolidating every small block other code has freed). Freed
    /// if [`RESET_HISTORY`] resets pass without a use for it. Counted in
    /// `held_bytes`.
    spare: Cell<Option<HeapBuffer>>,
    /// Resets since `spare` was set.
    spare_age: usize,
    /// Why the last allocation that returned `None` from a slow path
    /// failed (see [`alloc`](Self::alloc)).
    failure: Cell<Option<ArenaError>>,
}

// Neither `Send` nor `Sync`: it runs the `Drop` of the values it holds at
// its resets, and those values need not be `Send` (an `Rc` clone, say), so
// it stays on the thread that filled it. One per worker thread is the use.

impl GrowingArena {
    /// An empty arena: its first chunk, [`FIRST_CHUNK`] bytes or what the
    /// first request needs, is allocated by the first allocation that
    /// takes memory. No limit.
    pub const fn new() -> GrowingArena {
        GrowingArena {
            active: core_arena::Arena::empty(),
            active_buffer: UnsafeCell::new(None),
            full: UnsafeCell::new(Vec::new()),
            limit: usize::MAX,
            first: FIRST_CHUNK,
            history: [0; RESET_HISTORY],
            at: 0,
            demand: 0,
            high_water: Cell::new(0),
            retained: Cell::new(None),
            spare: Cell::new(None),
            spare_age: 0,
            failure: Cell::new(None),
        }
    }

    /// An arena whose first chunk, of at least `bytes` bytes, is allocated
    /// now. A reset never keeps less than this.
    pub fn with_capacity(bytes: usize) -> Result<GrowingArena, ArenaError> {
        let mut arena = GrowingArena::new();
        arena.first = bytes.max(1);
        arena.install(HeapBuffer::new(arena.first)?)?;
        Ok(arena)
    }

    /// The same arena, never holding more than `bytes` bytes of chunks: a
    /// request that would take it past gets [`ArenaError::LimitExceeded`].
    /// A limit below what it already holds refuses every new chunk until a
    /// reset.
    pub fn with_limit(mut self, bytes: usize) -> GrowingArena {
        self.limit = bytes;
        self
    }

    /// Makes a chunk over `buffer` the active one, and the active one (if
    /// it has memory) a full one.
    #[cold]
    fn install(&self, buffer: HeapBuffer) -> Result<(), ArenaError> {
        // No reference into `full` or `active_buffer` is alive: references
        // handed out point into chunk buffers, which do not move with the
        // chunks; the only other view of the two, `chunk_list`'s, is held
        // only by methods that never reach this one while they hold it (a
        // closure given to `alloc_with` or `alloc_slice_fill_with` may grow
        // the arena, but those hold `&active`, a field of neither); the
        // rest is `&mut self`. And nothing below runs user code: the one
        // arena dropped is the empty one, which holds no values.
        // SAFETY: so these `&mut` are the only references to the two (and
        // the arena is not `Sync`: no other thread is here).
        let (full, active_buffer) =
            unsafe { (&mut *self.full.get(), &mut *self.active_buffer.get()) };
        if active_buffer.is_some() {
            // Room for the full chunk first: nothing below fails.
            full.try_reserve(1).map_err(|_| ArenaError::OutOfMemory {
                bytes: mem::size_of::<Chunk>(),
            })?;
        }
        // The buffer goes into `active_buffer`, and from there into a
        // `Chunk` with its arena (declared first, so dropped first), or is
        // dropped after it in `free_chunks`.
        // SAFETY: so the buffer outlives the arena, the only one over it;
        // `'static` bounds the values it takes, as for `HeapArena`.
        let arena = unsafe { buffer.arena() };
        // The arena `active` was goes to `full`, whose chunks are reset or
        // freed only by `reset(&mut self)` and drop, each after `active`.
        // SAFETY: so it outlives `active`'s reset or drop; and `active` is
        // no scope's arena, nor is a scope of it ever made.
        let was = unsafe { self.active.replace(arena) };
        match active_buffer.replace(buffer) {
            Some(buffer) => full.push(Chunk { arena: was, buffer }),
            // The empty arena: no memory, so no values.
            None => drop(was),
        }
        Ok(())
    }

    /// Adds a chunk for a request of `layout` (plus the core's overhead):
    /// twice the last chunk, or what the request needs if more, within
    /// the limit.
    #[cold]
    #[inline(never)]
    fn grow(&self, layout: Layout) -> Result<&core_arena::Arena<'static>, ArenaError> {
        let need = layout
            .size()
            .checked_add(layout.align())
            .and_then(|n| n.checked_add(OVERHEAD))
            .ok_or(ArenaError::CapacityOverflow {
                bytes: layout.size(),
            })?;
        let last = self.active.capacity();
        let wanted = need.max(last.saturating_mul(2)).max(self.first);
        // The room within the limit if the spare went, and beside it: the
        // spare stays only where it costs this request nothing.
        let spare = self.spare_bytes();
        let room = self.limit.saturating_sub(self.held_bytes() - spare);
        let beside = room.saturating_sub(spare);
        // A chunk an earlier batch needed, still mapped: when it serves,
        // taking it back costs no system call and, unless the kernel has
        // reclaimed its pages meanwhile, no page fault. (A spike that
        // recurs every so often is the case: it would otherwise fault in
        // all its memory again each time.) When it cannot serve, it goes.
        if let Some(kept) = self.retained.take() {
            if kept.len() >= need && kept.len() <= room {
                if kept.len() > beside {
                    drop(self.spare.take());
                }
                self.note_used();
                self.install(kept)?;
                return Ok(&self.active);
            }
        }
        if spare > 0 && HeapBuffer::layout_within(wanted, beside).is_none() {
            // A full-size chunk does not fit beside the spare: it goes.
            drop(self.spare.take());
        }
        let held = self.held_bytes();
        let room = self.limit.saturating_sub(held);
        // The buffer's own rounding (to a cache line, or to whole huge
        // pages) counts against the limit too.
        let Some(chunk) = HeapBuffer::layout_within(wanted.min(room), room)
            .filter(|chunk| chunk.size() >= need)
            .or_else(|| HeapBuffer::layout_within(need, room))
        else {
            return Err(ArenaError::LimitExceeded {
                requested: layout.size(),
                held,
                limit: self.limit,
            });
        };
        self.note_used();
        self.install(HeapBuffer::with_layout(chunk)?)?;
        Ok(&self.active)
    }

    /// Records the bytes in use, before a chunk is added or freed.
    fn note_used(&self) {
        self.high_water.set(self.high_water.get().max(self.used()));
    }

    /// Runs `try_alloc` in the active chunk; if that chunk has no room,
    /// adds one fit for `layout` and runs it there.
    #[inline(always)]
    fn with_room<'s, R>(
        &'s self,
        layout: Layout,
        try_alloc: impl Fn(&'s core_arena::Arena<'static>) -> Result<R, CoreError>,
    ) -> Result<R, ArenaError> {
        match try_alloc(&self.active) {
            Ok(done) => return Ok(done),
            Err(CoreError::Exhausted { .. } | CoreError::TooLarge { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        Ok(try_alloc(self.grow(layout)?)?)
    }

    /// The active chunk if it surely has room for `layout` (and a drop
    /// record), else a new chunk fit for it: for the calls that take a
    /// closure, which must not be lost to a full chunk.
    #[inline(always)]
    fn room_for(&self, layout: Layout) -> Result<&core_arena::Arena<'static>, ArenaError> {
        let fits = layout
            .size()
            .checked_add(layout.align() + OVERHEAD)
            .is_some_and(|need| need <= self.active.remaining());
        if fits {
            Ok(&self.active)
        } else {
            self.grow(layout)
        }
    }

    /// Moves `value` into the arena. On failure the value is dropped.
    #[inline(always)]
    pub fn alloc<T: 'static>(&self, value: T) -> Result<&mut T, ArenaError> {
        // The slow path hands back a bare pointer (its error, 32 bytes, is
        // left in `failure`): a `Result` from an outlined call comes back
        // through memory, and merging the fast path's result into it would
        // cost every allocation a store and a load on the stack.
        let rejected = match self.active.alloc_or_return(value) {
            Ok(slot) => return Ok(slot),
            Err(rejected) => rejected,
        };
        match self.alloc_in_new_chunk(rejected) {
            Some(slot) => Ok(slot),
            None => Err(self.take_failure()),
        }
    }

    /// The error of the slow path that just returned `None`.
    #[cold]
    #[inline(never)]
    fn take_failure(&self) -> ArenaError {
        // Always set by the path that returned `None`; the fallback is
        // never seen.
        self.failure
            .take()
            .unwrap_or(ArenaError::OutOfMemory { bytes: 0 })
    }

    /// `Some` value, or `None` with the error in `failure`.
    fn fail_into<R>(&self, result: Result<R, ArenaError>) -> Option<R> {
        result.map_err(|e| self.failure.set(Some(e))).ok()
    }

    #[cold]
    #[inline(never)]
    fn alloc_in_new_chunk<T: 'static>(&self, rejected: core_arena::Rejected<T>) -> Option<&mut T> {
        let result = match rejected.error {
            CoreError::Exhausted { .. } | CoreError::TooLarge { .. } => self
                .grow(Layout::new::<T>())
                .and_then(|arena| Ok(arena.alloc(rejected.value)?)),
            other => Err(other.into()),
        };
        self.fail_into(result)
    }

    /// Allocates a value built by `make`. For a type without drop glue the
    /// value is built in place, in a chunk with room found (or added)
    /// before `make` is called. A type with drop glue is built first and
    /// then moved in, as [`alloc`](Self::alloc) does: the core arena's
    /// in-place form needs a second drop record when `make` allocates in
    /// the same chunk, and a full chunk would then drop the value. Either
    /// way the value is never lost to a full chunk, and `make` may
    /// allocate in this arena too.
    #[inline]
    pub fn alloc_with<T: 'static, F: FnOnce() -> T>(&self, make: F) -> Result<&mut T, ArenaError> {
        if mem::needs_drop::<T>() {
            return self.alloc(make());
        }
        Ok(self.room_for(Layout::new::<T>())?.alloc_with(make)?)
    }

    /// Copies a `Copy` value into the arena.
    #[inline]
    pub fn alloc_copy<T: Copy>(&self, value: T) -> Result<&mut T, ArenaError> {
        self.with_room(Layout::new::<T>(), |arena| arena.alloc_copy(value))
    }

    /// Copies a slice into the arena.
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaError> {
        self.with_room(Layout::for_value(src), |arena| arena.alloc_slice_copy(src))
    }

    /// Copies a string into the arena.
    #[inline]
    pub fn alloc_str(&self, src: &str) -> Result<&mut str, ArenaError> {
        self.with_room(Layout::for_value(src), |arena| arena.alloc_str(src))
    }

    /// A slice of `len` values made by `fill(index)`. A chunk with room is
    /// found (or added) first, so `fill` runs once per element.
    pub fn alloc_slice_fill_with<T: 'static, F: FnMut(usize) -> T>(
        &self,
        len: usize,
        fill: F,
    ) -> Result<&mut [T], ArenaError> {
        let layout = Layout::array::<T>(len).map_err(|_| CoreError::SizeOverflow {
            elem_size: mem::size_of::<T>(),
            len,
        })?;
        if len == 0 {
            // Takes no space: no chunk needed (nor any limit met).
            return Ok(&mut []);
        }
        Ok(self.room_for(layout)?.alloc_slice_fill_with(len, fill)?)
    }

    /// Uninitialised memory for `layout` (any alignment up to 4096; a
    /// zero-sized layout takes no space).
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, ArenaError> {
        if layout.size() == 0 {
            // Takes no space: an aligned, dangling pointer, as the core's.
            return NonNull::new(std::ptr::without_provenance_mut(layout.align())).ok_or(
                ArenaError::Alloc(CoreError::SizeOverflow {
                    elem_size: 0,
                    len: 0,
                }),
            );
        }
        self.with_room(layout, |arena| arena.alloc_layout(layout))
    }

    /// Frees everything, dropping the values that need it (newest first),
    /// and keeps one chunk sized to the recent batches. The demand is the
    /// most bytes any of the last [`RESET_HISTORY`] batches used; its
    /// newest (largest) chunk is kept while it holds at least the demand
    /// and at most twice the demand plus an eighth. Otherwise one chunk of
    /// the demand plus an eighth (headroom for padding that differs
    /// between batches), rounded up to a cache line and at least the first
    /// chunk's size, replaces them all; the old ones are freed first, so
    /// the limit is never passed in between.
    ///
    /// Of the chunks it frees, the largest one of 2 MiB or more (mapped
    /// memory; see [`huge_page_bytes`](Self::huge_page_bytes)) is not
    /// unmapped on Linux but given back lazily (`madvise(MADV_FREE)`): the
    /// kernel takes its pages when it needs memory, and until then the
    /// arena's next growth, or a reset that needs a chunk that large, takes
    /// it back without page faults. It is not in
    /// [`held_bytes`](Self::held_bytes) but in
    /// [`retained_bytes`](Self::retained_bytes), counts against the limit,
    /// and [`trim`](Self::trim) unmaps it at once.
    ///
    /// And when it keeps such a chunk (a spike's), the oldest chunk it
    /// frees, the one the reset before sized for the calm batches, is kept
    /// as a spare if it is heap memory: in `held_bytes`, for the reset that
    /// shrinks back, so a workload whose spikes recur makes no heap calls
    /// at all once it has seen one. A spare that [`RESET_HISTORY`] resets
    /// pass without using is freed, and so is one that stands between a
    /// new chunk and the limit; [`trim`](Self::trim) frees it at once.
    pub fn reset(&mut self) {
        self.resize();
        if self.spare_bytes() > 0 {
            self.spare_age += 1;
            if self.spare_age > RESET_HISTORY {
                drop(self.spare.take());
            }
        }
    }

    /// The work of [`reset`](Self::reset) but for the spare's ageing.
    fn resize(&mut self) {
        let used = self.used();
        self.high_water.set(self.high_water.get().max(used));
        let left = mem::replace(&mut self.history[self.at], used);
        self.at = (self.at + 1) % RESET_HISTORY;
        // The most of the window, looked for again only when the batch
        // that just left it may have been the most.
        self.demand = if used >= self.demand {
            used
        } else if left < self.demand {
            self.demand
        } else {
            self.history.iter().copied().max().unwrap_or(0)
        };
        let demand = self.demand;
        let target = (demand + demand / 8).max(self.first).next_multiple_of(64);
        // The active chunk is the newest and the largest: keep it if it
        // fits the demand, freeing the full ones. Newest values drop first:
        // its own, then the full chunks' from the newest down.
        if let Some(buffer) = self.active_buffer.get_mut() {
            let capacity = self.active.capacity();
            if capacity >= demand && capacity / 2 <= target {
                // A spike's chunk kept: the calm batches' chunk, the oldest
                // (the one the last reset sized; the others are the spike's
                // doublings), is the spare for when they return.
                let keeps_spare = buffer.is_mapped();
                self.active.reset();
                while let Some(chunk) = self.full.get_mut().pop() {
                    let oldest = self.full.get_mut().is_empty();
                    self.free_chunk(
                        chunk,
                        Keep {
                            retain: true,
                            spare: keeps_spare && oldest,
                        },
                    );
                }
                return;
            }
        }
        self.free_chunks(true);
        if used > 0 || demand > 0 {
            // A failure here leaves the arena empty; the next allocation
            // adds a chunk (and reports the failure if it repeats).
            let bytes = target.min(self.limit & !63).max(1);
            // The spare and the retained chunk serve by the rule for the
            // kept chunk above: at least the demand, at most twice the
            // target; and within the limit (which may have been lowered
            // since they were kept). A spare that does not serve is freed
            // before anything is allocated.
            let serves = |kept: &HeapBuffer, room: usize| {
                kept.len() >= demand && kept.len() / 2 <= bytes && kept.len() <= room
            };
            if let Some(kept) = self.spare.take() {
                if serves(&kept, self.limit.saturating_sub(self.retained_bytes())) {
                    let _ = self.install(kept);
                    return;
                }
            }
            if let Some(kept) = self.retained.take() {
                if serves(&kept, self.limit) {
                    let _ = self.install(kept);
                    return;
                }
                self.retained.set(Some(kept));
            }
            let room = self.limit.saturating_sub(self.retained_bytes());
            let layout = HeapBuffer::layout_within(bytes, room).or_else(|| {
                // Not beside the retained chunk: without it.
                self.trim();
                HeapBuffer::layout_within(bytes, self.limit)
            });
            if let Some(buffer) = layout.and_then(|l| HeapBuffer::with_layout(l).ok()) {
                let _ = self.install(buffer);
            }
        }
    }

    /// Gives back at once what a reset kept for reuse (see
    /// [`reset`](Self::reset)): unmaps the retained chunk and frees the
    /// spare heap chunk, where there are any. The chunk in use stays.
    pub fn trim(&mut self) {
        drop(self.retained.take());
        drop(self.spare.take());
    }

    /// Bytes of the chunk that a reset gave back to the kernel lazily and
    /// kept for reuse (see [`reset`](Self::reset)); 0 if none. The kernel
    /// may have taken its pages already: this is what the arena may take
    /// back, at most.
    pub fn retained_bytes(&self) -> usize {
        buffer_len(&self.retained)
    }

    /// Bytes the chunks can hand out in all.
    pub fn capacity(&self) -> usize {
        self.chunk_list().map(|c| c.arena.capacity()).sum()
    }

    /// Bytes in use in all chunks (counting rounding, padding and drop
    /// records, as the core arena does).
    pub fn used(&self) -> usize {
        self.chunk_list().map(|c| c.arena.used()).sum()
    }

    /// The most bytes in use at once since the arena was made.
    pub fn high_water(&self) -> usize {
        self.high_water.get().max(self.used())
    }

    /// How many chunks the arena holds.
    pub fn chunks(&self) -> usize {
        self.chunk_list().count()
    }

    /// Bytes of memory the arena holds: its chunks' buffers and the spare
    /// heap chunk a reset may keep beside a spike's (see
    /// [`reset`](Self::reset)); not the chunk a reset gave back lazily,
    /// [`retained_bytes`](Self::retained_bytes).
    pub fn held_bytes(&self) -> usize {
        self.chunk_list().map(|c| c.buffer.len()).sum::<usize>() + self.spare_bytes()
    }

    /// Bytes of the spare heap chunk (0 if none).
    fn spare_bytes(&self) -> usize {
        buffer_len(&self.spare)
    }

    /// Bytes of the chunks backed by huge pages (chunks of 2 MiB or more
    /// ask for them), read from `/proc/self/smaps`; `None` where that
    /// cannot be read.
    pub fn huge_page_bytes(&self) -> Option<usize> {
        self.chunk_list().map(|c| c.buffer.huge_page_bytes()).sum()
    }

    /// The limit set with [`with_limit`](Self::with_limit) (`usize::MAX`
    /// if none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The chunks with memory, oldest first: the full ones, then the
    /// active one.
    fn chunk_list(&self) -> impl Iterator<Item = ChunkRef<'_>> {
        // `full` and `active_buffer` are mutated only in `install`, which no
        // caller of this function reaches while iterating (the arena is not
        // `Sync`, and nothing here calls out while the iterator is alive),
        // and by `&mut self` methods.
        // SAFETY: so no `&mut` to either exists while this view lives.
        let (full, active) = unsafe { (&*self.full.get(), &*self.active_buffer.get()) };
        let full = full.iter().map(|chunk| ChunkRef {
            arena: &chunk.arena,
            buffer: &chunk.buffer,
        });
        let active = active.as_ref().map(|buffer| ChunkRef {
            arena: &self.active,
            buffer,
        });
        full.chain(active)
    }

    /// Frees every chunk, newest first (so values drop newest first); with
    /// `retain`, keeps the largest mapped one for reuse (see `free_chunk`).
    /// Leaves the empty arena active.
    ///
    /// If a value's `Drop` panics, the chunks not yet freed stay in `full`:
    /// after a reset they are still held and counted (the next reset frees
    /// them); as the arena itself drops, the vector drops them while the
    /// panic unwinds, oldest first (a second panic aborts, as in a `Vec`).
    fn free_chunks(&mut self, retain: bool) {
        let keep = Keep {
            retain,
            spare: false,
        };
        let arena = mem::replace(&mut self.active, core_arena::Arena::empty());
        match self.active_buffer.get_mut().take() {
            Some(buffer) => self.free_chunk(Chunk { arena, buffer }, keep),
            // The empty arena: no memory, so no values.
            None => drop(arena),
        }
        while let Some(chunk) = self.full.get_mut().pop() {
            self.free_chunk(chunk, keep);
        }
    }

    /// Frees one chunk taken out of the arena (its values drop first).
    /// With `keep.retain`, a mapped chunk larger than the one retained now
    /// is given back to the kernel lazily and retained instead; with
    /// `keep.spare`, a heap chunk larger than the spare becomes the spare.
    fn free_chunk(&mut self, chunk: Chunk, keep: Keep) {
        let Chunk { arena, buffer } = chunk;
        drop(arena); // its values, before their memory goes
        if !keep.retain {
            return;
        }
        if buffer.len() > self.retained_bytes() && buffer.lazy_free() {
            // The smaller one is unmapped.
            self.retained.set(Some(buffer));
        } else if keep.spare && !buffer.is_mapped() && buffer.len() > self.spare_bytes() {
            // The smaller one is freed.
            self.spare.set(Some(buffer));
            self.spare_age = 0;
        }
    }
}

/// The length of the buffer kept in `cell`, 0 if none.
fn buffer_len(cell: &Cell<Option<HeapBuffer>>) -> usize {
    // `Cell::take` and back: a `HeapBuffer` is not `Copy`.
    let kept = cell.take();
    let bytes = kept.as_ref().map_or(0, HeapBuffer::len);
    cell.set(kept);
    bytes
}

/// What [`GrowingArena::free_chunk`] may keep of a chunk it frees.
#[derive(Clone, Copy)]
struct Keep {
    /// A mapped chunk, given back lazily (the largest).
    retain: bool,
    /// A heap chunk, as the spare (the largest).
    spare: bool,
}

impl Default for GrowingArena {
    fn default() -> Self {
        GrowingArena::new()
    }
}

impl Drop for GrowingArena {
    fn drop(&mut self) {
        self.free_chunks(false);
    }
}

impl fmt::Debug for GrowingArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowingArena")
            .field("chunks", &self.chunks())
            .field("used", &self.used())
            .field("capacity", &self.capacity())
            .field("held_bytes", &self.held_bytes())
            .field("spare_bytes", &self.spare_bytes())
            .field("retained_bytes", &self.retained_bytes())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(feature = "allocator-api2")]
mod allocator_api2_impl {
    use super::*;
    use allocator_api2::alloc::{AllocError, Allocator};

    #[cfg_attr(docsrs, doc(cfg(feature = "allocator-api2")))]
    // SAFETY: blocks come from `alloc_layout`, so they are fresh, aligned
    // and of the requested size, in a chunk that is only freed by
    // `reset(&mut self)` or drop, neither possible while this `&GrowingArena`
    // is borrowed. `deallocate` frees nothing (the memory comes back at the
    // next reset), and growing or shrinking use the trait's defaults, which
    // allocate anew and copy.
    unsafe impl Allocator for &GrowingArena {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            let block = (**self).alloc_layout(layout).map_err(|_| AllocError)?;
            Ok(NonNull::slice_from_raw_parts(block, layout.size()))
        }

        unsafe fn deallocate(&self, _block: NonNull<u8>, _layout: Layout) {}
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn collections_grow_across_chunks() {
            let arena = GrowingArena::new();
            let mut ids = allocator_api2::vec::Vec::new_in(&arena);
            for i in 0..10_000_u64 {
                ids.push(i);
            }
            assert_eq!(ids.iter().sum::<u64>(), 10_000 * 9_999 / 2);
            assert!(arena.chunks() > 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Fewer allocations under Miri, which runs them a thousand times
    /// slower; the same paths are taken.
    const SCALE: usize = if cfg!(miri) { 10 } else { 1 };

    /// Counts drops through a shared cell.
    struct Dropper(Rc<Cell<usize>>);

    impl Drop for Dropper {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn grows_across_chunks_with_every_alignment() {
        let arena = GrowingArena::new();
        let mut seen = Vec::new();
        for round in 0..4_usize {
            for shift in 0..=12 {
                let align = 1_usize << shift;
                let size = align * 3 + round;
                let layout = Layout::from_size_align(size, align).unwrap();
                let block = arena.alloc_layout(layout).unwrap();
                assert_eq!(block.as_ptr().addr() % align, 0, "align {align}");
                // SAFETY: `block` is valid for `size` bytes.
                unsafe { block.as_ptr().write_bytes(shift as u8, size) };
                seen.push((block, size, shift as u8));
            }
        }
        assert!(arena.chunks() > 1, "{arena:?}");
        for (block, size, byte) in seen {
            // SAFETY: every block is still allocated and was filled above.
            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
            assert!(
                bytes.iter().all(|&b| b == byte),
                "a later chunk overwrote an earlier one"
            );
        }
        assert!(arena.used() <= arena.capacity());
        assert!(arena.held_bytes() >= arena.capacity());
    }

    #[test]
    fn chunks_at_least_double() {
        let arena = GrowingArena::new();
        let mut last = 0;
        for i in 0..(20_000 / SCALE) as u64 {
            arena.alloc(i).unwrap();
            let capacity = arena.capacity();
            if capacity != last {
                // a new chunk: at least as large as everything before it
                assert!(capacity - last >= last, "{last} -> {capacity}");
                last = capacity;
            }
        }
        assert!(arena.chunks() >= 3);
    }

    #[test]
    fn values_drop_once_across_chunks_resets_and_drop() {
        let drops = Rc::new(Cell::new(0));
        let mut arena = GrowingArena::new();
        for _ in 0..1000 {
            arena.alloc(Dropper(Rc::clone(&drops))).unwrap();
        }
        assert!(arena.chunks() > 1);
        assert_eq!(drops.get(), 0);
        arena.reset();
        assert_eq!(drops.get(), 1000);
        let slice = arena
            .alloc_slice_fill_with(300, |_| Dropper(Rc::clone(&drops)))
            .unwrap();
        assert_eq!(slice.len(), 300);
        arena.alloc_with(|| Dropper(Rc::clone(&drops))).unwrap();
        drop(arena);
        assert_eq!(drops.get(), 1301);
    }

    #[test]
    fn make_may_allocate_in_the_arena_and_grow_it() {
        let arena = GrowingArena::with_capacity(256).unwrap();
        let outer = arena
            .alloc_with(|| {
                let inner: &mut [u8] = arena.alloc_slice_copy(&[7_u8; 4096]).unwrap();
                inner.len()
            })
            .unwrap();
        assert_eq!(*outer, 4096);
        assert!(arena.chunks() >= 2);
    }

    #[test]
    fn the_limit_is_an_exact_error_and_the_arena_stays_usable() {
        let mut arena = GrowingArena::with_capacity(4096)
            .unwrap()
            .with_limit(16 * 1024);
        let held = arena.held_bytes();
        let big = arena.alloc_layout(Layout::from_size_align(64 * 1024, 8).unwrap());
        assert_eq!(
            big,
            Err(ArenaError::LimitExceeded {
                requested: 64 * 1024,
                held,
                limit: 16 * 1024
            })
        );
        assert!(big.unwrap_err().to_string().contains("limit"));
        // Smaller requests still fit, up to the limit and no further.
        let mut n = 0_u64;
        while arena.alloc([n; 8]).is_ok() {
            n += 1;
        }
        assert!(arena.held_bytes() <= 16 * 1024);
        assert!(n > 100);
        arena.reset();
        assert_eq!(*arena.alloc(5_u8).unwrap(), 5);
    }

    #[test]
    fn zero_sized_values_strings_and_copies() {
        let arena = GrowingArena::new();
        let unit: &mut () = arena.alloc(()).unwrap();
        *unit = ();
        assert_eq!(arena.alloc_str("approve").unwrap(), "approve");
        assert_eq!(*arena.alloc_copy(9_u16).unwrap(), 9);
        assert_eq!(arena.alloc_slice_copy::<u32>(&[]).unwrap(), &[] as &[u32]);
        assert!(matches!(
            arena.alloc_slice_fill_with(usize::MAX, |i| i as u64),
            Err(ArenaError::Alloc(CoreError::SizeOverflow { .. }))
        ));
    }

    #[test]
    fn a_repeating_workload_settles_into_one_chunk() {
        let mut arena = GrowingArena::new();
        let mut held = Vec::new();
        for _ in 0..12 {
            for i in 0..(2000 / SCALE) as u64 {
                arena.alloc([i; 4]).unwrap();
            }
            held.push((arena.chunks(), arena.held_bytes()));
            arena.reset();
        }
        // From the second batch on: one chunk, never replaced.
        assert!(held[1..].iter().all(|&(chunks, _)| chunks == 1), "{held:?}");
        assert!(held[1..].windows(2).all(|w| w[0].1 == w[1].1), "{held:?}");
        assert!(held[0].0 > 1, "the first batch grew: {held:?}");
    }

    #[test]
    fn after_a_spike_and_calm_batches_the_held_memory_falls_back() {
        let mut arena = GrowingArena::new();
        let batch = |arena: &GrowingArena, n: u64| {
            for i in 0..n {
                arena.alloc([i; 4]).unwrap();
            }
        };
        let calm_batch = 1000 / SCALE as u64;
        for _ in 0..4 {
            batch(&arena, calm_batch);
            arena.reset();
        }
        let calm = arena.held_bytes();
        batch(&arena, 100 * calm_batch);
        arena.reset();
        let spiked = arena.held_bytes();
        assert!(spiked > 50 * calm, "{calm} -> {spiked}");
        // Held while the spike is among the last batches (hysteresis) ...
        for _ in 0..RESET_HISTORY - 1 {
            batch(&arena, calm_batch);
            arena.reset();
            assert_eq!(arena.held_bytes(), spiked);
        }
        // ... and given back once it has left them: one chunk sized to the
        // calm batches (at most twice their demand plus an eighth).
        batch(&arena, calm_batch);
        arena.reset();
        assert_eq!(arena.chunks(), 1);
        assert!(arena.held_bytes() <= 2 * calm.max(calm_batch as usize * 32 * 9 / 8) + 64);
        assert!(
            arena.held_bytes() * 50 < spiked,
            "{calm} {spiked} {}",
            arena.held_bytes()
        );
    }

    #[test]
    fn a_fill_that_grows_the_arena_keeps_every_value() {
        let drops = Rc::new(Cell::new(0));
        let mut arena = GrowingArena::with_capacity(1024).unwrap();
        let slice = arena
            .alloc_slice_fill_with(8, |i| {
                // Fills the chunk the slice is in: the arena grows meanwhile.
                for _ in 0..16 {
                    arena.alloc([i as u64; 4]).unwrap();
                }
                Dropper(Rc::clone(&drops))
            })
            .unwrap();
        assert_eq!(slice.len(), 8);
        assert!(arena.chunks() >= 2);
        assert_eq!(drops.get(), 0);
        arena.reset();
        assert_eq!(drops.get(), 8, "each value dropped once");
        drop(arena);
        assert_eq!(drops.get(), 8);
    }

    #[test]
    fn a_value_whose_make_fills_the_chunk_is_not_lost() {
        let drops = Rc::new(Cell::new(0));
        let arena = GrowingArena::with_capacity(256).unwrap();
        let value = arena
            .alloc_with(|| {
                while arena.chunks() == 1 {
                    arena.alloc(0_u64).unwrap();
                }
                Dropper(Rc::clone(&drops))
            })
            .unwrap();
        assert_eq!(drops.get(), 0, "built once, kept");
        let _ = value;
        drop(arena);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn the_limit_counts_the_buffers_rounding() {
        let limit = 3 << 20;
        let arena = GrowingArena::new().with_limit(limit);
        let block = arena.alloc_layout(Layout::from_size_align(2 << 20, 8).unwrap());
        assert!(block.is_ok(), "fits on small pages within the limit");
        assert!(arena.held_bytes() <= limit, "{}", arena.held_bytes());
        let odd = GrowingArena::new().with_limit(10_000);
        while odd.alloc([0_u8; 100]).is_ok() {}
        assert!(odd.held_bytes() <= 10_000, "{}", odd.held_bytes());
    }

    #[test]
    fn empty_requests_take_no_chunk() {
        let arena = GrowingArena::new().with_limit(0);
        let none: &mut [u64] = arena.alloc_slice_fill_with(0, |_| unreachable!()).unwrap();
        assert!(none.is_empty());
        let zst = arena
            .alloc_layout(Layout::from_size_align(0, 4096).unwrap())
            .unwrap();
        assert_eq!(zst.as_ptr().addr() % 4096, 0);
        assert_eq!(arena.chunks(), 0);
    }

    #[cfg(panic = "unwind")]
    #[test]
    fn a_panicking_drop_in_an_older_chunk_leaves_the_arena_consistent() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("a value's Drop panicked");
            }
        }
        let mut arena = GrowingArena::new();
        arena.alloc(Bomb).unwrap();
        for i in 0..(20_000 / SCALE) as u64 {
            arena.alloc(i).unwrap();
        }
        assert!(arena.chunks() > 1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arena.reset()));
        assert!(result.is_err());
        // Whatever was freed before the panic is gone and accounted for;
        // the rest is still held and counted.
        let held: usize = arena.chunk_list().map(|c| c.buffer.len()).sum();
        assert_eq!(arena.held_bytes(), held + arena.spare_bytes());
        assert_eq!(*arena.alloc(7_u8).unwrap(), 7);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc { size: usize, align_shift: u32 },
        Reset,
    }

    /// Allocations of 1 byte to `largest` (scaled down under Miri), with
    /// alignments up to 256, and now and then a reset.
    fn op(largest: usize) -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (1_usize..largest / SCALE, 0_u32..9).prop_map(|(size, align_shift)| Op::Alloc { size, align_shift }),
            1 => Just(Op::Reset),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 64 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Against a model: every live block keeps its bytes whatever is
        /// allocated after it, blocks are aligned, and the limit holds.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(6000), 1..80 / SCALE)) {
            check_model(ops, 256 * 1024)?;
        }

        /// The same with spikes of megabytes: mapped chunks, retained
        /// chunks and spares come and go, and still count against the
        /// limit, which is tight enough to make them give way. Not under
        /// Miri, where chunks are never mappings (so there is no retained
        /// chunk or spare to test) and megabytes take minutes: the model
        /// above covers the heap path there.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn matches_a_model_with_spikes(ops in proptest::collection::vec(op(1_500_000), 1..60 / SCALE)) {
            check_model(ops, 6 << 20)?;
        }
    }

    fn check_model(ops: Vec<Op>, limit: usize) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut arena = GrowingArena::new().with_limit(limit);
        let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Alloc { size, align_shift } => {
                    let layout = Layout::from_size_align(size, 1 << align_shift).unwrap();
                    match arena.alloc_layout(layout) {
                        Ok(block) => {
                            proptest::prop_assert_eq!(block.as_ptr().addr() % layout.align(), 0);
                            // SAFETY: `block` is valid for `size` bytes.
                            unsafe { block.as_ptr().write_bytes(n as u8, size) };
                            live.push((block, size, n as u8));
                        }
                        Err(ArenaError::LimitExceeded {
                            held, limit: told, ..
                        }) => {
                            proptest::prop_assert_eq!(told, limit);
                            proptest::prop_assert!(held <= limit);
                        }
                        Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Reset => {
                    arena.reset();
                    live.clear();
                    proptest::prop_assert!(arena.chunks() <= 1);
                }
            }
            proptest::prop_assert!(
                arena.held_bytes() + arena.retained_bytes() <= limit,
                "{arena:?}"
            );
            proptest::prop_assert!(arena.used() <= arena.capacity());
            for &(block, size, byte) in &live {
                // SAFETY: the block is live (no reset since) and filled.
                let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
                proptest::prop_assert!(bytes.iter().all(|&b| b == byte));
            }
        }
        Ok(())
    }

    /// Whether every chunk of the arena is a mapping of its own (the
    /// chunks a reset may give back lazily: natively on Linux).
    fn all_mapped(arena: &GrowingArena) -> bool {
        arena.chunk_list().all(|c| c.buffer.is_mapped())
    }

    fn fill(arena: &GrowingArena, n: usize, mark: u64) {
        for i in 0..n as u64 {
            assert_eq!(
                *arena.alloc([mark, i, 0, 0, 0, 0, 0, 0]).unwrap(),
                [mark, i, 0, 0, 0, 0, 0, 0]
            );
        }
    }

    #[test]
    fn a_spike_chunk_is_given_back_lazily_and_taken_again() {
        let mut arena = GrowingArena::new();
        let (calm, spike) = (1000 / SCALE, 60_000 / SCALE); // 64 KB, 3.8 MB
        for _ in 0..4 {
            fill(&arena, calm, 1);
            arena.reset();
        }
        let calm_held = arena.held_bytes();
        fill(&arena, spike, 2);
        arena.reset();
        // One chunk for the spike's demand: a mapping natively (2 MiB or
        // more, huge pages on), heap memory under Miri.
        assert_eq!(arena.chunks(), 1);
        let spike_chunk = arena.held_bytes();
        let mapped = all_mapped(&arena);
        for _ in 0..RESET_HISTORY {
            fill(&arena, calm, 3);
            arena.reset();
        }
        assert_eq!(arena.chunks(), 1);
        assert!(
            arena.held_bytes() <= 2 * calm_held,
            "{}",
            arena.held_bytes()
        );
        if !mapped {
            assert_eq!(arena.retained_bytes(), 0, "only mappings are retained");
            return;
        }
        assert_eq!(arena.retained_bytes(), spike_chunk);
        assert!(format!("{arena:?}").contains(&format!("retained_bytes: {spike_chunk}")));
        // The next spike takes it back: two chunks, no third.
        let held = arena.held_bytes();
        fill(&arena, spike, 4);
        assert_eq!(arena.retained_bytes(), 0);
        assert_eq!(arena.chunks(), 2);
        assert_eq!(arena.held_bytes(), held + spike_chunk);
        arena.reset();
        // The spike's chunk is kept, and the calm batches' chunk with it as
        // the spare ...
        assert_eq!(arena.held_bytes(), spike_chunk + held);
        for _ in 0..RESET_HISTORY {
            fill(&arena, calm, 5);
            arena.reset();
        }
        // ... which serves again when they return; the spike's chunk is
        // retained again.
        assert_eq!((arena.chunks(), arena.held_bytes()), (1, held));
        assert_eq!(arena.retained_bytes(), spike_chunk);
        arena.trim();
        assert_eq!(arena.retained_bytes(), 0);
        fill(&arena, spike, 6);
        assert!(arena.chunks() > 2, "no chunk to take back after a trim");
    }

    #[test]
    fn the_spare_is_freed_when_the_calm_does_not_return() {
        let mut arena = GrowingArena::new();
        let (calm, spike) = (1000 / SCALE, 60_000 / SCALE);
        for _ in 0..4 {
            fill(&arena, calm, 1);
            arena.reset();
        }
        // A first spike, and the calm after it: its chunk retained.
        fill(&arena, spike, 2);
        arena.reset();
        for _ in 0..RESET_HISTORY {
            fill(&arena, calm, 1);
            arena.reset();
        }
        let calm_held = arena.held_bytes();
        // The next spike takes it back, and its reset keeps the spare.
        fill(&arena, spike, 2);
        arena.reset();
        let kept: usize = arena.chunk_list().map(|c| c.buffer.len()).sum();
        if !all_mapped(&arena) {
            // Only a mapped spike chunk keeps a spare.
            assert_eq!(arena.held_bytes(), kept);
            return;
        }
        assert_eq!(arena.held_bytes(), kept + calm_held);
        // Held as long as the calm could come back (the spike's reset
        // counts as one that did not use it) ...
        for _ in 0..RESET_HISTORY - 1 {
            fill(&arena, spike, 3);
            arena.reset();
            assert_eq!(arena.held_bytes(), kept + calm_held);
        }
        // ... and freed after.
        fill(&arena, spike, 4);
        arena.reset();
        assert_eq!(arena.held_bytes(), kept, "the spare is gone");
    }

    /// An arena settled on calm batches, then through its first spike and
    /// that spike's reset. The spike (2.06 MB) grows by doubling the calm
    /// chunk (64 KiB) on the heap up to 1 MiB (1.94 MiB in all), then into
    /// a 2 MiB chunk, which holds the batch's demand: the reset keeps it. Returns
    /// the calm chunk's size, and whether the kept chunk is a mapping (only
    /// then is there a spare).
    fn after_a_first_spike(arena: &mut GrowingArena) -> (usize, bool) {
        let (calm, spike) = (1000 / SCALE, 32_200 / SCALE);
        for _ in 0..4 {
            fill(arena, calm, 1);
            arena.reset();
        }
        assert_eq!(arena.chunks(), 1);
        let calm_chunk = arena.held_bytes();
        fill(arena, spike, 2);
        assert!(arena.chunks() > 3, "{} chunks", arena.chunks());
        arena.reset();
        assert_eq!(arena.chunks(), 1);
        let mapped = all_mapped(arena);
        if !mapped {
            assert_eq!(
                arena.spare_bytes(),
                0,
                "only a mapped spike chunk keeps a spare"
            );
        }
        (calm_chunk, mapped)
    }

    /// [`after_a_first_spike`]'s arena and calm chunk size where its
    /// kept chunk is a mapping, so that it holds a spare; `None` elsewhere
    /// (Miri, or huge pages refused), where there is no spare to test.
    fn with_a_spare() -> Option<(GrowingArena, usize)> {
        let mut arena = GrowingArena::new();
        let (calm_chunk, mapped) = after_a_first_spike(&mut arena);
        mapped.then_some((arena, calm_chunk))
    }

    #[test]
    fn the_spare_is_the_calm_batches_chunk_not_a_doubling() {
        let Some((mut arena, calm_chunk)) = with_a_spare() else {
            return;
        };
        // The spike's doublings of the calm chunk were heap memory too, and
        // larger; the spare is the chunk the calm batches will fit again.
        assert_eq!(arena.spare_bytes(), calm_chunk);
        for _ in 0..RESET_HISTORY {
            fill(&arena, 1000 / SCALE, 3);
            arena.reset();
        }
        assert_eq!(
            (arena.chunks(), arena.held_bytes(), arena.spare_bytes()),
            (1, calm_chunk, 0)
        );
    }

    #[test]
    fn the_spare_gives_way_to_the_limit() {
        let Some((arena, _)) = with_a_spare() else {
            return;
        };
        let spare = arena.spare_bytes();
        assert!(spare > 0);
        let held = arena.held_bytes();
        // A request larger than the kept chunk, whose new chunk (rounded
        // to a cache line) fits within the limit only if the spare goes.
        let mut size = arena.capacity() + 1;
        while (size + 8 + OVERHEAD).is_multiple_of(64) {
            size += 1;
        }
        let limit = held + size + 8 + OVERHEAD;
        let arena = arena.with_limit(limit);
        let block = arena.alloc_layout(Layout::from_size_align(size, 8).unwrap());
        assert!(block.is_ok(), "{block:?}");
        assert_eq!(arena.spare_bytes(), 0);
        assert_eq!(arena.chunks(), 2);
        assert!(
            arena.held_bytes() <= limit,
            "{} > {limit}",
            arena.held_bytes()
        );
    }

    #[test]
    fn trim_frees_the_spare_too() {
        let mut arena = GrowingArena::new();
        let (_, mapped) = after_a_first_spike(&mut arena);
        let kept: usize = arena.chunk_list().map(|c| c.buffer.len()).sum();
        arena.trim();
        assert_eq!((arena.spare_bytes(), arena.retained_bytes()), (0, 0));
        assert_eq!(arena.held_bytes(), kept);
        // The chunk in use stays, and serves.
        fill(&arena, 10, 3);
        assert_eq!(arena.chunks(), 1);
        if mapped {
            assert!(format!("{arena:?}").contains("spare_bytes: 0"));
        }
    }

    #[test]
    fn a_retained_chunk_counts_against_the_limit_and_gives_way() {
        let spike = 60_000 / SCALE;
        let mut arena = GrowingArena::new();
        fill(&arena, spike, 1);
        arena.reset();
        let spike_chunk = arena.held_bytes();
        if !all_mapped(&arena) {
            // Heap chunks (Miri, other systems) are never retained.
            assert_eq!(arena.retained_bytes(), 0);
            return;
        }
        // Room for the spike chunk and a larger one, not for both with
        // the calm chunk beside them.
        let big = spike_chunk + super::super::pages::HUGE_PAGE;
        let limit = big + spike_chunk / 2;
        arena = GrowingArena::with_capacity(4096).unwrap().with_limit(limit);
        fill(&arena, spike, 2);
        arena.reset();
        for _ in 0..RESET_HISTORY {
            fill(&arena, 10, 3);
            arena.reset();
        }
        assert!(arena.retained_bytes() > 0);
        assert!(arena.held_bytes() + arena.retained_bytes() <= limit);
        // Too large for the retained chunk: it goes, and the new chunk fits.
        let block = arena
            .alloc_slice_fill_with(big / 8 - 1024, |i| i as u64)
            .unwrap();
        assert_eq!(block[block.len() - 1], block.len() as u64 - 1);
        assert_eq!(arena.retained_bytes(), 0);
        assert!(arena.held_bytes() <= limit);
    }
}
