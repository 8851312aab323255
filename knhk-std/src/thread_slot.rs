//! A small index per thread, for per-thread shards.
//!
//! Each thread that asks gets an index in `0..SLOTS` and keeps it until it
//! exits; then the index goes back to be handed to a later thread. No two
//! live threads hold the same index, and a thread's last writes through
//! its index happen before the next holder's first (the hand-back is a
//! release, the take an acquire). So the holder of an index is the only
//! writer of what it indexes, which is what lets per-thread shards be
//! updated with a plain load and store. Threads that ask while [`SLOTS`]
//! others hold an index get none, and their callers fall back to a shared,
//! contended path.
//!
//! Reading the index is one thread-local load: that thread-local has a
//! constant initialiser and no destructor, so touching it never allocates
//! and it is safe inside a global allocator. A second thread-local, touched
//! once when the index is assigned, hands it back at thread exit.

use std::cell::Cell;
use std::sync::atomic::{
    AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// How many threads at once get a slot of their own: 256; 128 under Miri,
/// where each thread costs the tests that run more threads than there are
/// slots a good fraction of a second (128 still takes two words of the
/// free-slot bitmap, so the search across words is checked too).
pub const SLOTS: usize = if cfg!(miri) { 128 } else { 256 };

/// Not yet asked. It is out of range like "none", so the fast path needs a
/// single compare; the slow path tells the two apart.
const UNASSIGNED: usize = SLOTS;
/// No index: every slot was held when this thread asked, or the thread is
/// exiting and has handed its index back.
const NONE: usize = usize::MAX;

/// Indices never handed out are `NEXT..SLOTS`.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Indices handed back by exited threads, a bit each.
static FREED: [AtomicU64; SLOTS / 64] = [const { AtomicU64::new(0) }; SLOTS / 64];

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    static HAND_BACK: HandBack = const { HandBack };
}

/// Hands this thread's index back when its thread-locals are destroyed.
struct HandBack;

impl Drop for HandBack {
    fn drop(&mut self) {
        // Allocations made after this (by other thread-locals' destructors)
        // take the shared path: the index may be someone else's by then.
        let _ = SLOT.try_with(|slot| {
            let index = slot.replace(NONE);
            if index < SLOTS {
                free(index);
            }
        });
    }
}

/// This thread's slot, or `None` if all [`SLOTS`] were held by other
/// threads when this thread first asked.
#[inline(always)]
pub fn current() -> Option<usize> {
    let index = SLOT.try_with(Cell::get).unwrap_or(NONE);
    if index < SLOTS {
        Some(index)
    } else if index == NONE {
        // Asked before and got none (or handed back): no call to ask again.
        None
    } else {
        assign()
    }
}

#[cold]
#[inline(never)]
fn assign() -> Option<usize> {
    SLOT.try_with(|slot| {
        if slot.get() != UNASSIGNED {
            return slot.get();
        }
        let Some(index) = take() else {
            slot.set(NONE);
            return NONE;
        };
        // Set before the hand-back is registered: registering may allocate,
        // and an allocation that comes back here must find the index.
        slot.set(index);
        if HAND_BACK.try_with(|_| ()).is_err() {
            // The thread is past its thread-local destructors, so nothing
            // would hand the index back: give it up now.
            slot.set(NONE);
            free(index);
        }
        slot.get()
    })
    .ok()
    .filter(|&index| index < SLOTS)
}

/// An index nobody holds: one handed back, else a new one.
fn take() -> Option<usize> {
    for (word, bits) in FREED.iter().enumerate() {
        let mut vacant = bits.load(Relaxed);
        while vacant != 0 {
            let at = vacant.trailing_zeros();
            // Acquire: the previous holder's writes happen before ours.
            if bits.fetch_and(!(1 << at), Acquire) & (1 << at) != 0 {
                return Some(word * 64 + at as usize);
            }
            vacant = bits.load(Relaxed); // another thread took it first
        }
    }
    // Only while indices are left: a counter that every later thread
    // bumped could wrap (on 32-bit targets) and hand out a held index.
    NEXT.fetch_update(Relaxed, Relaxed, |next| (next < SLOTS).then_some(next + 1))
        .ok()
}

/// Hands `index` back. Release: this thread's writes through it happen
/// before the next holder's.
fn free(index: usize) {
    FREED[index / 64].fetch_or(1 << (index % 64), Release);
}

/// How many slots have ever been handed out (at most [`SLOTS`]); every slot
/// index in use is below this.
#[inline]
pub fn assigned() -> usize {
    NEXT.load(Relaxed).min(SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_thread_keeps_its_slot_and_live_threads_differ() {
        let mine = current();
        assert_eq!(current(), mine);
        let barrier = Barrier::new(8);
        let slots: Vec<Option<usize>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let slot = current();
                        barrier.wait(); // all eight hold theirs at once
                        assert_eq!(current(), slot);
                        slot
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut held: Vec<usize> = slots.into_iter().chain([mine]).flatten().collect();
        let count = held.len();
        held.sort_unstable();
        held.dedup();
        assert_eq!(held.len(), count, "two live threads shared a slot");
        assert!(held.iter().all(|&index| index < assigned()));
    }

    /// What the hand-off promises, checked where Miri can see it: data
    /// that only a slot's holder touches, with plain (non-atomic) writes.
    /// A thread writes its slot's datum and exits; a thread that was
    /// already running, and synchronised with it through nothing else
    /// (a relaxed flag gives no ordering), takes a slot and writes that
    /// slot's datum. If it got the same slot, only the hand-back's release
    /// and the take's acquire order the two writes: without them, Miri
    /// reports a data race. (Natively the test also passes when another
    /// test takes the freed slot first; then there is nothing to order.)
    #[test]
    fn the_hand_off_orders_the_old_holders_writes_before_the_new_ones() {
        struct PerSlot([std::cell::UnsafeCell<u64>; SLOTS]);
        // SAFETY: each datum is accessed only by the thread holding its
        // slot, and the hand-off orders one holder's accesses before the
        // next's: exactly the property under test.
        unsafe impl Sync for PerSlot {}
        static DATA: PerSlot = PerSlot([const { std::cell::UnsafeCell::new(0) }; SLOTS]);
        fn write(slot: usize, value: u64) {
            // SAFETY: this thread holds `slot` (see `PerSlot`).
            unsafe { *DATA.0[slot].get() = value };
        }
        fn read(slot: usize) -> u64 {
            // SAFETY: as in `write`.
            unsafe { *DATA.0[slot].get() }
        }
        let gone = std::sync::atomic::AtomicBool::new(false);
        static FIRST_SLOT: AtomicUsize = AtomicUsize::new(NONE);
        std::thread::scope(|s| {
            s.spawn(|| {
                // Waits, without synchronising, until the first thread has
                // exited and handed its slot back.
                while !gone.load(Relaxed) {
                    std::thread::yield_now();
                }
                while FREED.iter().all(|bits| bits.load(Relaxed) == 0) {
                    std::thread::yield_now();
                }
                if let Some(slot) = current() {
                    if slot == FIRST_SLOT.load(Relaxed) {
                        // The old holder's write is visible (and, under
                        // Miri, ordered before this read and write).
                        assert_eq!(read(slot), 1);
                    } else {
                        eprintln!("another test took the freed slot first: no hand-off seen");
                    }
                    write(slot, 2);
                }
            });
            let first = std::thread::spawn(|| {
                if let Some(slot) = current() {
                    write(slot, 1);
                    FIRST_SLOT.store(slot, Relaxed);
                }
            });
            // Joined, so this test thread knows the exit happened; the
            // waiting thread learns it only through the relaxed flag.
            first.join().unwrap();
            gone.store(true, Relaxed);
        });
    }

    #[test]
    fn exited_threads_hand_their_slots_on() {
        // More threads than slots, one after another: each finds a slot,
        // because each exited thread handed its own back.
        for round in 0..SLOTS + 64 {
            let slot = std::thread::spawn(current).join().unwrap();
            assert!(slot.is_some(), "thread {round} found no slot");
        }
    }
}
