//! Counting the report's own heap allocations, only while a section asks.
//!
//! The report binary installs [`knhk_core::alloc_stats::CountingAlloc`] over
//! the system allocator with [`HEAP_COUNT`] as its tally. The tally records
//! only between [`count`]'s start and end, so the other sections' `Box`
//! baselines run on the system allocator with one relaxed load of overhead.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use knhk_core::alloc_stats::{AllocSnapshot, AtomicTally, Tally};

/// A tally that records only while switched on.
pub struct HeapCount {
    on: AtomicBool,
    tally: AtomicTally,
}

/// The report binary's global allocator counts here.
pub static HEAP_COUNT: HeapCount = HeapCount {
    on: AtomicBool::new(false),
    tally: AtomicTally::new(),
};

impl Tally for HeapCount {
    #[inline(always)]
    fn record_alloc(&self, size: usize) {
        if self.on.load(Relaxed) {
            self.tally.record_alloc(size);
        }
    }

    #[inline(always)]
    fn record_dealloc(&self, size: usize) {
        if self.on.load(Relaxed) {
            self.tally.record_dealloc(size);
        }
    }

    fn snapshot(&self) -> AllocSnapshot {
        self.tally.snapshot()
    }

    fn reset_peak(&self) {
        self.tally.reset_peak();
    }
}

/// Runs `f` with counting on; returns its result and the allocations and
/// requested bytes it made. Reads zero unless the running binary installed
/// the counting allocator over [`HEAP_COUNT`] (the report does).
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let before = HEAP_COUNT.tally.snapshot();
    HEAP_COUNT.on.store(true, Relaxed);
    let r = f();
    HEAP_COUNT.on.store(false, Relaxed);
    let after = HEAP_COUNT.tally.snapshot();
    (
        r,
        after.allocations - before.allocations,
        after.total_allocated - before.total_allocated,
    )
}

/// Whether this binary's allocations reach [`HEAP_COUNT`].
pub fn installed() -> bool {
    let ((), allocations, _) = count(|| drop(std::hint::black_box(Box::new(1_u8))));
    allocations > 0
}
