//! A small, stable index per thread, for per-thread shards.
//!
//! The first [`SLOTS`] threads that ask get indices `0..SLOTS`, in the order
//! they ask; later threads get none and their callers fall back to a shared,
//! contended path. An index is never handed to a second thread, not even
//! after its thread exits: so the thread that holds an index is the only one
//! that ever writes through it, which is what lets per-thread shards be
//! updated with a plain load and store. (Reusing indices would need a
//! thread-exit hook, and registering one allocates, which the allocation
//! statistics must never do.)
//!
//! Reading the index is one thread-local load. The thread-local has a
//! constant initialiser and no destructor, so touching it never allocates:
//! it is safe inside a global allocator.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// How many threads get a slot of their own.
pub const SLOTS: usize = 256;

/// Not yet asked. It is out of range like "none left", so the fast path
/// needs a single compare; the slow path tells the two apart.
const UNASSIGNED: usize = SLOTS;
/// Asked when every slot was taken.
const NONE_LEFT: usize = usize::MAX;

static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
}

/// This thread's slot, or `None` if all [`SLOTS`] were taken before this
/// thread first asked.
#[inline(always)]
pub fn current() -> Option<usize> {
    let index = SLOT.try_with(Cell::get).unwrap_or(NONE_LEFT);
    if index < SLOTS {
        Some(index)
    } else {
        assign()
    }
}

#[cold]
#[inline(never)]
fn assign() -> Option<usize> {
    SLOT.try_with(|slot| {
        if slot.get() == UNASSIGNED {
            let index = NEXT.fetch_add(1, Relaxed);
            slot.set(if index < SLOTS { index } else { NONE_LEFT });
        }
        slot.get()
    })
    .ok()
    .filter(|&index| index < SLOTS)
}

/// How many slots have been handed out so far (at most [`SLOTS`]); every
/// slot index in use is below this.
#[inline]
pub fn assigned() -> usize {
    NEXT.load(Relaxed).min(SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot_and_threads_differ() {
        let mine = current();
        assert_eq!(current(), mine);
        let other = std::thread::spawn(current).join().unwrap();
        if let (Some(a), Some(b)) = (mine, other) {
            assert_ne!(a, b);
            assert!(a < assigned() && b < assigned());
        }
    }
}
