//! Allocation statistics: a [`GlobalAlloc`] wrapper that counts.
//!
//! [`CountingAlloc`] forwards every call to the allocator it wraps and, when
//! the call succeeded, records it in a [`Tally`]: allocations, frees, live
//! bytes, the peak of live bytes, and all bytes ever allocated. It never
//! allocates, logs or panics, so it can be the `#[global_allocator]` of a
//! microcontroller as well as of a server.
//!
//! The tally is a type parameter because the right bookkeeping depends on
//! the machine. [`AtomicTally`], the default, is one set of atomics: exact
//! and simple, ideal for one core. On a multi-core server those atomics'
//! cache line would bounce between cores on every allocation; knhk-std's
//! `ThreadTally` gives each thread a line of its own instead.
//!
//! ```
//! use std::alloc::{GlobalAlloc, Layout, System};
//! use knhk_core::alloc_stats::CountingAlloc;
//!
//! static COUNTING: CountingAlloc<System> = CountingAlloc::new(System);
//!
//! let layout = Layout::from_size_align(64, 8).unwrap();
//! // SAFETY: the layout has a non-zero size; the block is freed with it.
//! unsafe {
//!     let block = COUNTING.alloc(layout);
//!     assert!(!block.is_null());
//!     assert_eq!(COUNTING.snapshot().current, 64);
//!     COUNTING.dealloc(block, layout);
//! }
//! let counts = COUNTING.snapshot();
//! assert_eq!((counts.allocations, counts.deallocations), (1, 1));
//! assert_eq!((counts.current, counts.peak), (0, 64));
//! ```
//!
//! Installed as the global allocator (`#[global_allocator] static A:
//! CountingAlloc<System> = CountingAlloc::new(System);`), it counts every
//! heap allocation of the program.

use core::alloc::{GlobalAlloc, Layout};

use crate::cache::CachePadded;
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Counts at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AllocSnapshot {
    /// Successful allocations (`alloc`, `alloc_zeroed`, and the new block of
    /// each `realloc`).
    pub allocations: u64,
    /// Frees (`dealloc`, and the old block of each successful `realloc`).
    pub deallocations: u64,
    /// Requested bytes now live.
    pub current: u64,
    /// The most requested bytes live at once since the last peak reset.
    pub peak: u64,
    /// Requested bytes of all allocations ever made.
    pub total_allocated: u64,
}

/// Where a [`CountingAlloc`] records what it sees.
///
/// Implementations must not allocate, lock in a way that an interrupted
/// allocation could deadlock on, or panic: they run inside the allocator.
pub trait Tally: Sync {
    /// A block of `size` bytes was allocated.
    fn record_alloc(&self, size: usize);
    /// A block of `size` bytes was freed.
    fn record_dealloc(&self, size: usize);
    /// The counts now.
    fn snapshot(&self) -> AllocSnapshot;
    /// Restarts the peak at the current usage.
    fn reset_peak(&self);
}

impl<T: Tally + ?Sized> Tally for &T {
    #[inline(always)]
    fn record_alloc(&self, size: usize) {
        (**self).record_alloc(size);
    }
    #[inline(always)]
    fn record_dealloc(&self, size: usize) {
        (**self).record_dealloc(size);
    }
    fn snapshot(&self) -> AllocSnapshot {
        (**self).snapshot()
    }
    fn reset_peak(&self) {
        (**self).reset_peak();
    }
}

/// Exact counts in one set of atomics, on a cache line of their own.
///
/// The right tally for a single core. Under several allocating threads its
/// line is contended; see knhk-std's `ThreadTally`.
#[derive(Default)]
pub struct AtomicTally {
    counts: CachePadded<Counts>,
}

#[derive(Default)]
struct Counts {
    allocations: AtomicU64,
    deallocations: AtomicU64,
    current: AtomicU64,
    peak: AtomicU64,
    total: AtomicU64,
}

impl AtomicTally {
    /// All counts at zero.
    pub const fn new() -> AtomicTally {
        AtomicTally {
            counts: CachePadded::new(Counts {
                allocations: AtomicU64::new(0),
                deallocations: AtomicU64::new(0),
                current: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                total: AtomicU64::new(0),
            }),
        }
    }
}

impl Tally for AtomicTally {
    #[inline]
    fn record_alloc(&self, size: usize) {
        let c = &self.counts;
        let size = size as u64;
        c.allocations.fetch_add(1, Relaxed);
        c.total.fetch_add(size, Relaxed);
        let now = c.current.fetch_add(size, Relaxed).wrapping_add(size);
        // Only a new peak pays for the read-modify-write.
        if now > c.peak.load(Relaxed) {
            c.peak.fetch_max(now, Relaxed);
        }
    }

    #[inline]
    fn record_dealloc(&self, size: usize) {
        let c = &self.counts;
        c.deallocations.fetch_add(1, Relaxed);
        c.current.fetch_sub(size as u64, Relaxed);
    }

    fn snapshot(&self) -> AllocSnapshot {
        let c = &self.counts;
        AllocSnapshot {
            allocations: c.allocations.load(Relaxed),
            deallocations: c.deallocations.load(Relaxed),
            current: c.current.load(Relaxed),
            peak: c.peak.load(Relaxed),
            total_allocated: c.total.load(Relaxed),
        }
    }

    fn reset_peak(&self) {
        self.counts
            .peak
            .store(self.counts.current.load(Relaxed), Relaxed);
    }
}

/// A [`GlobalAlloc`] that forwards to `A` and counts in `T`.
///
/// Only successful operations are counted. `alloc_zeroed` and `realloc` are
/// forwarded to `A`'s own (so a `calloc` or in-place `realloc` stays one);
/// a successful `realloc` counts as freeing the old block and allocating
/// the new one.
pub struct CountingAlloc<A, T = AtomicTally> {
    inner: A,
    tally: T,
}

impl<A> CountingAlloc<A, AtomicTally> {
    /// Counts `inner`'s allocations in an [`AtomicTally`].
    pub const fn new(inner: A) -> Self {
        CountingAlloc {
            inner,
            tally: AtomicTally::new(),
        }
    }
}

impl<A, T: Tally> CountingAlloc<A, T> {
    /// Counts `inner`'s allocations in `tally`.
    pub const fn with_tally(inner: A, tally: T) -> Self {
        CountingAlloc { inner, tally }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    /// The tally.
    pub const fn tally(&self) -> &T {
        &self.tally
    }

    /// All counts at once: read the one you want off the snapshot.
    pub fn snapshot(&self) -> AllocSnapshot {
        self.tally.snapshot()
    }

    /// Restarts the peak at the current usage.
    pub fn reset_peak(&self) {
        self.tally.reset_peak();
    }
}

// SAFETY: every method forwards to `A` with the caller's arguments unchanged
// and returns `A`'s result, so `A`'s guarantees carry over; the tally only
// observes sizes and never touches the memory.
unsafe impl<A: GlobalAlloc, T: Tally> GlobalAlloc for CountingAlloc<A, T> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let block = unsafe { self.inner.alloc(layout) };
        if !block.is_null() {
            self.tally.record_alloc(layout.size());
        }
        block
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            self.tally.record_alloc(layout.size());
        }
        block
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { self.inner.dealloc(block, layout) };
        self.tally.record_dealloc(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let moved = unsafe { self.inner.realloc(block, layout, new_size) };
        if !moved.is_null() {
            self.tally.record_dealloc(layout.size());
            self.tally.record_alloc(new_size);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::alloc::System;

    /// An allocator that refuses everything, to check failures are not counted.
    struct Refusing;

    // SAFETY: it never hands out memory.
    unsafe impl GlobalAlloc for Refusing {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[test]
    fn failures_are_not_counted() {
        let counting = CountingAlloc::new(Refusing);
        let layout = Layout::from_size_align(32, 8).unwrap();
        // SAFETY: non-zero layout; nothing is returned to free.
        unsafe {
            assert!(counting.alloc(layout).is_null());
            assert!(counting.alloc_zeroed(layout).is_null());
        }
        assert_eq!(counting.snapshot(), AllocSnapshot::default());
    }

    #[test]
    fn zeroed_and_realloc_are_forwarded_and_counted() {
        let counting = CountingAlloc::new(System);
        let layout = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: non-zero layouts; each block is freed with its layout.
        unsafe {
            let block = counting.alloc_zeroed(layout);
            assert!(core::slice::from_raw_parts(block, 16)
                .iter()
                .all(|&b| b == 0));
            let grown = counting.realloc(block, layout, 100);
            assert!(!grown.is_null());
            assert_eq!(counting.snapshot().current, 100);
            counting.dealloc(grown, Layout::from_size_align(100, 8).unwrap());
        }
        let s = counting.snapshot();
        assert_eq!((s.allocations, s.deallocations), (2, 2));
        assert_eq!((s.current, s.peak, s.total_allocated), (0, 100, 116));
        counting.reset_peak();
        assert_eq!(counting.snapshot().peak, 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(usize),
        Zeroed(usize),
        Realloc(usize, usize),
        Free(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..256).prop_map(Op::Alloc),
            (1usize..256).prop_map(Op::Zeroed),
            (0usize..16, 1usize..512).prop_map(|(i, n)| Op::Realloc(i, n)),
            (0usize..16).prop_map(Op::Free),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// `current_usage` is the live requested bytes through any sequence
        /// of alloc, alloc_zeroed, realloc and dealloc; `peak_usage` is the
        /// most that were live.
        #[test]
        fn current_usage_tracks_live_bytes(ops in proptest::collection::vec(op(), 0..64)) {
            let counting = CountingAlloc::new(System);
            let mut live: Vec<(*mut u8, Layout)> = Vec::new();
            let mut peak = 0_u64;
            for op in ops {
                // SAFETY: non-zero layouts; each block is freed or resized
                // with the layout it currently has, exactly once.
                unsafe {
                    match op {
                        Op::Alloc(n) | Op::Zeroed(n) => {
                            let layout = Layout::from_size_align(n, 8).unwrap();
                            let block = if matches!(op, Op::Alloc(_)) {
                                counting.alloc(layout)
                            } else {
                                counting.alloc_zeroed(layout)
                            };
                            prop_assert!(!block.is_null());
                            live.push((block, layout));
                        }
                        Op::Realloc(i, n) if !live.is_empty() => {
                            let at = i % live.len();
                            let (block, layout) = live[at];
                            let moved = counting.realloc(block, layout, n);
                            prop_assert!(!moved.is_null());
                            live[at] = (moved, Layout::from_size_align(n, 8).unwrap());
                        }
                        Op::Free(i) if !live.is_empty() => {
                            let (block, layout) = live.swap_remove(i % live.len());
                            counting.dealloc(block, layout);
                        }
                        _ => {}
                    }
                }
                let expected: u64 = live.iter().map(|(_, l)| l.size() as u64).sum();
                peak = peak.max(expected);
                prop_assert_eq!(counting.snapshot().current, expected);
                prop_assert_eq!(counting.snapshot().peak, peak);
                let s = counting.snapshot();
                prop_assert_eq!(s.allocations - s.deallocations, live.len() as u64);
            }
            for (block, layout) in live {
                // SAFETY: each remaining block is freed once with its layout.
                unsafe { counting.dealloc(block, layout) };
            }
            prop_assert_eq!(counting.snapshot().current, 0);
        }
    }
}
