//! The CPU's cycle/timestamp counter.
//!
//! The workflow engine budgets hot paths in *ticks* (8 per operation), so
//! knhk states its costs in ticks next to nanoseconds. A tick is one step of
//! the counter this module reads:
//!
//! | target | counter | what a tick is |
//! |---|---|---|
//! | x86, x86_64 | `rdtsc` | one period of the invariant timestamp counter, which runs at the CPU's nominal (base) frequency whatever the current clock |
//! | aarch64 | `cntvct_el0` | one period of the generic timer, [`frequency_hz`] per second (often 24 MHz to 1 GHz, so far coarser than a cycle) |
//! | everything else, and under Miri | none | [`read`] returns 0 and [`AVAILABLE`] is `false` |
//!
//! The fallback is deliberate: a `no_std` target has no clock we could read
//! portably, and a made-up count would be worse than an honest zero. Callers
//! that print ticks check [`AVAILABLE`] first.
//!
//! `rdtsc` is not serialising: the CPU may run it before earlier instructions
//! finish. Over a batch of thousands of operations that error is a few ticks
//! in total, which is why knhk measures batches rather than single calls.
//!
//! ```
//! let start = knhk_core::ticks::read();
//! let sum: u64 = (0..1000_u64).sum();
//! let spent = knhk_core::ticks::read().wrapping_sub(start);
//! # let _ = (sum, spent);
//! if knhk_core::ticks::AVAILABLE {
//!     // `spent` is the number of counter ticks the loop took.
//! }
//! ```

/// Which hardware counter [`read`] uses on this target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TickSource {
    /// x86's timestamp counter (`rdtsc`).
    Tsc,
    /// aarch64's virtual generic timer (`cntvct_el0`).
    GenericTimer,
    /// No counter on this target: [`read`] returns 0.
    None,
}

#[cfg(all(any(target_arch = "x86_64", target_arch = "x86"), not(miri)))]
mod imp {
    /// The counter read on this target.
    pub const SOURCE: super::TickSource = super::TickSource::Tsc;

    #[inline(always)]
    pub fn read() -> u64 {
        #[cfg(target_arch = "x86")]
        use core::arch::x86::_rdtsc;
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::_rdtsc;
        // SAFETY: `rdtsc` reads a register; it has no memory effects and exists
        // on every x86 CPU that Rust targets (Pentium and later).
        unsafe { _rdtsc() }
    }

    pub fn frequency_hz() -> Option<u64> {
        // The TSC's frequency is not architecturally readable everywhere
        // (CPUID leaf 0x15 is often zero); callers calibrate against a clock.
        None
    }
}

#[cfg(all(target_arch = "aarch64", not(miri)))]
mod imp {
    /// The counter read on this target.
    pub const SOURCE: super::TickSource = super::TickSource::GenericTimer;

    #[inline(always)]
    pub fn read() -> u64 {
        let ticks: u64;
        // SAFETY: reading `cntvct_el0` has no side effects; EL0 access is
        // enabled by every OS Rust targets on aarch64 and by firmware that
        // runs at EL1 or above.
        unsafe {
            core::arch::asm!("mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags));
        }
        ticks
    }

    pub fn frequency_hz() -> Option<u64> {
        let hz: u64;
        // SAFETY: as above, `cntfrq_el0` is a read-only register.
        unsafe {
            core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack, preserves_flags));
        }
        (hz != 0).then_some(hz)
    }
}

#[cfg(any(
    miri,
    not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))
))]
mod imp {
    /// The counter read on this target.
    pub const SOURCE: super::TickSource = super::TickSource::None;

    #[inline(always)]
    pub fn read() -> u64 {
        0
    }

    pub fn frequency_hz() -> Option<u64> {
        None
    }
}

/// The counter [`read`] uses on this target.
pub const SOURCE: TickSource = imp::SOURCE;

/// Whether this target has a counter; when `false`, [`read`] returns 0.
pub const AVAILABLE: bool = !matches!(SOURCE, TickSource::None);

/// Reads the tick counter (see the module documentation for what a tick is).
///
/// Costs about 20 to 40 cycles on x86_64. Returns 0 where [`AVAILABLE`] is
/// `false`.
#[inline(always)]
pub fn read() -> u64 {
    imp::read()
}

/// The counter's frequency in ticks per second, where the hardware states it
/// (aarch64's `cntfrq_el0`). `None` on x86, whose timestamp counter must be
/// calibrated against a clock, and where there is no counter.
pub fn frequency_hz() -> Option<u64> {
    imp::frequency_hz()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_is_monotonic_where_available() {
        let a = read();
        let b = read();
        if AVAILABLE {
            assert!(b >= a, "tick counter went backwards: {a} then {b}");
        } else {
            assert_eq!((a, b), (0, 0));
        }
    }

    #[test]
    fn source_matches_availability() {
        assert_eq!(AVAILABLE, SOURCE != TickSource::None);
    }
}
