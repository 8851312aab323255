//! The design document's recipe for fast kernels: the naive iterator code
//! built with `-C target-cpu=native`. Here the same naive code is compiled
//! three times, inside `#[target_feature]` functions for this CPU's
//! AVX-512 and AVX2 feature sets and for the baseline, and the build that
//! matches the CPU is chosen at run time: what `-C target-cpu=native` would
//! give it, in one binary, so that it runs beside knhk in the same process.
//! (`-C target-cpu=native` also tunes code generation for the CPU model;
//! features are what decide the vector code.)

use std::sync::OnceLock;

/// The feature sets, as `-C target-cpu=native` enables them on CPUs that
/// have them.
macro_rules! native_kernels {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block)*) => {
        mod avx512 {
            $(
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,avx,fma,bmi1,bmi2,lzcnt,popcnt,sse4.2,movbe")]
                pub(super) fn $name($($arg: $ty),*) -> $ret $body
            )*
        }
        mod avx2 {
            $(
                #[target_feature(enable = "avx2,avx,fma,bmi1,bmi2,lzcnt,popcnt,sse4.2,movbe")]
                pub(super) fn $name($($arg: $ty),*) -> $ret $body
            )*
        }
        mod baseline {
            $(
                pub(super) fn $name($($arg: $ty),*) -> $ret $body
            )*
        }
        $(
            /// The naive code, built for this CPU's features.
            #[inline(never)]
            pub fn $name($($arg: $ty),*) -> $ret {
                match tier() {
                    // SAFETY: `tier()` saw every feature of this build.
                    Tier::Avx512 => unsafe { avx512::$name($($arg),*) },
                    // SAFETY: as above.
                    Tier::Avx2 => unsafe { avx2::$name($($arg),*) },
                    Tier::Baseline => baseline::$name($($arg),*),
                }
            }
        )*
    };
}

/// Which build of the naive code this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The AVX-512 feature set (with AVX2 and the rest).
    Avx512,
    /// AVX2, FMA, BMI and the rest.
    Avx2,
    /// The default target.
    Baseline,
}

/// The build this CPU runs, detected once (after the report has read
/// `KNHK_SIMD`).
///
/// Capped where knhk's kernels are capped: with `KNHK_SIMD=avx2` on an
/// AVX-512 machine both sides run their AVX2 builds, which stands in for a
/// CPU without AVX-512 (an AMD Zen 3, say) as far as one machine can.
pub fn tier() -> Tier {
    static TIER: OnceLock<Tier> = OnceLock::new();
    *TIER.get_or_init(|| {
        use knhk_core::kernels::{instruction_set, InstructionSet};
        macro_rules! all {
            ($($f:tt),*) => { true $(&& std::arch::is_x86_feature_detected!($f))* };
        }
        let cap = instruction_set();
        if cap >= InstructionSet::Avx512
            && all!(
                "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx2", "avx", "fma",
                "bmi1", "bmi2", "lzcnt", "popcnt", "sse4.2", "movbe"
            )
        {
            Tier::Avx512
        } else if cap >= InstructionSet::Avx2
            && all!("avx2", "avx", "fma", "bmi1", "bmi2", "lzcnt", "popcnt", "sse4.2", "movbe")
        {
            Tier::Avx2
        } else {
            Tier::Baseline
        }
    })
}

native_kernels! {
    fn count_u32(xs: &[u32], v: u32) -> usize {
        xs.iter().filter(|&&x| x == v).count()
    }
    fn any_u32(xs: &[u32], v: u32) -> bool {
        xs.contains(&v)
    }
    fn filter_u32(xs: &[u32], v: u32) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, &x) in xs.iter().enumerate() {
            if x == v {
                out.push(i);
            }
        }
        out
    }
    fn sum_u64(xs: &[u64]) -> u64 {
        xs.iter().fold(0_u64, |s, &x| s.wrapping_add(x))
    }
    fn max_u64(xs: &[u64]) -> Option<u64> {
        xs.iter().copied().max()
    }
    fn min_u64(xs: &[u64]) -> Option<u64> {
        xs.iter().copied().min()
    }
    fn variance_u64(xs: &[u64]) -> Option<f64> {
        if xs.is_empty() {
            return None;
        }
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        Some(xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_native_builds_compute_the_naive_results() {
        let ids = [1_u32, 3, 3, 7];
        let values = [5_u64, u64::MAX, 0, 9];
        assert_eq!(super::count_u32(&ids, 3), 2);
        assert!(super::any_u32(&ids, 7) && !super::any_u32(&ids, 2));
        assert_eq!(super::filter_u32(&ids, 3), vec![1, 2]);
        assert_eq!(super::sum_u64(&values), 14_u64.wrapping_add(u64::MAX));
        assert_eq!(super::max_u64(&values), Some(u64::MAX));
        assert_eq!(super::min_u64(&values), Some(0));
        assert_eq!(super::variance_u64(&[1, 3]), Some(1.0));
        assert_eq!(super::variance_u64(&[]), None);
    }
}
