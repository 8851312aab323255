//! Allocator statistics and the choice of global allocator.
//!
//! [`ALLOCATOR_STATS`] reads the counts of knhk's counting global allocator:
//!
//! - with feature `jemalloc`, it counts over `tikv-jemallocator`;
//! - with feature `mimalloc`, it counts over `mimalloc`;
//! - with neither, a binary installs it over any `GlobalAlloc` with
//!   [`count_allocations!`](crate::count_allocations), for example over
//!   `std::alloc::System`.
//!
//! Enabling both features is a compile error: a program has one global
//! allocator.
//!
//! The counting is knhk-core's [`CountingAlloc`] over a [`ThreadTally`],
//! which gives each thread a cache line of its own. An allocation or free
//! then costs a thread-local read and a few plain stores on that line, with
//! no locked instruction and no line shared between cores. The report's
//! `alloc_stats` section measures the overhead against each bare allocator.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering::Relaxed};

pub use knhk_core::alloc_stats::{AllocSnapshot, AtomicTally, CountingAlloc, Tally};
use knhk_core::cache::CachePadded;

use crate::thread_slot::{self, SLOTS};

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!(
    "knhk-std: features `jemalloc` and `mimalloc` both install the global allocator; \
     enable only one of them"
);

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
crate::count_allocations!(tikv_jemallocator::Jemalloc, "jemalloc");

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
crate::count_allocations!(mimalloc::MiMalloc, "mimalloc");

/// Installs knhk's counting allocator over `backend` as the program's
/// global allocator, so that [`ALLOCATOR_STATS`] counts every heap
/// allocation. `backend` is a path to a unit struct that implements
/// `GlobalAlloc`; an optional second argument names it (default: the path).
///
/// Use it once, in a binary (not a library), and only when neither the
/// `jemalloc` nor the `mimalloc` feature is on: those install it already.
///
/// ```
/// # #[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
/// knhk_std::count_allocations!(std::alloc::System, "system");
///
/// use knhk_std::alloc_stats::ALLOCATOR_STATS;
///
/// let before = ALLOCATOR_STATS.allocation_count();
/// let v: Vec<u64> = Vec::with_capacity(100);
/// assert!(ALLOCATOR_STATS.allocation_count() > before);
/// assert!(ALLOCATOR_STATS.current_usage() >= 800);
/// # let expected = if cfg!(feature = "jemalloc") { "jemalloc" }
/// #     else if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" };
/// # /*
/// assert_eq!(ALLOCATOR_STATS.backend(), Some("system"));
/// # */
/// # assert_eq!(ALLOCATOR_STATS.backend(), Some(expected));
/// # drop(v);
/// ```
#[macro_export]
macro_rules! count_allocations {
    ($backend:path) => {
        $crate::count_allocations!($backend, stringify!($backend));
    };
    ($backend:path, $name:expr) => {
        static KNHK_COUNTING_ALLOCATOR_NAME: &str = $name;

        #[global_allocator]
        static KNHK_COUNTING_ALLOCATOR: $crate::alloc_stats::CountingAlloc<
            $backend,
            $crate::alloc_stats::GlobalTally,
        > = $crate::alloc_stats::CountingAlloc::with_tally(
            $backend,
            $crate::alloc_stats::GlobalTally::new(&KNHK_COUNTING_ALLOCATOR_NAME),
        );
    };
}

/// One thread's counts. Only the thread that owns the slot stores to the
/// counts (a peak reset stores to `high` too).
#[derive(Default)]
struct SlotCounts {
    allocations: AtomicU64,
    deallocations: AtomicU64,
    allocated: AtomicU64,
    freed: AtomicU64,
    /// The highest `allocated - freed` this slot reached since the last
    /// peak reset: negative where the thread frees more than it allocates
    /// (memory other threads allocated). Only a trigger for peak checks: a
    /// reset from another thread may race the owner's store and leave it
    /// too high (a peak check missed) or too low (one made for nothing);
    /// counts are unaffected.
    high: AtomicI64,
}

impl SlotCounts {
    const fn new() -> SlotCounts {
        SlotCounts {
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            allocated: AtomicU64::new(0),
            freed: AtomicU64::new(0),
            high: AtomicI64::new(0),
        }
    }

    fn net(&self) -> i64 {
        self.allocated
            .load(Relaxed)
            .wrapping_sub(self.freed.load(Relaxed)) as i64
    }
}

/// The live bytes of these slots: the sum of their nets, each of which may
/// be negative (a thread that frees what others allocated). Exact when
/// nothing is in flight; a read that races an allocation in one slot and
/// its free in another can come out below zero, which counts as zero
/// rather than wrapping to a peak of 2^64.
fn live<'s>(slots: impl Iterator<Item = &'s SlotCounts>) -> u64 {
    let total = slots.fold(0_i64, |sum, s| sum.wrapping_add(s.net()));
    total.max(0) as u64
}

/// Adds to a counter only its owner stores to: a load and a store, no lock.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) -> u64 {
    let value = counter.load(Relaxed).wrapping_add(n);
    counter.store(value, Relaxed);
    value
}

/// A [`Tally`] with a cache line per thread.
///
/// Counts, live bytes and total bytes are exact whenever no allocation is
/// in flight and the reader is synchronised with the threads that made
/// them (it joined them, say), whichever threads allocate and free. The
/// peak is tracked without a shared write on the common path: a thread
/// checks the global peak only when its own net usage reaches a new high,
/// so the peak is exact while one thread allocates and frees. With several
/// it is approximate: it can miss a peak that several threads reach
/// together, and a check that reads the slots while another thread
/// allocates and a third frees can see a total that never was (never
/// below zero). Snapshots taken meanwhile are approximate in the same way.
///
/// Up to 256 threads at once get a line each (an exiting thread hands its
/// line, counts and all, to a later one); others share an exact, atomic
/// set of counts.
pub struct ThreadTally {
    slots: [CachePadded<SlotCounts>; SLOTS],
    shared: CachePadded<SlotCounts>,
    peak: CachePadded<AtomicU64>,
}

impl ThreadTally {
    /// All counts at zero. About 32 KiB: keep it in a `static`.
    pub const fn new() -> ThreadTally {
        ThreadTally {
            slots: [const { CachePadded::new(SlotCounts::new()) }; SLOTS],
            shared: CachePadded::new(SlotCounts::new()),
            peak: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Live bytes: every slot's allocated minus freed.
    fn current(&self) -> u64 {
        live(self.lines())
    }

    /// The lines in use: every slot handed out so far, and the shared one.
    fn lines(&self) -> impl Iterator<Item = &SlotCounts> {
        let used = &self.slots[..thread_slot::assigned()];
        used.iter().map(|s| &**s).chain([&*self.shared])
    }

    #[cold]
    #[inline(never)]
    fn raise_peak(&self) {
        self.peak.fetch_max(self.current(), Relaxed);
    }
}

impl Tally for ThreadTally {
    #[inline]
    fn record_alloc(&self, size: usize) {
        let size = size as u64;
        match thread_slot::current() {
            Some(index) => {
                let slot = &self.slots[index];
                bump(&slot.allocations, 1);
                let allocated = bump(&slot.allocated, size);
                let net = allocated.wrapping_sub(slot.freed.load(Relaxed)) as i64;
                if net > slot.high.load(Relaxed) {
                    slot.high.store(net, Relaxed);
                    self.raise_peak();
                }
            }
            None => {
                let shared = &self.shared;
                shared.allocations.fetch_add(1, Relaxed);
                let allocated = shared.allocated.fetch_add(size, Relaxed).wrapping_add(size);
                let net = allocated.wrapping_sub(shared.freed.load(Relaxed)) as i64;
                if net > shared.high.fetch_max(net, Relaxed) {
                    self.raise_peak();
                }
            }
        }
    }

    #[inline]
    fn record_dealloc(&self, size: usize) {
        let size = size as u64;
        match thread_slot::current() {
            Some(index) => {
                let slot = &self.slots[index];
                bump(&slot.deallocations, 1);
                bump(&slot.freed, size);
            }
            None => {
                self.shared.deallocations.fetch_add(1, Relaxed);
                self.shared.freed.fetch_add(size, Relaxed);
            }
        }
    }

    fn snapshot(&self) -> AllocSnapshot {
        let mut s = AllocSnapshot::default();
        for slot in self.lines() {
            s.allocations = s.allocations.wrapping_add(slot.allocations.load(Relaxed));
            s.deallocations = s
                .deallocations
                .wrapping_add(slot.deallocations.load(Relaxed));
            s.total_allocated = s.total_allocated.wrapping_add(slot.allocated.load(Relaxed));
        }
        s.current = self.current();
        s.peak = self.peak.load(Relaxed).max(s.current);
        s
    }

    fn reset_peak(&self) {
        for slot in self.lines() {
            slot.high.store(slot.net(), Relaxed);
        }
        self.peak.store(self.current(), Relaxed);
    }
}

impl Default for ThreadTally {
    fn default() -> Self {
        ThreadTally::new()
    }
}

impl fmt::Debug for ThreadTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// The tally of the counting global allocator: counts go to
/// [`ALLOCATOR_STATS`], and the allocator's name with them.
pub struct GlobalTally {
    backend: &'static &'static str,
}

impl GlobalTally {
    /// A tally that reports its allocator as `*backend`.
    pub const fn new(backend: &'static &'static str) -> GlobalTally {
        GlobalTally { backend }
    }
}

impl Tally for GlobalTally {
    #[inline(always)]
    fn record_alloc(&self, size: usize) {
        if ALLOCATOR_STATS.backend.load(Relaxed).is_null() {
            ALLOCATOR_STATS.install(self.backend);
        }
        ALLOCATOR_STATS.tally.record_alloc(size);
    }

    #[inline(always)]
    fn record_dealloc(&self, size: usize) {
        ALLOCATOR_STATS.tally.record_dealloc(size);
    }

    fn snapshot(&self) -> AllocSnapshot {
        ALLOCATOR_STATS.tally.snapshot()
    }

    fn reset_peak(&self) {
        ALLOCATOR_STATS.tally.reset_peak();
    }
}

/// The counts of knhk's counting global allocator, if one is installed.
///
/// ```
/// use knhk_std::alloc_stats::ALLOCATOR_STATS;
///
/// let alloc_count = ALLOCATOR_STATS.allocation_count();
/// let current_usage = ALLOCATOR_STATS.current_usage();
/// if !ALLOCATOR_STATS.is_counting() {
///     // No counting allocator in this program: everything reads 0.
///     assert_eq!((alloc_count, current_usage), (0, 0));
/// }
/// ```
pub static ALLOCATOR_STATS: AllocatorStats = AllocatorStats {
    tally: ThreadTally::new(),
    backend: AtomicPtr::new(std::ptr::null_mut()),
};

/// The type of [`ALLOCATOR_STATS`].
pub struct AllocatorStats {
    tally: ThreadTally,
    /// The counting allocator's name, once it has allocated.
    backend: AtomicPtr<&'static str>,
}

impl AllocatorStats {
    #[cold]
    fn install(&self, backend: &'static &'static str) {
        // Never written through: the pointer only stands for a `&'static`.
        let name = backend as *const &'static str as *mut &'static str;
        let _ = self
            .backend
            .compare_exchange(std::ptr::null_mut(), name, Relaxed, Relaxed);
    }

    /// Whether a counting global allocator is installed (and has allocated).
    pub fn is_counting(&self) -> bool {
        !self.backend.load(Relaxed).is_null()
    }

    /// The name of the allocator being counted over: `"jemalloc"`,
    /// `"mimalloc"`, or what [`count_allocations!`](crate::count_allocations)
    /// was given; `None` when nothing counts.
    pub fn backend(&self) -> Option<&'static str> {
        let name = self.backend.load(Relaxed);
        // SAFETY: only `install` stores here, and it stores a pointer made
        // from a `&'static &'static str`.
        unsafe { name.as_ref() }.copied()
    }

    /// All counts at once: read the one you want off the snapshot.
    pub fn snapshot(&self) -> AllocSnapshot {
        self.tally.snapshot()
    }

    /// Restarts the peak at the current usage.
    pub fn reset_peak(&self) {
        self.tally.reset_peak();
    }

    /// The design document's name for `snapshot().allocations`.
    pub fn allocation_count(&self) -> u64 {
        self.snapshot().allocations
    }

    /// The design document's name for `snapshot().current`.
    pub fn current_usage(&self) -> u64 {
        self.snapshot().current
    }
}

impl fmt::Debug for AllocatorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllocatorStats")
            .field("backend", &self.backend())
            .field("counts", &self.snapshot())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};

    #[cfg(any(feature = "jemalloc", feature = "mimalloc"))]
    #[test]
    fn the_feature_installs_the_counting_allocator_over_its_backend() {
        let held = vec![0_u8; 4096];
        let expected = if cfg!(feature = "jemalloc") {
            "jemalloc"
        } else {
            "mimalloc"
        };
        assert_eq!(ALLOCATOR_STATS.backend(), Some(expected));
        assert!(ALLOCATOR_STATS.is_counting());
        assert!(ALLOCATOR_STATS.current_usage() >= 4096);
        assert!(ALLOCATOR_STATS.allocation_count() >= 1);
        drop(held);
    }

    #[test]
    fn thread_tally_counts_across_threads_exactly() {
        static COUNTING: CountingAlloc<System, ThreadTally> =
            CountingAlloc::with_tally(System, ThreadTally::new());
        let layout = Layout::from_size_align(48, 8).unwrap();
        let blocks: Vec<usize> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .map(|_| {
                                // SAFETY: non-zero layout; freed below.
                                unsafe { COUNTING.alloc(layout) as usize }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        assert_eq!(COUNTING.snapshot().allocations, 4000);
        assert_eq!(COUNTING.snapshot().current, 4000 * 48);
        assert!(COUNTING.snapshot().peak >= 1000 * 48);
        // Freed on another thread than the one that allocated.
        for block in blocks {
            // SAFETY: each block came from `alloc` with `layout`.
            unsafe { COUNTING.dealloc(block as *mut u8, layout) };
        }
        let s = COUNTING.snapshot();
        assert_eq!(
            (s.deallocations, s.current, s.total_allocated),
            (4000, 0, 4000 * 48)
        );
    }

    #[test]
    fn counts_stay_exact_as_exited_threads_hand_their_lines_on() {
        static COUNTING: CountingAlloc<System, ThreadTally> =
            CountingAlloc::with_tally(System, ThreadTally::new());
        let layout = Layout::from_size_align(24, 8).unwrap();
        // More threads than lines, one after another: later ones take the
        // lines of exited ones and carry on from their counts.
        let kept: Vec<usize> = (0..SLOTS + 44)
            .map(|_| {
                std::thread::spawn(move || {
                    // SAFETY: non-zero layout; the first block is freed here
                    // with it, the second below.
                    unsafe {
                        let freed = COUNTING.alloc(layout);
                        COUNTING.dealloc(freed, layout);
                        COUNTING.alloc(layout) as usize
                    }
                })
                .join()
                .unwrap()
            })
            .collect();
        let n = kept.len() as u64;
        let s = COUNTING.snapshot();
        assert_eq!(
            (s.allocations, s.deallocations, s.current, s.total_allocated),
            (2 * n, n, 24 * n, 48 * n)
        );
        for block in kept {
            // SAFETY: each block came from `alloc` with `layout`.
            unsafe { COUNTING.dealloc(block as *mut u8, layout) };
        }
        assert_eq!(COUNTING.snapshot().current, 0);
    }

    #[test]
    fn a_total_below_zero_counts_as_zero_not_as_a_huge_peak() {
        // Slots whose nets sum below zero: what a read sees when it takes
        // one slot before an allocation and another after its free (or a
        // thread without a slot frees what slotted threads allocated).
        let (gave, took) = (SlotCounts::new(), SlotCounts::new());
        gave.freed.store(1000, Relaxed);
        took.allocated.store(200, Relaxed);
        assert_eq!(live([&gave, &took].into_iter()), 0);
        took.allocated.store(1500, Relaxed);
        assert_eq!(live([&gave, &took].into_iter()), 500);

        let tally = Box::new(ThreadTally::new());
        tally.shared.freed.store(1000, Relaxed);
        tally.raise_peak();
        let s = tally.snapshot();
        assert_eq!((s.current, s.peak), (0, 0));
        // A reset marks the shared line's high at its net, below zero (a
        // mark that as unsigned bits would stay above every later net and
        // send each allocation on that line to a peak check).
        tally.reset_peak();
        assert_eq!(tally.shared.high.load(Relaxed), -1000);
        assert_eq!(tally.snapshot().peak, 0);
    }

    #[test]
    fn single_thread_peak_is_exact_and_resettable() {
        static COUNTING: CountingAlloc<System, ThreadTally> =
            CountingAlloc::with_tally(System, ThreadTally::new());
        let small = Layout::from_size_align(100, 8).unwrap();
        let big = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: non-zero layouts; each block freed once with its layout.
        unsafe {
            let a = COUNTING.alloc(big);
            COUNTING.dealloc(a, big);
            assert_eq!(COUNTING.snapshot().peak, 1000);
            COUNTING.reset_peak();
            assert_eq!(COUNTING.snapshot().peak, 0);
            let b = COUNTING.alloc(small);
            let c = COUNTING.alloc(small);
            assert_eq!(COUNTING.snapshot().peak, 200);
            COUNTING.dealloc(b, small);
            COUNTING.dealloc(c, small);
        }
        assert_eq!(
            (COUNTING.snapshot().current, COUNTING.snapshot().peak),
            (0, 200)
        );
    }
}
