//! Slice kernels: counting, searching and filtering pattern ids, and exact
//! statistics over `u64` batches. Fast on every target without
//! `-C target-cpu=native`.
//!
//! The design document relied on `-C target-cpu=native`, which builds
//! binaries that crash on older CPUs and is not how libraries ship. Here
//! the code is compiled for the target's baseline and picks the best
//! instruction set at run time:
//!
//! | target | what runs |
//! |---|---|
//! | x86_64 | the portable code as SSE2; AVX-512 (F, BW, VL, DQ), AVX2, or SSE4.2 for `u64` max/min, when CPUID and XCR0 report it, detected once and cached, in `no_std` too; [`cap_instruction_set`] lowers the tier |
//! | aarch64 | the portable code, which LLVM vectorises with NEON (always present) |
//! | thumbv7em, riscv32, other targets without SIMD | the portable code as unrolled scalar code |
//! | `x86_64-unknown-none` (kernels), or feature `no-simd` | the portable code only, no run-time dispatch |
//!
//! **Kernel contexts.** A kernel may not touch vector registers it does not
//! save. The `x86_64-unknown-none` target disables SSE, so the dispatch
//! layer is not built and the portable code compiles to scalar
//! instructions. On a target that has SSE enabled, the `no-simd` feature
//! turns the run-time dispatch off; to keep LLVM from auto-vectorising the
//! portable code as well, also build with `-C target-feature=-sse,-sse2`
//! (or use `x86_64-unknown-none`).
//!
//! ```
//! use knhk_core::kernels;
//!
//! let patterns = [1_u32, 2, 3, 2, 4, 2, 5];
//! assert_eq!(kernels::count(&patterns, 2), 3);
//! assert!(kernels::any(&patterns, 5));
//!
//! let mut found = [0_usize; 8];
//! let n = kernels::filter_into(&patterns, 2, &mut found);
//! assert_eq!(&found[..n], &[1, 3, 5]);
//!
//! let values = [2_u64 << 59, (2 << 59) + 2];
//! assert_eq!(kernels::sum_u64(&values), (2 << 60) + 2);
//! assert_eq!(kernels::variance_u64(&values), Some(1.0)); // exact
//! ```

mod exact;
mod portable;
pub(crate) mod tags;
#[cfg(knhk_dispatch)]
mod x86;

pub use portable::Lane;

use crate::PatternId;
use exact::U256;
use portable::CHUNK;

/// Calls the x86 variant for the level in use where the dispatch layer
/// exists, else the portable code.
macro_rules! dispatch {
    (avx512: $avx512:expr, avx2: $avx2:expr, $(sse42: $sse42:expr, baseline: $base:expr,)? portable: $portable:expr) => {{
        #[cfg(knhk_dispatch)]
        {
            match x86::level() {
                // SAFETY: `level()` is at most what the CPU reported (with
                // OS support): AVX-512 F, BW, VL and DQ here.
                x86::Level::Avx512 => return unsafe { $avx512 },
                // SAFETY: as above, AVX2.
                x86::Level::Avx2 => return unsafe { $avx2 },
                $(
                    // SAFETY: as above, SSE4.2.
                    x86::Level::Sse42 => return unsafe { $sse42 },
                    x86::Level::Baseline => return $base,
                )?
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        $portable
    }};
}

/// An instruction-set tier of the kernels, lowest first.
///
/// ```
/// use knhk_core::kernels::{self, InstructionSet};
///
/// // Wide vectors can lower the clock of some CPUs: a deployment can keep
/// // the kernels at AVX2 (the result is the same on every tier).
/// let before = kernels::instruction_set();
/// let now = kernels::cap_instruction_set(InstructionSet::Avx2);
/// assert!(now <= InstructionSet::Avx2);
/// assert_eq!(kernels::count(&[1_u32, 2, 1], 1), 2);
/// kernels::cap_instruction_set(InstructionSet::Avx512);
/// assert_eq!(kernels::instruction_set(), before);
/// assert_eq!("avx2".parse(), Ok(InstructionSet::Avx2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InstructionSet {
    /// The portable code, as the target's compiler vectorised it (the only
    /// tier off x86_64, in kernel builds and under Miri).
    Portable,
    /// x86_64's baseline, SSE2.
    Sse2,
    /// SSE4.2 (used by `u64` max and min).
    Sse42,
    /// AVX2.
    Avx2,
    /// AVX-512 F, BW, VL and DQ.
    Avx512,
}

impl InstructionSet {
    /// Every tier, lowest first.
    pub const ALL: [InstructionSet; 5] = [
        InstructionSet::Portable,
        InstructionSet::Sse2,
        InstructionSet::Sse42,
        InstructionSet::Avx2,
        InstructionSet::Avx512,
    ];

    /// The tier's name: `"portable"`, `"sse2"`, `"sse4.2"`, `"avx2"`,
    /// `"avx512"` (what `KNHK_SIMD` takes in knhk-std).
    pub const fn name(self) -> &'static str {
        match self {
            InstructionSet::Portable => "portable",
            InstructionSet::Sse2 => "sse2",
            InstructionSet::Sse42 => "sse4.2",
            InstructionSet::Avx2 => "avx2",
            InstructionSet::Avx512 => "avx512",
        }
    }
}

impl core::fmt::Display for InstructionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`InstructionSet`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownInstructionSet;

impl core::fmt::Display for UnknownInstructionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown instruction set: expected one of avx512, avx2, sse4.2, sse2, portable")
    }
}

impl core::error::Error for UnknownInstructionSet {}

impl core::str::FromStr for InstructionSet {
    type Err = UnknownInstructionSet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstructionSet::ALL
            .into_iter()
            .find(|set| set.name().eq_ignore_ascii_case(s.trim()))
            .ok_or(UnknownInstructionSet)
    }
}

/// The tier functions over the x86 dispatch layer, where the build has it
/// (`knhk_dispatch`, set by build.rs), and their portable stand-ins.
#[cfg(knhk_dispatch)]
mod tier {
    use super::{x86, InstructionSet};

    impl From<x86::Level> for InstructionSet {
        fn from(level: x86::Level) -> Self {
            match level {
                x86::Level::Portable => InstructionSet::Portable,
                x86::Level::Baseline => InstructionSet::Sse2,
                x86::Level::Sse42 => InstructionSet::Sse42,
                x86::Level::Avx2 => InstructionSet::Avx2,
                x86::Level::Avx512 => InstructionSet::Avx512,
            }
        }
    }

    impl From<InstructionSet> for x86::Level {
        fn from(set: InstructionSet) -> Self {
            match set {
                InstructionSet::Portable => x86::Level::Portable,
                InstructionSet::Sse2 => x86::Level::Baseline,
                InstructionSet::Sse42 => x86::Level::Sse42,
                InstructionSet::Avx2 => x86::Level::Avx2,
                InstructionSet::Avx512 => x86::Level::Avx512,
            }
        }
    }

    pub(super) fn in_use() -> InstructionSet {
        x86::level().into()
    }
    pub(super) fn detected() -> InstructionSet {
        x86::detected().into()
    }
    pub(super) fn capped(max: InstructionSet) -> InstructionSet {
        x86::cap(max.into()).into()
    }
}

#[cfg(not(knhk_dispatch))]
mod tier {
    use super::InstructionSet;

    pub(super) fn in_use() -> InstructionSet {
        InstructionSet::Portable
    }
    pub(super) fn detected() -> InstructionSet {
        InstructionSet::Portable
    }
    pub(super) fn capped(_: InstructionSet) -> InstructionSet {
        InstructionSet::Portable
    }
}

/// The tier the kernels use now: the best this CPU and its OS support
/// (CPUID and XCR0, detected once), or lower if capped with
/// [`cap_instruction_set`].
pub fn instruction_set() -> InstructionSet {
    tier::in_use()
}

/// The best tier this CPU and its OS support, whatever the cap.
pub fn detected_instruction_set() -> InstructionSet {
    tier::detected()
}

/// Lets the kernels use at most `max` from now on (all threads), for
/// deployments where wide vectors lower the clock, and for tests; returns
/// the tier now in use (lower than `max` where the CPU has less).
/// `cap_instruction_set(InstructionSet::Avx512)` lifts the cap. Every tier
/// computes the same results. Where there is no dispatch layer (off x86_64,
/// kernel builds, Miri) the kernels are always [`InstructionSet::Portable`].
pub fn cap_instruction_set(max: InstructionSet) -> InstructionSet {
    tier::capped(max)
}

/// The name of the tier the kernels use on this machine: `"avx512"`,
/// `"avx2"`, `"sse4.2"`, `"sse2"` on x86_64, or `"portable"` (the
/// portable code, as the target's compiler vectorised it).
pub fn active_instruction_set() -> &'static str {
    instruction_set().name()
}

/// How many elements of `xs` equal `v`. Any [`Lane`] type: `u8`, `u16`,
/// `u32`, `u64`; for [`PatternId`] slices count through [`pattern_numbers`].
///
/// ```
/// assert_eq!(knhk_core::kernels::count(b"workflow", b'o'), 2);
/// ```
#[inline]
pub fn count<T: Lane>(xs: &[T], v: T) -> usize {
    dispatch!(
        // A short slice costs less counted through mask registers (no
        // lane accumulator to reduce at the end); a long one, in lanes.
        avx512: if core::mem::size_of_val(xs) <= 1024 {
            x86::count_short_avx512(xs, v)
        } else {
            x86::count_avx512(xs, v)
        },
        avx2: x86::count_avx2(xs, v),
        portable: portable::count(xs, v)
    )
}

/// Whether any element of `xs` equals `v`.
#[inline]
pub fn any<T: Lane>(xs: &[T], v: T) -> bool {
    dispatch!(
        avx512: x86::any_avx512(xs, v),
        avx2: x86::any_avx2(xs, v),
        portable: portable::any(xs, v)
    )
}

/// Writes the indices of the elements equal to `v` into `out`, ascending,
/// as many as fit, and returns how many there are in all (so a result
/// larger than `out.len()` says the buffer was too small).
///
/// ```
/// let mut out = [0_usize; 2];
/// let total = knhk_core::kernels::filter_into(&[7_u16, 1, 7, 7], 7, &mut out);
/// assert_eq!((total, out), (3, [0, 2]));
/// ```
#[inline]
pub fn filter_into<T: Lane>(xs: &[T], v: T, out: &mut [usize]) -> usize {
    dispatch!(
        avx512: x86::filter_into_avx512(xs, v, out),
        avx2: x86::filter_into_avx2(xs, v, out),
        portable: portable::filter_into(xs, v, out)
    )
}

/// [`filter_into`] for a `heapless::Vec`: replaces the contents of `out`
/// with the indices of the elements equal to `v`, ascending.
///
/// `Ok(())` if they all fit. If there are more than `N`, `out` holds the
/// first `N` and the result is `Err` with how many there are in all (the
/// number [`filter_into`] returns), so the caller knows what size would
/// have held them. It never panics.
///
/// ```
/// use heapless::Vec;
/// use knhk_core::kernels;
///
/// let patterns = [7_u16, 1, 7, 7, 2];
/// let mut out = Vec::<usize, 4>::new();
/// assert_eq!(kernels::filter_into_vec(&patterns, 7, &mut out), Ok(()));
/// assert_eq!(out, [0, 2, 3]);
///
/// let mut small = Vec::<usize, 2>::new();
/// assert_eq!(kernels::filter_into_vec(&patterns, 7, &mut small), Err(3));
/// assert_eq!(small, [0, 2]);
/// ```
#[cfg(feature = "heapless")]
#[cfg_attr(docsrs, doc(cfg(feature = "heapless")))]
#[inline]
pub fn filter_into_vec<T: Lane, const N: usize>(
    xs: &[T],
    v: T,
    out: &mut heapless::Vec<usize, N>,
) -> Result<(), usize> {
    out.clear();
    let mut total = 0;
    for_each_match(xs, v, |i| {
        // Past the capacity the index is only counted.
        let _ = out.push(i);
        total += 1;
    });
    if total == out.len() {
        Ok(())
    } else {
        Err(total)
    }
}

/// Calls `emit` with the index of each element equal to `v`, ascending.
#[inline]
pub fn for_each_match<T: Lane>(xs: &[T], v: T, emit: impl FnMut(usize)) {
    dispatch!(
        avx512: x86::for_each_match_avx512(xs, v, emit),
        avx2: x86::for_each_match_avx2(xs, v, emit),
        portable: portable::for_each_match(xs, v, emit)
    )
}

/// The indices of the elements equal to `v`, ascending, as an iterator
/// (no buffer needed). It works 64 elements at a time.
///
/// ```
/// let idx: Vec<usize> = knhk_core::kernels::matches(&[3_u32, 9, 3], 3).collect();
/// assert_eq!(idx, [0, 2]);
/// ```
pub fn matches<T: Lane>(xs: &[T], v: T) -> Matches<'_, T> {
    let (chunks, rest) = xs.as_chunks::<CHUNK>();
    Matches {
        chunks,
        rest,
        v,
        next_chunk: 0,
        mask: 0,
        base: 0,
        rest_pos: 0,
    }
}

/// Iterator returned by [`matches()`].
#[derive(Clone, Debug)]
pub struct Matches<'a, T: Lane> {
    chunks: &'a [[T; CHUNK]],
    rest: &'a [T],
    v: T,
    next_chunk: usize,
    mask: u64,
    base: usize,
    rest_pos: usize,
}

impl<T: Lane> Iterator for Matches<'_, T> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.mask != 0 {
                let bit = self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                return Some(self.base + bit);
            }
            let Some(chunk) = self.chunks.get(self.next_chunk) else {
                break;
            };
            self.base = self.next_chunk * CHUNK;
            self.next_chunk += 1;
            self.mask = chunk_mask(chunk, self.v);
        }
        let tail_base = self.chunks.len() * CHUNK;
        while let Some(&x) = self.rest.get(self.rest_pos) {
            self.rest_pos += 1;
            if x == self.v {
                return Some(tail_base + self.rest_pos - 1);
            }
        }
        None
    }
}

#[inline]
fn chunk_mask<T: Lane>(chunk: &[T; CHUNK], v: T) -> u64 {
    dispatch!(
        avx512: x86::match_mask_avx512(chunk, v),
        avx2: x86::match_mask_avx2(chunk, v),
        portable: portable::match_mask(chunk, v)
    )
}

/// A `PatternId` slice as its `u32` numbers, for any kernel.
///
/// ```
/// use knhk_core::{kernels, PatternId};
/// let ids = [PatternId(2), PatternId(3), PatternId(2)];
/// assert_eq!(kernels::count(kernels::pattern_numbers(&ids), 2), 2);
/// ```
pub fn pattern_numbers(ids: &[PatternId]) -> &[u32] {
    // SAFETY: `PatternId` is `#[repr(transparent)]` over `u32`, so the slices
    // have the same layout, length and alignment.
    unsafe { core::slice::from_raw_parts(ids.as_ptr().cast::<u32>(), ids.len()) }
}

/// The exact sum; a `u128` cannot overflow for any slice.
#[inline]
pub fn sum_u64(values: &[u64]) -> u128 {
    dispatch!(
        avx512: x86::sum_u64_avx512(values),
        avx2: x86::sum_u64_avx2(values),
        portable: portable::sum_u64(values)
    )
}

/// The largest value, or `None` for an empty slice.
#[inline]
pub fn max_u64(values: &[u64]) -> Option<u64> {
    dispatch!(
        avx512: x86::max_u64_avx512(values),
        avx2: x86::max_u64_avx2(values),
        sse42: x86::max_u64_sse42(values),
        baseline: x86::max_u64_scalar(values),
        portable: portable::max_u64(values)
    )
}

/// The smallest value, or `None` for an empty slice.
#[inline]
pub fn min_u64(values: &[u64]) -> Option<u64> {
    dispatch!(
        avx512: x86::min_u64_avx512(values),
        avx2: x86::min_u64_avx2(values),
        sse42: x86::min_u64_sse42(values),
        baseline: x86::min_u64_scalar(values),
        portable: portable::min_u64(values)
    )
}

/// The mean, computed from the exact sum and rounded once; `None` for an
/// empty slice.
pub fn mean_u64(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sum = sum_u64(values);
    Some(exact::ratio_to_f64(
        U256::from_u128(sum),
        values.len() as u128,
    ))
}

fn moments(values: &[u64]) -> portable::Moments {
    dispatch!(
        avx512: x86::moments_avx512(values),
        avx2: x86::moments_avx2(values),
        portable: portable::moments(values)
    )
}

/// `n·Σx² − (Σx)²`, exactly.
fn spread(values: &[u64]) -> U256 {
    let m = moments(values);
    let n = values.len() as u64;
    // Non-negative by the Cauchy-Schwarz inequality.
    m.sum_sq.mul_u64(n).sub(U256::mul_u128(m.sum, m.sum))
}

/// The population variance `Σ(x − mean)² / n`, computed exactly in integers
/// and rounded once; `None` for an empty slice.
///
/// ```
/// let v = knhk_core::kernels::variance_u64(&[1 << 60, (1 << 60) + 2]);
/// assert_eq!(v, Some(1.0)); // a two-pass f64 computation gives 0 here
/// ```
pub fn variance_u64(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as u128;
    Some(exact::ratio_to_f64(spread(values), n * n))
}

/// The sample variance `Σ(x − mean)² / (n − 1)`, exact and rounded once;
/// `None` for fewer than two values.
pub fn sample_variance_u64(values: &[u64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as u128;
    Some(exact::ratio_to_f64(spread(values), n * (n - 1)))
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "heapless"))]
mod heapless_tests {
    use super::*;

    /// `filter_into_vec` agrees with `filter_into` for every fill level.
    fn agrees<const N: usize>(xs: &[u32], v: u32) {
        let mut all = [0_usize; 300];
        let total = filter_into(xs, v, &mut all);
        let mut out = heapless::Vec::<usize, N>::new();
        // Leftovers from an earlier call are replaced.
        out.extend(core::iter::repeat_n(usize::MAX, N));
        let result = filter_into_vec(xs, v, &mut out);
        assert_eq!(result, if total <= N { Ok(()) } else { Err(total) });
        assert_eq!(&out[..], &all[..total.min(N)]);
    }

    #[test]
    fn filter_into_vec_fills_then_reports_the_total() {
        let xs: Vec<u32> = (0..300_u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 5)
            .collect();
        for len in [0, 1, 7, 63, 64, 65, 130, 300] {
            for v in 0..6 {
                agrees::<0>(&xs[..len], v);
                agrees::<3>(&xs[..len], v);
                agrees::<64>(&xs[..len], v);
                agrees::<300>(&xs[..len], v);
            }
        }
    }

    #[test]
    fn filter_into_vec_too_small() {
        let mut out = heapless::Vec::<usize, 2>::new();
        assert_eq!(filter_into_vec(&[5_u8, 5, 1, 5], 5, &mut out), Err(3));
        assert_eq!(out, [0, 1]);
        assert_eq!(filter_into_vec(&[5_u8, 1], 5, &mut out), Ok(()));
        assert_eq!(out, [0]);
    }
}
