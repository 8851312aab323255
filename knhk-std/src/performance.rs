//! The design document's `performance` paths: the slice kernels under
//! `simd` and the tick counter. Each item here is the one in
//! [`crate::kernels`] (or knhk-core) under the design's name.

pub use knhk_core::ticks;

/// The design document's `performance::simd`: [`crate::kernels`] under its
/// module names.
///
/// ```
/// use knhk_std::performance::simd::{batching, pattern_matching};
///
/// let patterns = vec![1, 2, 3, 2, 4, 2, 5];
/// let matches = pattern_matching::vectorized_pattern_filter(&patterns, 2);
/// let count = pattern_matching::vectorized_pattern_count(&patterns, 2);
/// let found = pattern_matching::vectorized_pattern_any(&patterns, 2);
/// assert_eq!((matches, count, found), (vec![1, 3, 5], 3, true));
///
/// let values = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// assert_eq!(batching::vectorized_sum_u64(&values), 55);
/// assert_eq!(batching::vectorized_max_u64(&values), Some(10));
/// assert_eq!(batching::vectorized_average_u64(&values), Some(5.5));
/// assert_eq!(batching::vectorized_variance_u64(&values), Some(8.25));
/// ```
pub mod simd {
    pub use crate::kernels::{
        active_instruction_set, cap_instruction_set, cap_instruction_set_from_env,
        detected_instruction_set, instruction_set, InstructionSet, SimdEnvError,
        UnknownInstructionSet, SIMD_ENV,
    };

    /// Counting, searching and filtering pattern ids.
    pub mod pattern_matching {
        pub use crate::kernels::{
            any, any_pattern, count, count_patterns, filter_into, for_each_match, matches,
            pattern_numbers, vectorized_pattern_any, vectorized_pattern_count,
            vectorized_pattern_filter_into, Lane, Matches,
        };

        /// [`crate::kernels::filter`] over pattern ids.
        pub fn vectorized_pattern_filter(patterns: &[u32], v: u32) -> Vec<usize> {
            crate::kernels::filter(patterns, v)
        }
    }

    /// Exact statistics over batches of `u64` values.
    pub mod batching {
        pub use crate::kernels::{
            vectorized_average_u64, vectorized_max_u64, vectorized_min_u64,
            vectorized_sample_variance_u64, vectorized_sum_u64, vectorized_variance_u64,
        };
    }
}
