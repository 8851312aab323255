//! The design document's `performance::simd`: knhk-core's kernels
//! ([`knhk_core::kernels`]) under its module names, plus the one form that
//! allocates, [`pattern_matching::vectorized_pattern_filter`].
//!
//! No `-C target-cpu=native` needed: the kernels pick AVX2 at run time where
//! the CPU has it (see [`knhk_core::kernels`]).
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

pub use knhk_core::kernels::active_instruction_set;
