//! Every kernel variant this CPU can run, against a scalar oracle.

use super::*;
use proptest::prelude::*;

/// The obvious implementations the kernels must agree with.
mod oracle {
    use super::U256;

    pub fn count<T: PartialEq>(xs: &[T], v: T) -> usize {
        xs.iter().filter(|x| **x == v).count()
    }

    pub fn indices<T: PartialEq>(xs: &[T], v: T) -> Vec<usize> {
        (0..xs.len()).filter(|&i| xs[i] == v).collect()
    }

    pub fn sum(xs: &[u64]) -> u128 {
        xs.iter().map(|&x| u128::from(x)).sum()
    }

    pub fn sum_sq(xs: &[u64]) -> U256 {
        xs.iter().fold(U256::ZERO, |acc, &x| {
            acc.add(U256::mul_u128(u128::from(x), u128::from(x)))
        })
    }
}

/// Every variant of a kernel that can run here, by name.
macro_rules! variants {
    ($portable:path, $avx2:ident, $avx512:ident, ($($arg:expr),*)) => {{
        #[allow(unused_mut)]
        let mut out = vec![("portable", $portable($($arg),*))];
        #[cfg(knhk_dispatch)]
        {
            if x86::detected() >= x86::Level::Avx2 {
                // SAFETY: the CPU has AVX2.
                out.push(("avx2", unsafe { x86::$avx2($($arg),*) }));
            }
            if x86::detected() >= x86::Level::Avx512 {
                // SAFETY: the CPU has AVX-512 F, BW, VL and DQ.
                out.push(("avx512", unsafe { x86::$avx512($($arg),*) }));
            }
        }
        out
    }};
}

fn check_counting<T: Lane + core::fmt::Debug>(xs: &[T], v: T) -> Result<(), TestCaseError> {
    let want = oracle::count(xs, v);
    for (name, got) in variants!(portable::count, count_avx2, count_avx512, (xs, v)) {
        prop_assert_eq!(got, want, "count, {} variant", name);
    }
    for (name, got) in variants!(
        portable::count_short,
        count_avx2,
        count_short_avx512,
        (xs, v)
    ) {
        prop_assert_eq!(got, want, "short count, {} variant", name);
    }
    prop_assert_eq!(count(xs, v), want);
    for (name, got) in variants!(portable::any, any_avx2, any_avx512, (xs, v)) {
        prop_assert_eq!(got, want > 0, "any, {} variant", name);
    }
    prop_assert_eq!(super::any(xs, v), want > 0);
    let indices = oracle::indices(xs, v);
    let mut out = vec![usize::MAX; indices.len()];
    prop_assert_eq!(filter_into(xs, v, &mut out), indices.len());
    prop_assert_eq!(&out, &indices);
    let mut short = vec![0; indices.len() / 2];
    prop_assert_eq!(portable::filter_into(xs, v, &mut short), indices.len());
    prop_assert_eq!(&short[..], &indices[..short.len()]);
    prop_assert_eq!(matches(xs, v).collect::<Vec<_>>(), indices.clone());
    let mut seen = Vec::new();
    for_each_match(xs, v, |i| seen.push(i));
    prop_assert_eq!(seen, indices);
    Ok(())
}

fn check_stats(xs: &[u64]) -> Result<(), TestCaseError> {
    let sum = oracle::sum(xs);
    for (name, got) in variants!(portable::sum_u64, sum_u64_avx2, sum_u64_avx512, (xs)) {
        prop_assert_eq!(got, sum, "sum, {} variant", name);
    }
    prop_assert_eq!(sum_u64(xs), sum);
    let (max, min) = (xs.iter().copied().max(), xs.iter().copied().min());
    prop_assert_eq!(max_u64(xs), max);
    prop_assert_eq!(min_u64(xs), min);
    prop_assert_eq!(portable::max_u64(xs), max);
    prop_assert_eq!(portable::min_u64(xs), min);
    #[cfg(knhk_dispatch)]
    {
        prop_assert_eq!(x86::max_u64_scalar(xs), max);
        prop_assert_eq!(x86::min_u64_scalar(xs), min);
        if x86::detected() >= x86::Level::Sse42 {
            // SAFETY: the CPU has SSE4.2.
            unsafe {
                prop_assert_eq!(x86::max_u64_sse42(xs), max);
                prop_assert_eq!(x86::min_u64_sse42(xs), min);
            }
        }
        if x86::detected() >= x86::Level::Avx2 {
            // SAFETY: the CPU has AVX2.
            unsafe {
                prop_assert_eq!(x86::max_u64_avx2(xs), max);
                prop_assert_eq!(x86::min_u64_avx2(xs), min);
                prop_assert_eq!(x86::moments_avx2(xs).sum_sq, oracle::sum_sq(xs));
            }
        }
        if x86::detected() >= x86::Level::Avx512 {
            // SAFETY: the CPU has AVX-512 F, BW, VL and DQ.
            unsafe {
                prop_assert_eq!(x86::max_u64_avx512(xs), max);
                prop_assert_eq!(x86::min_u64_avx512(xs), min);
                prop_assert_eq!(x86::moments_avx512(xs).sum_sq, oracle::sum_sq(xs));
            }
        }
    }
    let m = portable::moments(xs);
    prop_assert_eq!(m.sum, sum);
    prop_assert_eq!(m.sum_sq, oracle::sum_sq(xs));

    let n = xs.len() as u128;
    if xs.is_empty() {
        prop_assert_eq!(mean_u64(xs), None);
        prop_assert_eq!(variance_u64(xs), None);
    } else {
        let spread = oracle::sum_sq(xs)
            .mul_u64(n as u64)
            .sub(U256::mul_u128(sum, sum));
        prop_assert_eq!(variance_u64(xs), Some(exact::ratio_to_f64(spread, n * n)));
        prop_assert_eq!(
            mean_u64(xs),
            Some(exact::ratio_to_f64(U256::from_u128(sum), n))
        );
        if n >= 2 {
            prop_assert_eq!(
                sample_variance_u64(xs),
                Some(exact::ratio_to_f64(spread, n * (n - 1)))
            );
        }
        // Sanity against f64 where f64 is nearly exact (small values).
        if xs.iter().all(|&x| x < 1 << 20) {
            let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let got = variance_u64(xs).unwrap();
            prop_assert!(
                (got - var).abs() <= 1e-6 * var.max(1.0),
                "{} vs {}",
                got,
                var
            );
        }
    }
    Ok(())
}

/// Values that stress the edges: 0, u64::MAX, and around 2^53 and 2^63.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        proptest::arbitrary::any::<u64>(),
        Just(0),
        Just(u64::MAX),
        (0u64..8).prop_map(|d| (1 << 53) - 4 + d),
        (0u64..8).prop_map(|d| (1 << 63) - 4 + d),
        0u64..4,
    ]
}

fn cases() -> u32 {
    if cfg!(miri) {
        4
    } else {
        256
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn counting_kernels_match_the_oracle(
        xs in proptest::collection::vec(0u32..6, 0..300),
        v in 0u32..6,
        skip in 0usize..5,
    ) {
        // Sub-slices start at any offset, so loads are unaligned.
        let xs = &xs[skip.min(xs.len())..];
        check_counting(xs, v)?;
        let narrow: Vec<u8> = xs.iter().map(|&x| x as u8).collect();
        check_counting(&narrow, v as u8)?;
        let mid: Vec<u16> = xs.iter().map(|&x| x as u16).collect();
        check_counting(&mid, v as u16)?;
        let wide: Vec<u64> = xs.iter().map(|&x| u64::from(x) << 40).collect();
        check_counting(&wide, u64::from(v) << 40)?;
    }

    #[test]
    fn statistics_match_the_oracle(
        xs in proptest::collection::vec(edgy_u64(), 0..if cfg!(miri) { 80 } else { 200 }),
        skip in 0usize..3,
    ) {
        check_stats(&xs[skip.min(xs.len())..])?;
    }
}

/// `any` of every tier, for every lane type, at every alignment of a
/// 64-byte vector, lengths across the head, the blocks of four vectors,
/// the single vectors and the tail, with the value absent, at either end,
/// and once in the middle; and 0 sought among non-zero values, which the
/// lanes a masked load leaves at zero must not match.
#[test]
#[cfg_attr(miri, ignore = "checks the vector tiers, which Miri does not run")]
fn any_finds_a_value_wherever_it_is() {
    macro_rules! each_lane_type {
        ($($t:ty),*) => {$({
            let lanes = 64 / core::mem::size_of::<$t>();
            let (max_len, offsets) = (12 * lanes + 3, lanes);
            let mut buf: Vec<$t> = vec![1; max_len + lanes];
            for offset in 0..offsets {
                for len in 0..=max_len {
                    let places = [None, Some(0), Some(len / 2), Some(len.saturating_sub(1))];
                    for place in places {
                        if let Some(at) = place.filter(|_| len > 0) {
                            buf[offset + at] = 7;
                        }
                        let xs = &buf[offset..offset + len];
                        for v in [7 as $t, 0] {
                            let want = xs.contains(&v);
                            for (name, got) in variants!(portable::any, any_avx2, any_avx512, (xs, v)) {
                                assert_eq!(got, want, "any({v}) of {len} {}, offset {offset}, {name}", stringify!($t));
                            }
                        }
                        buf[offset..offset + len].fill(1);
                    }
                }
            }
        })*};
    }
    each_lane_type!(u8, u16, u32, u64);
}

#[test]
fn long_u8_runs_do_not_overflow_the_narrow_counters() {
    // More matches than a u8 lane can count, across block boundaries.
    let xs = vec![9_u8; 70_000];
    assert_eq!(count(&xs, 9), 70_000);
    let ys = vec![1_u16; 70_000];
    assert_eq!(count(&ys, 1), 70_000);
}

#[test]
fn all_max_values() {
    let xs = vec![u64::MAX; 1000];
    assert_eq!(sum_u64(&xs), 1000 * u128::from(u64::MAX));
    assert_eq!(max_u64(&xs), Some(u64::MAX));
    assert_eq!(min_u64(&xs), Some(u64::MAX));
    assert_eq!(mean_u64(&xs), Some(u64::MAX as f64));
    assert_eq!(variance_u64(&xs), Some(0.0));
    check_stats(&xs).unwrap();
}

/// Past the length up to which the AVX-512 loops align their loads, they
/// read from where the slice starts: sum, max and min of every tier, at
/// three offsets from a cache line, with the extremes at the two ends.
#[test]
#[cfg_attr(
    miri,
    ignore = "32 MiB of values; the same loops are checked at small lengths"
)]
fn slices_longer_than_the_aligned_loops_take() {
    let len = (1 << 22) + 37;
    let mut xs: Vec<u64> = (0..len as u64 + 8)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 3) | 1)
        .collect();
    for offset in [0, 1, 3] {
        xs[offset] = u64::MAX;
        xs[offset + len - 1] = 0;
        let slice = &xs[offset..offset + len];
        let sum = oracle::sum(slice);
        for (name, got) in variants!(portable::sum_u64, sum_u64_avx2, sum_u64_avx512, (slice)) {
            assert_eq!(got, sum, "sum, {name} variant, offset {offset}");
        }
        assert_eq!(max_u64(slice), Some(u64::MAX));
        assert_eq!(min_u64(slice), Some(0));
        #[cfg(knhk_dispatch)]
        if x86::detected() >= x86::Level::Avx512 {
            // SAFETY: the CPU has AVX-512 F, BW, VL and DQ.
            unsafe {
                assert_eq!(x86::max_u64_avx512(slice), Some(u64::MAX));
                assert_eq!(x86::min_u64_avx512(slice), Some(0));
                assert_eq!(
                    x86::max_u64_avx512(&slice[1..]),
                    slice[1..].iter().copied().max()
                );
                assert_eq!(
                    x86::min_u64_avx512(&slice[..len - 1]),
                    slice[..len - 1].iter().copied().min()
                );
            }
        }
        xs[offset] = 1;
        xs[offset + len - 1] = 1;
    }
}

#[test]
fn variance_is_exact_where_f64_is_not() {
    let xs = [1_u64 << 60, (1 << 60) + 2];
    assert_eq!(variance_u64(&xs), Some(1.0));
    assert_eq!(sample_variance_u64(&xs), Some(2.0));
    assert_eq!(mean_u64(&xs), Some(((1_u64 << 60) + 1) as f64));
    // The extremes: variance of [0, u64::MAX] is (2^64 - 1)^2 / 4.
    // (2^64 - 1)^2 / 4 = 2^126 - 2^63 + 1/4, which rounds to 2^126.
    let v = variance_u64(&[0, u64::MAX]).unwrap();
    assert_eq!(v, f64::from_bits((1023 + 126) << 52));
    assert_eq!(sample_variance_u64(&[5]), None);
    assert_eq!(variance_u64(&[5]), Some(0.0));
}

#[test]
fn seed_values() {
    let patterns = [1_u32, 2, 3, 2, 4, 2, 5];
    assert_eq!(count(&patterns, 2), 3);
    assert!(super::any(&patterns, 2));
    assert!(!super::any(&patterns, 9));
    let values: Vec<u64> = (1..=10).collect();
    assert_eq!(sum_u64(&values), 55);
    assert_eq!(max_u64(&values), Some(10));
    assert_eq!(mean_u64(&values), Some(5.5));
    assert_eq!(variance_u64(&values), Some(8.25));
}

#[test]
fn pattern_ids_work_through_their_numbers() {
    let ids = [PatternId(3), PatternId(7), PatternId(3)];
    assert_eq!(count(pattern_numbers(&ids), 3), 2);
    assert!(super::any(pattern_numbers(&ids), 7));
    assert_eq!(pattern_numbers(&ids), &[3, 7, 3]);
}

#[test]
fn the_active_instruction_set_is_named() {
    let set = active_instruction_set();
    assert!(
        ["avx512", "avx2", "sse4.2", "sse2", "portable"].contains(&set),
        "{set}"
    );
    assert_eq!(set.parse::<InstructionSet>().map(|s| s.name()), Ok(set));
    assert_eq!("AVX512".parse(), Ok(InstructionSet::Avx512));
    assert_eq!("avx1".parse::<InstructionSet>(), Err(UnknownInstructionSet));
    if cfg!(miri) {
        assert_eq!(set, "portable");
    }
}

/// The tiers this CPU has, each forced through the cap in turn, for every
/// public kernel against the scalar oracle: lengths 0 to 515 (every tail
/// and block boundary of the 64-element chunks and the 32-value max/min
/// steps), each at 8 offsets into a padded buffer, so loads are unaligned
/// in every way (under Miri, lengths 0 to 70 at 4 offsets: enough for its
/// SSE2-at-most tiers, in a quarter of the time). Tiers the CPU lacks are named in the output (run with
/// `--nocapture` to see it) rather than passing silently.
///
/// The cap is process-wide, and other tests run meanwhile: they stay
/// correct, since every tier computes the same results.
#[test]
fn every_tier_this_cpu_has_matches_the_oracle() {
    let detected = detected_instruction_set();
    let (ran, skipped): (Vec<_>, Vec<_>) = InstructionSet::ALL
        .into_iter()
        .partition(|&set| set <= detected);
    let max_len = if cfg!(miri) { 70 } else { 515 };
    // Under Miri the tiers go no further than SSE2 (16-byte vectors), and
    // four offsets give every alignment of a 16-byte vector to `u32` and
    // `u64` elements; natively, eight cover the 32-byte vectors of AVX2 too.
    let offsets = if cfg!(miri) { 4 } else { 8 };
    let mut ids = vec![0_u32; max_len + 8];
    let mut values = vec![0_u64; max_len + 8];
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    for (id, value) in ids.iter_mut().zip(values.iter_mut()) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        *id = (rng % 5) as u32;
        // Extremes now and then: 0, u64::MAX, either side of 2^63.
        *value = match rng % 11 {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 63,
            3 => (1 << 63) - 1,
            _ => rng.rotate_left(17),
        };
    }
    let mut out = vec![0_usize; max_len];
    for &set in &ran {
        let active = cap_instruction_set(set);
        for len in 0..=max_len {
            for offset in 0..offsets {
                let xs = &ids[offset..offset + len];
                let vs = &values[offset..offset + len];
                let at = |what: &str| {
                    format!("{what}, tier {set} ({active}), len {len}, offset {offset}")
                };
                for v in [0_u32, 3] {
                    let want = oracle::indices(xs, v);
                    assert_eq!(count(xs, v), want.len(), "{}", at("count"));
                    assert_eq!(super::any(xs, v), !want.is_empty(), "{}", at("any"));
                    assert_eq!(filter_into(xs, v, &mut out), want.len(), "{}", at("filter"));
                    assert_eq!(&out[..want.len()], &want[..], "{}", at("filter"));
                    assert_eq!(
                        matches(xs, v).collect::<Vec<_>>(),
                        want,
                        "{}",
                        at("matches")
                    );
                }
                assert_eq!(sum_u64(vs), oracle::sum(vs), "{}", at("sum"));
                assert_eq!(max_u64(vs), vs.iter().copied().max(), "{}", at("max"));
                assert_eq!(min_u64(vs), vs.iter().copied().min(), "{}", at("min"));
                if !vs.is_empty() {
                    let n = vs.len() as u128;
                    let sum = oracle::sum(vs);
                    let spread = oracle::sum_sq(vs)
                        .mul_u64(n as u64)
                        .sub(U256::mul_u128(sum, sum));
                    assert_eq!(
                        variance_u64(vs),
                        Some(exact::ratio_to_f64(spread, n * n)),
                        "{}",
                        at("variance")
                    );
                }
            }
        }
    }
    cap_instruction_set(InstructionSet::Avx512);
    assert_eq!(instruction_set(), detected);
    let names =
        |sets: &[InstructionSet]| sets.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
    println!(
        "kernel tiers checked on this CPU: {}; not available here: {}",
        names(&ran),
        if skipped.is_empty() {
            "none".into()
        } else {
            names(&skipped)
        }
    );
    assert!(ran.contains(&InstructionSet::Portable));
}

/// Variants this CPU cannot run are named, so a test log shows what was
/// not covered here rather than passing silently.
#[test]
fn report_which_variants_ran() {
    #[cfg(knhk_dispatch)]
    {
        let level = x86::detected();
        let tier = |have: bool, name: &str| {
            if have {
                format!(", {name}")
            } else {
                format!(" (no {name} here)")
            }
        };
        eprintln!(
            "kernel variants checked on this CPU: portable, scalar{}{}{}",
            tier(level >= x86::Level::Sse42, "sse4.2"),
            tier(level >= x86::Level::Avx2, "avx2"),
            tier(level >= x86::Level::Avx512, "avx512"),
        );
        assert!(level >= x86::Level::Baseline);
    }
    assert!(!active_instruction_set().is_empty());
}
