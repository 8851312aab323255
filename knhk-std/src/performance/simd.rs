//! The design document's `performance::simd`: knhk-core's kernels
//! ([`knhk_core::kernels`]) under its module names, plus the one form that
//! allocates, [`pattern_matching::vectorized_pattern_filter`].
//!
//! No `-C target-cpu=native` needed: the kernels pick AVX-512 or AVX2 at
//! run time where the CPU has it (see [`knhk_core::kernels`]). The
//! `KNHK_SIMD` environment variable caps the tier
//! ([`cap_instruction_set_from_env`]).
//!
//! ```
//! use knhk_std::performance::simd::{batching, pattern_matching};
//!
//! let patterns = vec![1, 2, 3, 2, 4, 2, 5];
//! let matches = pattern_matching::vectorized_pattern_filter(&patterns, 2);
//! let count = pattern_matching::vectorized_pattern_count(&patterns, 2);
//! let found = pattern_matching::vectorized_pattern_any(&patterns, 2);
//! assert_eq!((matches, count, found), (vec![1, 3, 5], 3, true));
//!
//! let values = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
//! assert_eq!(batching::vectorized_sum_u64(&values), 55);
//! assert_eq!(batching::vectorized_max_u64(&values), Some(10));
//! assert_eq!(batching::vectorized_average_u64(&values), Some(5.5));
//! assert_eq!(batching::vectorized_variance_u64(&values), Some(8.25));
//! ```

/// Counting, searching and filtering pattern ids.
pub mod pattern_matching {
    pub use knhk_core::kernels::{
        any, any_pattern, count, count_patterns, filter_into, for_each_match, matches,
        pattern_numbers, vectorized_pattern_any, vectorized_pattern_count,
        vectorized_pattern_filter_into, Lane, Matches,
    };

    /// The indices of the pattern ids equal to `v`, ascending.
    ///
    /// ```
    /// use knhk_std::performance::simd::pattern_matching::vectorized_pattern_filter;
    /// assert_eq!(vectorized_pattern_filter(&[4, 2, 4], 4), vec![0, 2]);
    /// ```
    pub fn vectorized_pattern_filter(patterns: &[u32], v: u32) -> Vec<usize> {
        // Counting first (a vectorised pass at read bandwidth) sizes the
        // vector exactly: one allocation, and no regrowth copying indices
        // already written.
        let mut out = Vec::with_capacity(vectorized_pattern_count(patterns, v));
        for_each_match(patterns, v, |i| out.push(i));
        out
    }
}

/// Exact statistics over batches of `u64` values.
pub mod batching {
    pub use knhk_core::kernels::{
        vectorized_average_u64, vectorized_max_u64, vectorized_min_u64,
        vectorized_sample_variance_u64, vectorized_sum_u64, vectorized_variance_u64,
    };
}

pub use knhk_core::kernels::{
    active_instruction_set, cap_instruction_set, detected_instruction_set, instruction_set,
    InstructionSet, UnknownInstructionSet,
};

/// The environment variable that caps the kernels' instruction set:
/// `avx512`, `avx2`, `sse4.2`, `sse2` or `portable`.
pub const SIMD_ENV: &str = "KNHK_SIMD";

/// `KNHK_SIMD` holds something that is not a tier's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimdEnvError {
    /// What the variable holds (lossily, if it is not Unicode).
    pub value: String,
}

impl std::fmt::Display for SimdEnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{SIMD_ENV}={:?} names no instruction set: expected one of avx512, avx2, sse4.2, sse2, portable",
            self.value
        )
    }
}

impl std::error::Error for SimdEnvError {}

/// Caps the kernels' instruction set at what `KNHK_SIMD` names, for every
/// thread, and returns the tier now in use. Unset or empty, nothing
/// changes. A value that names no tier is an error and changes nothing.
/// Call it once at start-up (the report and the examples do), before the
/// hot loops run; a deployment where wide vectors lower the clock sets
/// `KNHK_SIMD=avx2`.
///
/// ```
/// use knhk_std::performance::simd::{cap_instruction_set_from_env, instruction_set};
///
/// // With KNHK_SIMD unset, the tier stays what the CPU has.
/// # std::env::remove_var("KNHK_SIMD");
/// assert_eq!(cap_instruction_set_from_env()?, instruction_set());
/// # Ok::<(), knhk_std::performance::simd::SimdEnvError>(())
/// ```
pub fn cap_instruction_set_from_env() -> Result<InstructionSet, SimdEnvError> {
    match std::env::var_os(SIMD_ENV) {
        None => Ok(instruction_set()),
        Some(value) if value.is_empty() => Ok(instruction_set()),
        Some(value) => {
            let text = value.to_string_lossy();
            let set = text.parse::<InstructionSet>().map_err(|_| SimdEnvError {
                value: text.into_owned(),
            })?;
            Ok(cap_instruction_set(set))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test sets the variable, so no other test sees it change.
    #[test]
    fn knhk_simd_caps_the_tier_and_refuses_unknown_names() {
        let detected = detected_instruction_set();
        std::env::set_var(SIMD_ENV, "portable");
        assert_eq!(cap_instruction_set_from_env(), Ok(InstructionSet::Portable));
        assert_eq!(active_instruction_set(), "portable");
        assert_eq!(batching::vectorized_max_u64(&[3, 9, 1]), Some(9));
        std::env::set_var(SIMD_ENV, "avx1024");
        let err = cap_instruction_set_from_env().unwrap_err();
        assert!(err.to_string().contains("avx1024"), "{err}");
        assert_eq!(instruction_set(), InstructionSet::Portable, "unchanged");
        std::env::set_var(SIMD_ENV, "AVX512");
        assert_eq!(cap_instruction_set_from_env(), Ok(detected));
        std::env::remove_var(SIMD_ENV);
        assert_eq!(cap_instruction_set_from_env(), Ok(detected));
    }
}
