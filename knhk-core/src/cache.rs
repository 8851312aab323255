//! Cache-line alignment: [`CacheAligned`] and [`CachePadded`].
//!
//! Two threads writing to different variables that share a cache line make
//! the line bounce between their cores ("false sharing"). Each write then
//! costs a cross-core transfer instead of an L1 hit, which is why the
//! executor counters keep every counter on a line of its own.
//!
//! - [`CacheAligned<T>`] aligns `T` to 64 bytes: the line size of every
//!   mainstream x86_64 and ARM core. It is the design document's type, and
//!   enough when nothing else will be placed next to the value.
//! - [`CachePadded<T>`] pads and aligns to the distance that actually
//!   prevents false sharing on each architecture, which is larger than a line
//!   where the hardware prefetches lines in pairs. Use it for values that
//!   different threads write.

use core::fmt;
use core::ops::{Deref, DerefMut};

/// `T` aligned (and so padded) to 64 bytes.
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use knhk_core::cache::CacheAligned;
///
/// let counter = CacheAligned::new(AtomicU64::new(0));
/// counter.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), 1);
/// assert_eq!(core::mem::align_of_val(&counter), 64);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(C, align(64))]
pub struct CacheAligned<T> {
    value: T,
}

/// `T` padded and aligned so that no other value shares its cache lines or
/// the neighbour its hardware prefetches with them.
///
/// | architecture | bytes | why |
/// |---|---|---|
/// | x86_64 | 128 | Intel's L2 spatial prefetcher fetches lines in 128-byte aligned pairs (Intel Optimization Manual, "Spatial Prefetcher"); since Sandy Bridge, and on AMD Zen, a write to one line of a pair slows the other |
/// | aarch64 | 128 | Apple M-series cores have 128-byte lines; Cortex-A and Neoverse cores pair 64-byte lines like Intel's |
/// | powerpc64 | 128 | POWER7 to POWER10 have 128-byte lines |
/// | arm, mips, mips64 | 32 | Cortex-M and Cortex-A (32-bit) and MIPS cores have 32-byte lines |
/// | s390x | 256 | z/Architecture cores have 256-byte lines |
/// | everything else | 64 | the common line size (riscv64, x86, wasm, ...) |
///
/// The table follows crossbeam-utils' `CachePadded`, which measured these
/// on real hardware.
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use knhk_core::cache::CachePadded;
///
/// // Two counters written by two threads never share a line.
/// let pair = [CachePadded::new(AtomicU64::new(0)), CachePadded::new(AtomicU64::new(0))];
/// pair[1].fetch_add(1, Ordering::Relaxed);
/// assert!(core::mem::size_of_val(&pair[0]) >= 32);
/// assert_eq!(pair[1].load(Ordering::Relaxed), 1);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64"
    ),
    repr(C, align(128))
)]
#[cfg_attr(
    any(
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6"
    ),
    repr(C, align(32))
)]
#[cfg_attr(target_arch = "s390x", repr(C, align(256)))]
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64",
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6",
        target_arch = "s390x"
    )),
    repr(C, align(64))
)]
pub struct CachePadded<T> {
    value: T,
}

/// The alignment of [`CachePadded`] on this target, in bytes.
pub const PADDED_ALIGN: usize = core::mem::align_of::<CachePadded<u8>>();

/// The alignment of [`CacheAligned`], in bytes.
pub const ALIGNED_ALIGN: usize = 64;

macro_rules! wrapper_impls {
    ($name:ident) => {
        impl<T> $name<T> {
            /// Wraps `value`.
            pub const fn new(value: T) -> $name<T> {
                $name { value }
            }

            /// The wrapped value.
            pub fn into_inner(self) -> T {
                self.value
            }
        }

        impl<T> Deref for $name<T> {
            type Target = T;

            #[inline(always)]
            fn deref(&self) -> &T {
                &self.value
            }
        }

        impl<T> DerefMut for $name<T> {
            #[inline(always)]
            fn deref_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }

        impl<T> From<T> for $name<T> {
            fn from(value: T) -> Self {
                $name::new(value)
            }
        }

        impl<T: fmt::Debug> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("value", &self.value)
                    .finish()
            }
        }
    };
}

wrapper_impls!(CacheAligned);
wrapper_impls!(CachePadded);

// Layout, checked at compile time on every target.
const _: () = {
    use core::mem::{align_of, size_of};
    assert!(align_of::<CacheAligned<u8>>() == ALIGNED_ALIGN);
    assert!(size_of::<CacheAligned<u8>>() == ALIGNED_ALIGN);
    assert!(size_of::<CacheAligned<[u8; 65]>>() == 2 * ALIGNED_ALIGN);
    assert!(PADDED_ALIGN.is_power_of_two() && PADDED_ALIGN >= 32);
    assert!(size_of::<CachePadded<u8>>() == PADDED_ALIGN);
    assert!(size_of::<CachePadded<u64>>().is_multiple_of(PADDED_ALIGN));
    #[cfg(target_arch = "x86_64")]
    assert!(PADDED_ALIGN == 128);
    #[cfg(target_arch = "aarch64")]
    assert!(PADDED_ALIGN == 128);
    #[cfg(target_arch = "arm")]
    assert!(PADDED_ALIGN == 32);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_in_an_array_are_a_full_pad_apart() {
        let xs = [
            CachePadded::new(0_u64),
            CachePadded::new(1),
            CachePadded::new(2),
        ];
        let a = &*xs[0] as *const u64 as usize;
        let b = &*xs[1] as *const u64 as usize;
        assert_eq!(b - a, PADDED_ALIGN);
        assert_eq!(a % PADDED_ALIGN, 0);
    }

    #[test]
    fn wrappers_forward_and_unwrap() {
        let mut v = CacheAligned::from(vec![1, 2]);
        v.push(3);
        assert_eq!(v.len(), 3);
        assert_eq!(v.into_inner(), vec![1, 2, 3]);
        let p = CachePadded::<u32>::default();
        assert_eq!(*p, 0);
        assert_eq!(format!("{p:?}"), "CachePadded { value: 0 }");
    }
}
