//! x86_64: choosing an instruction set at run time.
//!
//! The crate is compiled for the x86_64 baseline (SSE2), which every x86_64
//! CPU has. At the first kernel call, CPUID (and XGETBV, to check that the
//! operating system saves the wider registers) says whether this CPU also
//! has SSE4.2, AVX2 and AVX-512; the answer is cached in one byte, so each
//! later call pays a relaxed load and a predictable branch. This works in
//! `no_std`: `core::arch` has CPUID, where `is_x86_feature_detected!` needs
//! std.
//!
//! Most variants are the portable kernel compiled inside a
//! `#[target_feature]` function, so LLVM vectorises the same source for the
//! wider registers. The `u64` max and min, the exact sums and the AVX-512
//! `any` are written with intrinsics, where the vectorised portable loop was
//! measurably slower (each says why); there is no assembly to keep in step.
//!
//! Only built when the target has SSE2 and the `no-simd` feature is off:
//! kernel targets such as `x86_64-unknown-none` disable SSE, and then the
//! kernels are the portable code, compiled to plain scalar instructions.

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::portable::{self, Lane, Moments};

/// The instruction sets the kernels can use on this CPU, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// The portable code only (a cap set by the user; never detected).
    Portable = 1,
    /// SSE2 only.
    Baseline = 2,
    /// SSE4.2: adds the 64-bit compare that `u64` max/min need.
    Sse42 = 3,
    /// AVX2, with the OS saving the 256-bit registers.
    Avx2 = 4,
    /// AVX-512 F, BW, VL and DQ, with the OS saving the opmask and ZMM
    /// state: 512-bit vectors, mask registers, unsigned 64-bit compares.
    Avx512 = 5,
}

impl Level {
    fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            5 => Level::Avx512,
            4 => Level::Avx2,
            3 => Level::Sse42,
            2 => Level::Baseline,
            1 => Level::Portable,
            _ => return None,
        })
    }
}

/// The level in use: what the CPU has, capped by [`cap`]; 0 until the
/// first kernel call detects it.
static LEVEL: AtomicU8 = AtomicU8::new(0);
/// What the CPU has; 0 until detected.
static DETECTED: AtomicU8 = AtomicU8::new(0);
/// The highest level the user allows.
static CAP: AtomicU8 = AtomicU8::new(Level::Avx512 as u8);

/// The level in use, detected once: one relaxed load and a predictable
/// branch per kernel call.
#[inline(always)]
pub(crate) fn level() -> Level {
    match Level::from_u8(LEVEL.load(Relaxed)) {
        Some(level) => level,
        None => first_level(),
    }
}

#[cold]
#[inline(never)]
fn first_level() -> Level {
    let wanted = detected().min(Level::from_u8(CAP.load(Relaxed)).unwrap_or(Level::Avx512));
    // Only fills in an undetected level: a `cap` that ran meanwhile has
    // already stored its (lower) level, and it stands.
    match LEVEL.compare_exchange(0, wanted as u8, Relaxed, Relaxed) {
        Ok(_) => wanted,
        Err(now) => Level::from_u8(now).unwrap_or(wanted),
    }
}

/// What this CPU (and its OS) supports, detected once.
pub(crate) fn detected() -> Level {
    if let Some(level) = Level::from_u8(DETECTED.load(Relaxed)) {
        return level;
    }
    let level = cpu_level();
    DETECTED.store(level as u8, Relaxed);
    level
}

/// Allows the kernels at most `max` from now on; returns the level now in
/// use (what the CPU has, if that is lower).
pub(crate) fn cap(max: Level) -> Level {
    CAP.store(max as u8, Relaxed);
    let level = detected().min(max);
    LEVEL.store(level as u8, Relaxed);
    level
}

fn cpu_level() -> Level {
    use core::arch::x86_64::{__cpuid, __cpuid_count};

    let max_leaf = __cpuid(0).eax;
    let leaf1 = __cpuid(1);
    let sse42 = leaf1.ecx & (1 << 20) != 0;
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    let leaf7 = if max_leaf >= 7 {
        __cpuid_count(7, 0).ebx
    } else {
        0
    };
    let avx2 = leaf7 & (1 << 5) != 0;
    // AVX512F (16), AVX512DQ (17), AVX512BW (30), AVX512VL (31).
    let avx512_bits = (1 << 16) | (1 << 17) | (1 << 30) | (1 << 31);
    let avx512 = leaf7 & avx512_bits == avx512_bits;
    // SAFETY: XGETBV exists when CPUID reports OSXSAVE, checked first.
    let xcr0 = if osxsave { unsafe { xcr0() } } else { 0 };
    // XCR0 bits 1 and 2: the OS saves XMM and YMM state; 5, 6 and 7: the
    // opmask registers, the upper halves of ZMM0-15, and ZMM16-31.
    let ymm_saved = avx && xcr0 & 0b110 == 0b110;
    let zmm_saved = ymm_saved && xcr0 & 0b1110_0110 == 0b1110_0110;
    if avx512 && avx2 && zmm_saved {
        Level::Avx512
    } else if avx2 && ymm_saved {
        Level::Avx2
    } else if sse42 {
        Level::Sse42
    } else {
        Level::Baseline
    }
}

/// Reads XCR0.
///
/// # Safety
/// The CPU must support XSAVE (CPUID.1:ECX.OSXSAVE).
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked that the CPU supports XSAVE.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

macro_rules! variants {
    ($feature:literal: $($name:ident<$($g:ident: $b:path),*>($($arg:ident: $ty:ty),*) -> $ret:ty = $body:path;)*) => {$(
        #[target_feature(enable = $feature)]
        pub(crate) fn $name<$($g: $b),*>($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
    )*};
}

variants! { "avx2":
    count_avx2<T: Lane>(xs: &[T], v: T) -> usize = portable::count;
    any_avx2<T: Lane>(xs: &[T], v: T) -> bool = portable::any;
    filter_into_avx2<T: Lane>(xs: &[T], v: T, out: &mut [usize]) -> usize = portable::filter_into;
    match_mask_avx2<T: Lane>(chunk: &[T; portable::CHUNK], v: T) -> u64 = portable::match_mask;
    moments_avx2<>(xs: &[u64]) -> Moments = portable::moments;
}

variants! { "avx512f,avx512bw,avx512vl,avx512dq,avx2,bmi1,bmi2,popcnt":
    count_avx512<T: Lane>(xs: &[T], v: T) -> usize = portable::count;
    count_short_avx512<T: Lane>(xs: &[T], v: T) -> usize = portable::count_short;
    filter_into_avx512<T: Lane>(xs: &[T], v: T, out: &mut [usize]) -> usize = portable::filter_into;
    match_mask_avx512<T: Lane>(chunk: &[T; portable::CHUNK], v: T) -> u64 = portable::match_mask;
    moments_avx512<>(xs: &[u64]) -> Moments = portable::moments;
}

variants! { "sse4.2":
    max_u64_sse42<>(xs: &[u64]) -> Option<u64> = portable::max_u64;
    min_u64_sse42<>(xs: &[u64]) -> Option<u64> = portable::min_u64;
}

/// Matching indices through a closure, in AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn for_each_match_avx2<T: Lane, F: FnMut(usize)>(xs: &[T], v: T, emit: F) {
    portable::for_each_match(xs, v, emit)
}

/// Matching indices through a closure, in AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,bmi1,bmi2,popcnt")]
pub(crate) fn for_each_match_avx512<T: Lane, F: FnMut(usize)>(xs: &[T], v: T, emit: F) {
    portable::for_each_match(xs, v, emit)
}

/// A slice split for 64-byte-aligned vector loops of `L` lanes: the
/// values before the first 64-byte boundary (fewer than `L`), whole
/// aligned blocks of four vectors, aligned vectors, and the last values
/// (fewer than `L`).
///
/// The vector loops below read their blocks at 64-byte boundaries. A
/// 64-byte load that starts anywhere else touches two cache lines, and the
/// load ports pay for both: a `Vec<u64>` from the allocator is 16-byte
/// aligned, so a plain loop over it splits every vector, and on data in L1
/// the aligned `u64` max reads 1.4x as fast (AMD Zen 4, 1,000 values).
/// The AVX-512 loops take the head and the tail in one masked load each,
/// so a short slice pays no scalar loop; AVX2 has no cheap masked load,
/// and its exact sum adds them in scalar code.
///
/// Slices longer than [`ALIGN_AT_MOST`] bytes are read from where they
/// start: they stream from memory, and there a load that straddles two
/// lines asks for the second one early, which the aligned loop does not (on
/// Zen 4 the aligned max over 128 MB took 1.07x the time of the same loop 16
/// bytes off; software prefetches did not close the gap).
struct Aligned<'a, T, const L: usize> {
    head: &'a [T],
    blocks: &'a [[[T; L]; 4]],
    vectors: &'a [[T; L]],
    tail: &'a [T],
}

/// The longest slice [`Aligned`] aligns, in bytes: 32 MiB, more than the
/// last-level cache a core of today's servers gets.
const ALIGN_AT_MOST: usize = 32 << 20;

impl<'a, T, const L: usize> Aligned<'a, T, L> {
    #[inline(always)]
    fn new(xs: &'a [T]) -> Aligned<'a, T, L> {
        // The head is fewer than `L` values: a slice of `T` starts at a
        // multiple of its size, so 64 bytes on is at most `L - 1` values
        // away. (Where `align_offset` cannot say, `usize::MAX`, the cap
        // leaves the body unaligned: correct, only slower.)
        let skip = if core::mem::size_of_val(xs) <= ALIGN_AT_MOST {
            xs.as_ptr().align_offset(64).min(xs.len()).min(L - 1)
        } else {
            0
        };
        let (head, body) = xs.split_at(skip);
        let (vectors, tail) = body.as_chunks::<L>();
        let (blocks, vectors) = vectors.as_chunks::<4>();
        Aligned {
            head,
            blocks,
            vectors,
            tail,
        }
    }
}

/// Up to 8 values of `part` in a vector, `fill` in the lanes past its end.
#[target_feature(enable = "avx512f")]
#[inline]
fn masked_u64(part: &[u64], fill: core::arch::x86_64::__m512i) -> core::arch::x86_64::__m512i {
    let mask = (0xFF_u16 >> (8 - part.len().min(8))) as u8;
    // SAFETY: the mask selects the first `min(len, 8)` lanes, all inside
    // `part`; a masked load reads nothing (and faults on nothing) in the
    // other lanes, which keep `fill`.
    unsafe { core::arch::x86_64::_mm512_mask_loadu_epi64(fill, mask, part.as_ptr().cast::<i64>()) }
}

/// Eight values as a vector.
#[target_feature(enable = "avx512f")]
#[inline]
fn vector_u64(v: &[u64; 8]) -> core::arch::x86_64::__m512i {
    // SAFETY: `v` is 8 values, 64 bytes; `loadu` needs no alignment.
    unsafe { core::arch::x86_64::_mm512_loadu_si512(v.as_ptr().cast()) }
}

/// `any` in AVX-512, for every lane type: compares into mask registers,
/// one branch per block of four vectors, the blocks read at 64-byte
/// boundaries ([`Aligned`]) and the head and tail as one masked load each.
/// LLVM's vectorised portable loop took an overlapping 64-element chunk
/// for the tail and read the slice from wherever it started: this one
/// takes 0.6-0.75x the time of the native build of `contains` from 1,000
/// values up (AMD Zen 4, seventh session; 0.71-0.89x in the ninth's full
/// runs, the host slower), against 0.82-0.99x.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,bmi1,bmi2,popcnt")]
pub(crate) fn any_avx512<T: Lane>(xs: &[T], v: T) -> bool {
    // The value's bits (`to_usize` is lossless on x86_64, whose usize is 64
    // bits wide).
    let bits = v.to_usize() as u64;
    match core::mem::size_of::<T>() {
        1 => any_u8_avx512(lanes_as::<T, u8>(xs), bits as u8),
        2 => any_u16_avx512(lanes_as::<T, u16>(xs), bits as u16),
        4 => any_u32_avx512(lanes_as::<T, u32>(xs), bits as u32),
        _ => any_u64_avx512(lanes_as::<T, u64>(xs), bits),
    }
}

/// A slice of one lane type as the lane type of the same size.
#[inline(always)]
fn lanes_as<T: Lane, U: Lane>(xs: &[T]) -> &[U] {
    assert_eq!(core::mem::size_of::<T>(), core::mem::size_of::<U>());
    // SAFETY: `Lane` is sealed to u8, u16, u32 and u64, one type of each
    // size, so the sizes being equal (asserted; a constant after
    // monomorphisation) means `T` and `U` are the same type.
    unsafe { core::slice::from_raw_parts(xs.as_ptr().cast::<U>(), xs.len()) }
}

macro_rules! any_avx512_of {
    ($name:ident, $t:ty, $lanes:literal, $mask:ty, $set1:ident, $eq:ident, $masked_eq:ident, $load:ident) => {
        /// `any` over
        #[doc = stringify!($t)]
        /// lanes; see [`any_avx512`].
        #[target_feature(enable = "avx512f,avx512bw")]
        fn $name(xs: &[$t], v: $t) -> bool {
            use core::arch::x86_64::{_mm512_loadu_si512, $eq, $load, $masked_eq, $set1};

            let needle = $set1(v as _);
            let parts = Aligned::<$t, $lanes>::new(xs);
            // The head and the tail: a masked load reads (and faults on)
            // only the lanes its mask selects, and a masked compare
            // reports only those.
            let masked = |part: &[$t]| {
                // Fewer than `$lanes` values ([`Aligned`]), so the shift
                // stays inside the mask.
                let mask = ((1 as $mask) << part.len()).wrapping_sub(1);
                // SAFETY: the mask selects the first `part.len()` lanes,
                // all inside `part`.
                let x = unsafe { $load(mask, part.as_ptr().cast()) };
                $masked_eq(mask, x, needle) != 0
            };
            let vector = |v: &[$t; $lanes]| {
                // SAFETY: `v` is 64 bytes; `loadu` needs no alignment.
                let x = unsafe { _mm512_loadu_si512(v.as_ptr().cast()) };
                $eq(x, needle)
            };
            if masked(parts.head) {
                return true;
            }
            for block in parts.blocks {
                if vector(&block[0]) | vector(&block[1]) | vector(&block[2]) | vector(&block[3])
                    != 0
                {
                    return true;
                }
            }
            let seen = parts.vectors.iter().fold(0, |seen, v| seen | vector(v));
            seen != 0 || masked(parts.tail)
        }
    };
}

any_avx512_of!(
    any_u8_avx512,
    u8,
    64,
    u64,
    _mm512_set1_epi8,
    _mm512_cmpeq_epi8_mask,
    _mm512_mask_cmpeq_epi8_mask,
    _mm512_maskz_loadu_epi8
);
any_avx512_of!(
    any_u16_avx512,
    u16,
    32,
    u32,
    _mm512_set1_epi16,
    _mm512_cmpeq_epi16_mask,
    _mm512_mask_cmpeq_epi16_mask,
    _mm512_maskz_loadu_epi16
);
any_avx512_of!(
    any_u32_avx512,
    u32,
    16,
    u16,
    _mm512_set1_epi32,
    _mm512_cmpeq_epi32_mask,
    _mm512_mask_cmpeq_epi32_mask,
    _mm512_maskz_loadu_epi32
);
any_avx512_of!(
    any_u64_avx512,
    u64,
    8,
    u8,
    _mm512_set1_epi64,
    _mm512_cmpeq_epi64_mask,
    _mm512_mask_cmpeq_epi64_mask,
    _mm512_maskz_loadu_epi64
);

/// `u64` max or min in AVX-512, with its native unsigned 64-bit max/min
/// (`vpmaxuq`/`vpminuq`): no sign flip, one instruction per 8 values,
/// four independent accumulators so the loop is not bound by their
/// latency, and every block read at a 64-byte boundary ([`Aligned`]).
#[target_feature(enable = "avx512f")]
fn extreme_u64_avx512<const MAX: bool>(xs: &[u64]) -> Option<u64> {
    use core::arch::x86_64::{
        _mm512_max_epu64, _mm512_min_epu64, _mm512_reduce_max_epu64, _mm512_reduce_min_epu64,
        _mm512_set1_epi64,
    };

    let first = *xs.first()?;
    let combine = |a, b| {
        if MAX {
            _mm512_max_epu64(a, b)
        } else {
            _mm512_min_epu64(a, b)
        }
    };
    // The lanes a masked load leaves alone hold the first value, which
    // changes no max or min.
    let start = _mm512_set1_epi64(first as i64);
    let parts = Aligned::<u64, 8>::new(xs);
    let mut acc = [masked_u64(parts.head, start), start, start, start];
    for block in parts.blocks {
        for (lane, v) in acc.iter_mut().zip(block) {
            *lane = combine(*lane, vector_u64(v));
        }
    }
    for (lane, v) in acc.iter_mut().zip(parts.vectors) {
        *lane = combine(*lane, vector_u64(v));
    }
    acc[3] = combine(acc[3], masked_u64(parts.tail, start));
    let all = combine(combine(acc[0], acc[1]), combine(acc[2], acc[3]));
    Some(if MAX {
        _mm512_reduce_max_epu64(all)
    } else {
        _mm512_reduce_min_epu64(all)
    })
}

/// The exact `u64` sum in AVX-512: the portable kernel's two sums (the
/// wrapping sum, and the sum of the values' high halves that pins the
/// carries down; see [`portable::exact_sum`]), with four accumulators of
/// each and every block read at a 64-byte boundary ([`Aligned`]).
///
/// Written by hand rather than vectorised from the portable loop: LLVM
/// reads the slice from wherever it starts, so on a 16-byte-aligned
/// `Vec` every vector load spans two cache lines, and that (not the three
/// operations per vector) bounded the loop on data in L1 and L2. Slices
/// shorter than [`SUM_ALIGNED_FROM`] take a plain loop instead.
#[target_feature(enable = "avx512f,avx2,sse4.1")]
pub(crate) fn sum_u64_avx512(xs: &[u64]) -> u128 {
    exact_sum_by(xs, |xs| short_sums_u64_avx512(xs), |xs| sums_u64_avx512(xs))
}

/// The exact sum of `xs` from a tier's two loops, each returning the
/// wrapping sum and the sum of high halves ([`portable::exact_sum`]):
/// `short` for fewer than [`SUM_ALIGNED_FROM`] values, `aligned` for
/// blocks of at most [`portable::SUM_BLOCK`].
#[inline(always)]
fn exact_sum_by(
    xs: &[u64],
    short: impl Fn(&[u64]) -> (u64, u64),
    aligned: impl Fn(&[u64]) -> (u64, u64),
) -> u128 {
    let exact = |(wrapped, high)| portable::exact_sum(wrapped, high);
    if xs.len() < SUM_ALIGNED_FROM {
        return exact(short(xs));
    }
    if xs.len() <= portable::SUM_BLOCK {
        // Every slice but one of 32 GiB or more: no loop over blocks (its
        // set-up was a twentieth of a 100-value sum when those came this
        // way: 1.61-1.66x the native wrapping sum with this, 1.68-1.75x
        // without).
        return exact(aligned(xs));
    }
    xs.chunks(portable::SUM_BLOCK)
        .map(|block| exact(aligned(block)))
        .sum()
}

/// The wrapping sum of `xs` and the sum of its high halves (`x >> 32`),
/// for at most [`portable::SUM_BLOCK`] values (so the second cannot wrap).
#[target_feature(enable = "avx512f,avx2,sse4.1")]
#[inline]
fn sums_u64_avx512(xs: &[u64]) -> (u64, u64) {
    use core::arch::x86_64::{__m512i, _mm512_add_epi64, _mm512_setzero_si512, _mm512_srli_epi64};

    let zero = _mm512_setzero_si512();
    let mut wrapped = [zero; 4];
    let mut high = [zero; 4];
    let mut add = |k: usize, v: __m512i| {
        wrapped[k] = _mm512_add_epi64(wrapped[k], v);
        high[k] = _mm512_add_epi64(high[k], _mm512_srli_epi64::<32>(v));
    };
    // Lanes a masked load leaves alone are zero, which adds nothing.
    let parts = Aligned::<u64, 8>::new(xs);
    add(0, masked_u64(parts.head, zero));
    for block in parts.blocks {
        for (k, v) in block.iter().enumerate() {
            add(k, vector_u64(v));
        }
    }
    for (k, v) in parts.vectors.iter().enumerate() {
        add(k, vector_u64(v));
    }
    add(3, masked_u64(parts.tail, zero));
    let fold = |a: [__m512i; 4]| {
        _mm512_add_epi64(_mm512_add_epi64(a[0], a[1]), _mm512_add_epi64(a[2], a[3]))
    };
    horizontal_sums_avx512(fold(wrapped), fold(high))
}

/// The shortest slice the exact sums read in aligned blocks. Below it the
/// split into head, blocks, vectors and tail costs more than the loads it
/// aligns: at 100 values (AMD Zen 4, best of 41 calls of 2,000) the aligned
/// AVX-512 sum took 13.5-14.9 ns and a plain loop over unaligned vectors
/// 9.5-10.7; at 200 they were even, and at 400 the aligned loop led where
/// the slice starts 16 or 48 bytes past a line. The AVX2 sum takes the same
/// bound: its aligned loop alone took 2.5-3.2x the native wrapping sum's
/// time at 100 values, LLVM's plain loop 2.0-2.2x.
const SUM_ALIGNED_FROM: usize = 256;

/// [`sums_u64_avx512`] for fewer than [`SUM_ALIGNED_FROM`] values: vectors
/// read from where the slice starts, two pairs of accumulators (more buy
/// nothing over a dozen vectors), and the last values in one masked load.
#[target_feature(enable = "avx512f,avx2,sse4.1")]
#[inline]
fn short_sums_u64_avx512(xs: &[u64]) -> (u64, u64) {
    use core::arch::x86_64::{__m512i, _mm512_add_epi64, _mm512_setzero_si512, _mm512_srli_epi64};

    let zero = _mm512_setzero_si512();
    let (mut wrapped, mut high) = ([zero; 2], [zero; 2]);
    let mut add = |k: usize, v: __m512i| {
        wrapped[k] = _mm512_add_epi64(wrapped[k], v);
        high[k] = _mm512_add_epi64(high[k], _mm512_srli_epi64::<32>(v));
    };
    let (vectors, tail) = xs.as_chunks::<8>();
    let (pairs, odd) = vectors.as_chunks::<2>();
    for [a, b] in pairs {
        add(0, vector_u64(a));
        add(1, vector_u64(b));
    }
    for v in odd {
        add(0, vector_u64(v));
    }
    // Lanes a masked load leaves alone are zero, which adds nothing.
    add(1, masked_u64(tail, zero));
    horizontal_sums_avx512(
        _mm512_add_epi64(wrapped[0], wrapped[1]),
        _mm512_add_epi64(high[0], high[1]),
    )
}

/// The lanes of `wrapped` and of `high` each added up, both at once: pairs
/// of lanes side by side, then halves, so the two sums share each step.
#[target_feature(enable = "avx512f,avx2,sse4.1")]
#[inline]
fn horizontal_sums_avx512(
    wrapped: core::arch::x86_64::__m512i,
    high: core::arch::x86_64::__m512i,
) -> (u64, u64) {
    use core::arch::x86_64::{
        _mm256_add_epi64, _mm512_add_epi64, _mm512_castsi512_si256, _mm512_extracti64x4_epi64,
        _mm512_unpackhi_epi64, _mm512_unpacklo_epi64,
    };

    let pairs = _mm512_add_epi64(
        _mm512_unpacklo_epi64(wrapped, high),
        _mm512_unpackhi_epi64(wrapped, high),
    );
    sums_of_pairs(_mm256_add_epi64(
        _mm512_castsi512_si256(pairs),
        _mm512_extracti64x4_epi64::<1>(pairs),
    ))
}

/// `u64` max in AVX-512.
#[target_feature(enable = "avx512f")]
pub(crate) fn max_u64_avx512(xs: &[u64]) -> Option<u64> {
    extreme_u64_avx512::<true>(xs)
}

/// `u64` min in AVX-512.
#[target_feature(enable = "avx512f")]
pub(crate) fn min_u64_avx512(xs: &[u64]) -> Option<u64> {
    extreme_u64_avx512::<false>(xs)
}

/// `u64` max (`MAX`) or min for CPUs with neither SSE4.2 nor AVX2. SSE2
/// has no 64-bit compare, and LLVM's emulation of one is slower than scalar
/// code, so an empty `asm!` in the loop keeps the vectoriser out: four
/// independent scalar extremes per step.
fn extreme_u64_scalar<const MAX: bool>(xs: &[u64]) -> Option<u64> {
    let pick = |a: u64, b: u64| if MAX { a.max(b) } else { a.min(b) };
    let first = *xs.first()?;
    let (chunks, rest) = xs.as_chunks::<4>();
    let mut m = [first; 4];
    for c in chunks {
        // SAFETY: an empty assembly block with no operands does nothing.
        unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
        for i in 0..4 {
            m[i] = pick(m[i], c[i]);
        }
    }
    Some(
        rest.iter()
            .fold(pick(pick(m[0], m[1]), pick(m[2], m[3])), |a, &x| pick(a, x)),
    )
}

/// `u64` max without SIMD (see [`extreme_u64_scalar`]).
pub(crate) fn max_u64_scalar(xs: &[u64]) -> Option<u64> {
    extreme_u64_scalar::<true>(xs)
}

/// `u64` min without SIMD (see [`extreme_u64_scalar`]).
pub(crate) fn min_u64_scalar(xs: &[u64]) -> Option<u64> {
    extreme_u64_scalar::<false>(xs)
}

/// The exact `u64` sum in AVX2: the AVX-512 kernel's method
/// ([`sum_u64_avx512`]) on 256-bit vectors, with four accumulators of each
/// sum and every block read at a 64-byte boundary ([`Aligned`]; the head
/// and tail, fewer than 8 values each, in scalar code, as AVX2 has no
/// cheap masked load).
///
/// Written by hand for the same reason: LLVM's vectorised portable loop
/// reads from wherever the slice starts, and measured against the native
/// build of the wrapping sum on the AVX2 tier of an AMD Zen 4 (the stand-in
/// here for an AVX2-only CPU) it took 1.16x and 1.17x its time at 1,000 and
/// 10,000 values and 1.14x at 10^6; this one, alternated with it in one
/// process, 1.00-1.04x at 1,000 and 1.01x at 10,000 where the slice starts
/// 16 bytes past a line, as a `Vec`'s does. Slices
/// shorter than [`SUM_ALIGNED_FROM`] take a plain loop.
#[target_feature(enable = "avx2")]
pub(crate) fn sum_u64_avx2(xs: &[u64]) -> u128 {
    exact_sum_by(xs, |xs| short_sums_u64_avx2(xs), |xs| sums_u64_avx2(xs))
}

/// The wrapping sum of `xs` and the sum of its high halves, for at most
/// [`portable::SUM_BLOCK`] values, in AVX2 (see [`sum_u64_avx2`]).
#[target_feature(enable = "avx2")]
#[inline]
fn sums_u64_avx2(xs: &[u64]) -> (u64, u64) {
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_setzero_si256, _mm256_srli_epi64,
    };

    let zero = _mm256_setzero_si256();
    let mut wrapped = [zero; 4];
    let mut high = [zero; 4];
    let mut add = |k: usize, v: &[u64; 8]| {
        for half in v.as_chunks::<4>().0 {
            // SAFETY: `half` is 4 values, 32 bytes; `loadu` needs no
            // alignment.
            let v = unsafe { _mm256_loadu_si256(half.as_ptr().cast::<__m256i>()) };
            wrapped[k] = _mm256_add_epi64(wrapped[k], v);
            high[k] = _mm256_add_epi64(high[k], _mm256_srli_epi64::<32>(v));
        }
    };
    let parts = Aligned::<u64, 8>::new(xs);
    for block in parts.blocks {
        for (k, v) in block.iter().enumerate() {
            add(k, v);
        }
    }
    for (k, v) in parts.vectors.iter().enumerate() {
        add(k, v);
    }
    let fold = |a: [__m256i; 4]| {
        _mm256_add_epi64(_mm256_add_epi64(a[0], a[1]), _mm256_add_epi64(a[2], a[3]))
    };
    let sums = horizontal_sums_avx2(fold(wrapped), fold(high));
    // Head and tail one after the other: a chained iterator's fold was not
    // inlined.
    portable::sums_onto(portable::sums_onto(sums, parts.head), parts.tail)
}

/// [`sums_u64_avx2`] for fewer than [`SUM_ALIGNED_FROM`] values: vectors
/// read from where the slice starts, two pairs of accumulators, the last
/// (at most 3) values in scalar code.
#[target_feature(enable = "avx2")]
#[inline]
fn short_sums_u64_avx2(xs: &[u64]) -> (u64, u64) {
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_setzero_si256, _mm256_srli_epi64,
    };

    let zero = _mm256_setzero_si256();
    let (mut wrapped, mut high) = ([zero; 2], [zero; 2]);
    let mut add = |k: usize, v: &[u64; 4]| {
        // SAFETY: `v` is 4 values, 32 bytes; `loadu` needs no alignment.
        let v = unsafe { _mm256_loadu_si256(v.as_ptr().cast::<__m256i>()) };
        wrapped[k] = _mm256_add_epi64(wrapped[k], v);
        high[k] = _mm256_add_epi64(high[k], _mm256_srli_epi64::<32>(v));
    };
    let (vectors, tail) = xs.as_chunks::<4>();
    let (pairs, odd) = vectors.as_chunks::<2>();
    for [a, b] in pairs {
        add(0, a);
        add(1, b);
    }
    for v in odd {
        add(0, v);
    }
    let sums = horizontal_sums_avx2(
        _mm256_add_epi64(wrapped[0], wrapped[1]),
        _mm256_add_epi64(high[0], high[1]),
    );
    // A plain loop: an iterator's fold here was a call of its own.
    portable::sums_onto(sums, tail)
}

/// The lanes of `wrapped` and of `high` each added up, both at once.
#[target_feature(enable = "avx2")]
#[inline]
fn horizontal_sums_avx2(
    wrapped: core::arch::x86_64::__m256i,
    high: core::arch::x86_64::__m256i,
) -> (u64, u64) {
    use core::arch::x86_64::{_mm256_add_epi64, _mm256_unpackhi_epi64, _mm256_unpacklo_epi64};

    sums_of_pairs(_mm256_add_epi64(
        _mm256_unpacklo_epi64(wrapped, high),
        _mm256_unpackhi_epi64(wrapped, high),
    ))
}

/// The last step of both tiers' horizontal sums: `pairs` holds the two
/// sums side by side (lanes 0 and 2 of the one, 1 and 3 of the other),
/// and the 128-bit halves added give each.
#[target_feature(enable = "avx2")]
#[inline]
fn sums_of_pairs(pairs: core::arch::x86_64::__m256i) -> (u64, u64) {
    use core::arch::x86_64::{
        _mm256_castsi256_si128, _mm256_extracti128_si256, _mm_add_epi64, _mm_cvtsi128_si64,
        _mm_extract_epi64,
    };

    let two = _mm_add_epi64(
        _mm256_castsi256_si128(pairs),
        _mm256_extracti128_si256::<1>(pairs),
    );
    (
        _mm_cvtsi128_si64(two) as u64,
        _mm_extract_epi64::<1>(two) as u64,
    )
}

/// `u64` max or min in AVX2, written with intrinsics: LLVM's vectorised
/// version of the portable loop is latency-bound on one compare-and-blend
/// chain per register, or spills when given more lanes. Here four
/// independent accumulators take 16 values per step, each value costing a
/// sign flip (AVX2 compares only signed 64-bit integers), a compare and a
/// blend.
#[target_feature(enable = "avx2")]
fn extreme_u64_avx2<const MAX: bool>(xs: &[u64]) -> Option<u64> {
    use core::arch::x86_64::{
        __m256i, _mm256_blendv_epi8, _mm256_cmpgt_epi64, _mm256_loadu_si256, _mm256_set1_epi64x,
        _mm256_storeu_si256, _mm256_xor_si256,
    };

    let first = *xs.first()?;
    let sign = _mm256_set1_epi64x(i64::MIN);
    let start = _mm256_set1_epi64x((first ^ (1 << 63)) as i64);
    let mut acc = [start; 4];
    let (chunks, rest) = xs.as_chunks::<16>();
    for chunk in chunks {
        for (k, lane) in acc.iter_mut().enumerate() {
            // SAFETY: `chunk` has 16 values, so 4 from `4 * k` are in
            // bounds; `loadu` has no alignment requirement.
            let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().add(4 * k).cast::<__m256i>()) };
            let v = _mm256_xor_si256(v, sign);
            // Where the new value wins, take it.
            let wins = if MAX {
                _mm256_cmpgt_epi64(v, *lane)
            } else {
                _mm256_cmpgt_epi64(*lane, v)
            };
            *lane = _mm256_blendv_epi8(*lane, v, wins);
        }
    }
    let mut lanes = [0_i64; 16];
    for (k, lane) in acc.iter().enumerate() {
        // SAFETY: `lanes` has room for 4 values at `4 * k`.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().add(4 * k).cast::<__m256i>(), *lane) };
    }
    let pick = |a: u64, b: u64| if MAX { a.max(b) } else { a.min(b) };
    let folded = lanes
        .iter()
        .fold(first, |m, &l| pick(m, (l as u64) ^ (1 << 63)));
    Some(rest.iter().fold(folded, |m, &x| pick(m, x)))
}

/// `u64` max in AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn max_u64_avx2(xs: &[u64]) -> Option<u64> {
    extreme_u64_avx2::<true>(xs)
}

/// `u64` min in AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn min_u64_avx2(xs: &[u64]) -> Option<u64> {
    extreme_u64_avx2::<false>(xs)
}
