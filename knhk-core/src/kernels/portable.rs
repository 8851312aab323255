//! The kernels in portable Rust, shaped so that LLVM vectorises them:
//! fixed-size chunks, no early exit inside a chunk, and accumulators as
//! narrow as the data allows.
//!
//! Every function is `#[inline(always)]`: the x86 layer compiles them again
//! inside `#[target_feature(enable = "avx2")]` functions, where the same
//! code becomes AVX2 code. On targets without SIMD (thumbv7em, kernels) it
//! is plain unrolled scalar code.

use super::exact::U256;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// An element type the counting kernels accept: `u8`, `u16`, `u32`, `u64`.
pub trait Lane: Copy + Eq + sealed::Sealed {
    /// How many elements can be counted in the element's own width before
    /// the count could overflow it.
    #[doc(hidden)]
    const BLOCK: usize;
    #[doc(hidden)]
    const ZERO: Self;
    #[doc(hidden)]
    fn one_if(b: bool) -> Self;
    #[doc(hidden)]
    fn wrapping_add(self, other: Self) -> Self;
    #[doc(hidden)]
    fn to_usize(self) -> usize;
}

macro_rules! lane {
    ($($t:ty),*) => {$(
        impl Lane for $t {
            const BLOCK: usize = if (<$t>::MAX as u128) < usize::MAX as u128 {
                <$t>::MAX as usize
            } else {
                usize::MAX
            };
            const ZERO: Self = 0;
            #[inline(always)]
            fn one_if(b: bool) -> Self {
                b as $t
            }
            #[inline(always)]
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            #[inline(always)]
            fn to_usize(self) -> usize {
                self as usize
            }
        }
    )*};
}

lane!(u8, u16, u32, u64);

/// Elements per chunk for `any` and the bitmask of `filter`.
pub(crate) const CHUNK: usize = 64;

#[inline(always)]
pub(crate) fn count<T: Lane>(xs: &[T], v: T) -> usize {
    let mut total = 0_usize;
    for block in xs.chunks(T::BLOCK) {
        // Counted in T's width: 32 u8 or 8 u32 lanes per AVX2 register.
        let mut acc = T::ZERO;
        for &x in block {
            acc = acc.wrapping_add(T::one_if(x == v));
        }
        total += acc.to_usize();
    }
    total
}

/// [`count`] for short slices: with AVX-512 a compare gives a mask
/// register whose population count is added up, so there is no lane
/// accumulator to reduce at the end (which is most of the time of a short
/// count).
#[inline(always)]
// Only the x86 dispatch layer picks it (and the tests).
#[cfg_attr(not(knhk_dispatch), allow(dead_code))]
pub(crate) fn count_short<T: Lane>(xs: &[T], v: T) -> usize {
    xs.iter().filter(|&&x| x == v).count()
}

#[inline(always)]
pub(crate) fn any<T: Lane>(xs: &[T], v: T) -> bool {
    #[inline(always)]
    fn seen<T: Lane, const N: usize>(chunk: &[T; N], v: T) -> bool {
        chunk.iter().fold(false, |seen, &x| seen | (x == v))
    }
    let (chunks, rest) = xs.as_chunks::<CHUNK>();
    for chunk in chunks {
        // The whole chunk is compared (no early exit inside), so the
        // comparisons vectorise; one branch per chunk.
        if seen(chunk, v) {
            return true;
        }
    }
    // The rest (fewer than 64) in chunks of 16, and what is left after
    // them as one more chunk of 16 that overlaps the one before: no scalar
    // loop past 16 values, and at most 15 values compared twice. (The whole
    // tail as an overlapping chunk of 64 compared 28 values twice at 100
    // `u32`s, where the AVX2 tier of a Zen 4 took 1.04-1.22x the time of
    // the native `contains` in the report; now 0.70-0.78x. From 1,000
    // values up the two tails measured the same.)
    let (small, left) = rest.as_chunks::<TAIL>();
    if small.iter().any(|chunk| seen(chunk, v)) {
        return true;
    }
    if left.is_empty() {
        return false;
    }
    match xs.as_rchunks::<TAIL>() {
        (_, [.., last]) => seen(last, v),
        _ => xs.iter().fold(false, |seen, &x| seen | (x == v)),
    }
}

/// Elements per chunk of `any`'s tail.
const TAIL: usize = 16;

/// Bit `i` set where `chunk[i] == v`.
#[inline(always)]
pub(crate) fn match_mask<T: Lane>(chunk: &[T; CHUNK], v: T) -> u64 {
    let mut mask = 0_u64;
    for (i, &x) in chunk.iter().enumerate() {
        mask |= u64::from(x == v) << i;
    }
    mask
}

/// Calls `emit` with each index of `xs` equal to `v`, ascending.
#[inline(always)]
pub(crate) fn for_each_match<T: Lane>(xs: &[T], v: T, mut emit: impl FnMut(usize)) {
    let (chunks, rest) = xs.as_chunks::<CHUNK>();
    for (c, chunk) in chunks.iter().enumerate() {
        let mut mask = match_mask(chunk, v);
        while mask != 0 {
            emit(c * CHUNK + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    let base = chunks.len() * CHUNK;
    for (i, &x) in rest.iter().enumerate() {
        if x == v {
            emit(base + i);
        }
    }
}

/// Writes the matching indices into `out` (as many as fit) and returns
/// how many there are in all.
#[inline(always)]
pub(crate) fn filter_into<T: Lane>(xs: &[T], v: T, out: &mut [usize]) -> usize {
    let mut found = 0;
    for_each_match(xs, v, |i| {
        if let Some(slot) = out.get_mut(found) {
            *slot = i;
        }
        found += 1;
    });
    found
}

/// Elements per block of the `u64` sums: each 32-bit half of an element is
/// below 2^32, so 2^32 of them sum below 2^64.
pub(crate) const SUM_BLOCK: usize = if usize::BITS > 32 {
    1 << 32
} else {
    usize::MAX
};

#[inline(always)]
pub(crate) fn sum_u64(xs: &[u64]) -> u128 {
    let mut total = 0_u128;
    for block in xs.chunks(SUM_BLOCK) {
        // The wrapping sum gives Σx mod 2^64; the sum of high halves pins
        // down the rest: Σx lies in [H·2^32, H·2^32 + n·2^32), a range
        // narrower than 2^64 because a block has fewer than 2^32 elements.
        // Two adds and a shift per element, all plain u64 lanes.
        let (wrapped, high) = sums_onto((0, 0), block);
        total += exact_sum(wrapped, high);
    }
    total
}

/// `(wrapped, high)` with the values of `xs` added: the wrapping sum and
/// the sum of high halves (`x >> 32`) that [`exact_sum`] combines. For at
/// most [`SUM_BLOCK`] values in all (so the second cannot wrap).
#[inline(always)]
pub(crate) fn sums_onto((mut wrapped, mut high): (u64, u64), xs: &[u64]) -> (u64, u64) {
    for &x in xs {
        wrapped = wrapped.wrapping_add(x);
        high = high.wrapping_add(x >> 32);
    }
    (wrapped, high)
}

/// A block's exact sum from its wrapping sum and the sum of its elements'
/// high halves (`x >> 32`), for blocks of at most [`SUM_BLOCK`] elements:
/// the sum lies in `[high·2^32, high·2^32 + n·2^32)`, a range no wider than
/// 2^64, so the wrapping sum picks out the one value in it.
#[inline(always)]
pub(crate) fn exact_sum(wrapped: u64, high: u64) -> u128 {
    let floor = u128::from(high) << 32;
    floor + u128::from(wrapped.wrapping_sub(floor as u64))
}

/// Lanes of the portable `u64` max/min kernels (two 256-bit registers).
/// More lanes make LLVM spill them; x86's AVX2 variant is hand-written.
const MINMAX_LANES: usize = 8;

/// `u64` order as `i64` order: flipping the top bit once per element lets
/// the lanes use a signed compare (x86 has no unsigned 64-bit one before
/// AVX-512), three operations per vector instead of four.
#[inline(always)]
fn flip(x: u64) -> i64 {
    (x ^ (1 << 63)) as i64
}

#[inline(always)]
fn unflip(x: i64) -> u64 {
    (x as u64) ^ (1 << 63)
}

/// The largest (`MAX`) or smallest `u64`, in [`MINMAX_LANES`] flipped lanes.
#[inline(always)]
fn extreme_u64<const MAX: bool>(xs: &[u64]) -> Option<u64> {
    let pick = |a: i64, b: i64| if MAX { a.max(b) } else { a.min(b) };
    let first = flip(*xs.first()?);
    let (chunks, rest) = xs.as_chunks::<MINMAX_LANES>();
    let mut lanes = [first; MINMAX_LANES];
    for chunk in chunks {
        for i in 0..MINMAX_LANES {
            lanes[i] = pick(lanes[i], flip(chunk[i]));
        }
    }
    let m = lanes.into_iter().fold(first, pick);
    Some(unflip(rest.iter().fold(m, |m, &x| pick(m, flip(x)))))
}

#[inline(always)]
pub(crate) fn max_u64(xs: &[u64]) -> Option<u64> {
    extreme_u64::<true>(xs)
}

#[inline(always)]
pub(crate) fn min_u64(xs: &[u64]) -> Option<u64> {
    extreme_u64::<false>(xs)
}

/// Σx (at most 128 bits) and Σx² (at most 192 bits) of a slice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Moments {
    pub(crate) sum: u128,
    pub(crate) sum_sq: U256,
}

/// Σx and Σx², exactly, in a form that vectorises: with `x = h·2^32 + l`,
/// `x² = h²·2^64 + 2hl·2^32 + l²`. Each 32×32-bit product, like `x`
/// itself, is summed as in [`sum_u64`]: a wrapping sum plus a sum of high
/// halves, three plain u64 lane operations, made exact by [`exact_sum`].
#[inline(always)]
pub(crate) fn moments(xs: &[u64]) -> Moments {
    let mut m = Moments::default();
    for block in xs.chunks(SUM_BLOCK) {
        // Pairs of (wrapping sum, sum of high halves) of x, l², hl, h².
        let mut acc = [0_u64; 8];
        for &x in block {
            let (h, l) = (x >> 32, x & 0xFFFF_FFFF);
            let (ll, hl, hh) = (l * l, h * l, h * h);
            acc[0] = acc[0].wrapping_add(x);
            acc[1] = acc[1].wrapping_add(h);
            acc[2] = acc[2].wrapping_add(ll);
            acc[3] = acc[3].wrapping_add(ll >> 32);
            acc[4] = acc[4].wrapping_add(hl);
            acc[5] = acc[5].wrapping_add(hl >> 32);
            acc[6] = acc[6].wrapping_add(hh);
            acc[7] = acc[7].wrapping_add(hh >> 32);
        }
        let exact = |i: usize| U256::from_u128(exact_sum(acc[i], acc[i + 1]));
        m.sum += exact_sum(acc[0], acc[1]);
        // Σl² + 2·Σhl·2^32 + Σh²·2^64.
        let sum_sq = exact(2).add(exact(4).shl(33)).add(exact(6).shl(64));
        m.sum_sq = m.sum_sq.add(sum_sq);
    }
    m
}
