//! The design document's `performance` paths: the slice kernels under
//! `simd`. Each item here is the one in [`crate::kernels`] under the
//! design's name. (The tick counter is [`crate::ticks`].)

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
        pub use crate::kernels::any as vectorized_pattern_any;
        pub use crate::kernels::count as vectorized_pattern_count;
        pub use crate::kernels::filter_into as vectorized_pattern_filter_into;

        /// [`crate::kernels::filter`] over pattern ids.
        pub fn vectorized_pattern_filter(patterns: &[u32], v: u32) -> Vec<usize> {
            crate::kernels::filter(patterns, v)
        }
    }

    /// Exact statistics over batches of `u64` values.
    pub mod batching {
        pub use crate::kernels::max_u64 as vectorized_max_u64;
        pub use crate::kernels::mean_u64 as vectorized_average_u64;
        pub use crate::kernels::min_u64 as vectorized_min_u64;
        pub use crate::kernels::sample_variance_u64 as vectorized_sample_variance_u64;
        pub use crate::kernels::sum_u64 as vectorized_sum_u64;
        pub use crate::kernels::variance_u64 as vectorized_variance_u64;
    }
}
