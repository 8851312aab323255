//! Asymmetric memory barriers: a nearly free one for a hot path and an
//! expensive one for the rare path it must synchronise with.
//!
//! A Dekker-style handshake (each side stores a flag, then loads the
//! other's) needs a store-load barrier on both sides. On x86 that is a
//! locked instruction, about 10 ns on this project's machines once the
//! store buffer holds a batch's writes: more than everything else in a
//! pool checkout together. Linux's `membarrier(2)` with
//! `MEMBARRIER_CMD_PRIVATE_EXPEDITED` runs a full memory barrier on every
//! CPU currently running a thread of this process (by interrupt; a thread
//! that is not running passes one when it is scheduled in). With it, the
//! hot side needs only a compiler fence, and the rare side pays the system
//! call (about 1 µs). This is the technique of Linux's userspace RCU and
//! folly's `asymmetricLightBarrier`/`asymmetricHeavyBarrier`.
//!
//! The pairing guarantee: if one thread runs `store A; light(); load B` and
//! another `store B; heavy(); load A`, at least one of the loads sees the
//! other thread's store, as with two `fence(SeqCst)`s.
//!
//! Where `membarrier` is missing (other systems, old kernels, Miri, or a
//! sandbox that filters it), the light barrier is a real `fence(SeqCst)`
//! and the heavy one too: the same guarantee at the symmetric price. An
//! [`Asymmetric`] value settles which applies when it is made, and both
//! sides of one handshake must use the same value.

use std::sync::atomic::{compiler_fence, fence, Ordering::SeqCst};
use std::sync::OnceLock;

/// Whether the process registered for expedited private membarriers.
static EXPEDITED: OnceLock<bool> = OnceLock::new();

#[cfg(all(target_os = "linux", not(miri)))]
mod sys {
    use libc::{MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED};

    fn membarrier(cmd: libc::c_int) -> bool {
        // SAFETY: membarrier takes two integer arguments and no pointers;
        // an unknown command or an unsupported kernel only returns -1.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            ) == 0
        }
    }

    pub(super) fn register() -> bool {
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
    }

    pub(super) fn expedited() -> bool {
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
mod sys {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn expedited() -> bool {
        false
    }
}

/// A matched pair of barriers: [`light`](Self::light) for the hot side,
/// [`heavy`](Self::heavy) for the rare side of one handshake.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asymmetric {
    /// The heavy side is a membarrier (registered before this was made),
    /// so the light side may be a compiler fence.
    expedited: bool,
}

impl Asymmetric {
    /// The cheapest pair this process supports: registers for expedited
    /// membarriers on first use.
    pub(crate) fn new() -> Asymmetric {
        Asymmetric {
            expedited: *EXPEDITED.get_or_init(sys::register),
        }
    }

    /// The symmetric pair (two real fences), as where membarrier is
    /// missing.
    #[cfg(test)]
    pub(crate) fn symmetric() -> Asymmetric {
        Asymmetric { expedited: false }
    }

    /// Whether the light side costs only a compiler fence.
    #[cfg(test)]
    pub(crate) fn is_expedited(self) -> bool {
        self.expedited
    }

    /// The hot side's store-load barrier.
    #[inline(always)]
    pub(crate) fn light(self) {
        if self.expedited {
            // The partner's `heavy` interrupts this thread with a full
            // barrier wherever it is; the compiler must only keep program
            // order.
            compiler_fence(SeqCst);
        } else {
            fence(SeqCst);
        }
    }

    /// The rare side's barrier. Returns `false` if it could not be
    /// carried out (a registered membarrier failed, which the kernel
    /// documents as impossible): the caller must then not rely on the
    /// pairing.
    pub(crate) fn heavy(self) -> bool {
        fence(SeqCst);
        let done = !self.expedited || sys::expedited();
        fence(SeqCst);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_stable_and_heavy_succeeds() {
        let pair = Asymmetric::new();
        assert_eq!(Asymmetric::new().is_expedited(), pair.is_expedited());
        assert!(pair.heavy());
        pair.light();
        #[cfg(all(target_os = "linux", not(miri)))]
        eprintln!("membarrier expedited: {}", pair.is_expedited());
    }
}
