//! A hint to the CPU to start loading a cache line, so that lookups of a
//! batch overlap their memory latency instead of paying it one by one.
//!
//! Only a hint: on targets without a prefetch instruction reachable from
//! stable Rust, in kernel builds without SSE, and under Miri, it does
//! nothing, and lookups stay correct.

/// Starts loading the cache line at `addr` into every cache level: any
/// address at all (a prefetch never faults, and nothing is read through
/// the pointer), so a caller may aim at bytes it has not bounds-checked.
#[inline(always)]
pub(crate) fn addr(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` needs SSE, which the cfg above requires;
        // it reads no memory architecturally and never faults, whatever
        // the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(addr.cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri))))]
    let _ = addr;
}

/// Starts loading the cache line that holds `byte` into every cache level.
#[inline(always)]
pub(crate) fn line(byte: &u8) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // A prefetch is a hint: it reads no memory architecturally and
        // never faults (and `byte` is a valid reference anyway).
        // SAFETY: `_mm_prefetch` needs SSE, which the cfg above requires.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(core::ptr::from_ref(byte).cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri))))]
    let _ = byte;
}
