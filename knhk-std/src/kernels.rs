//! The slice kernels: knhk-core's ([`knhk_core::kernels`], re-exported
//! here) plus what needs `std`: [`filter`] into a `Vec`, and the
//! `KNHK_SIMD` environment variable ([`cap_instruction_set_from_env`]).
//!
//! No `-C target-cpu=native` needed: the kernels pick AVX-512 or AVX2 at
//! run time where the CPU has it.
//!
//! ```
//! use knhk_std::kernels;
//!
//! let patterns = [1_u32, 2, 3, 2, 4, 2, 5];
//! assert_eq!(kernels::filter(&patterns, 2), vec![1, 3, 5]);
//! assert_eq!(kernels::count(&patterns, 2), 3);
//! assert!(kernels::any(&patterns, 2));
//!
//! let values = [1_u64, 2, 3, 4, 5, 6, 7, 8, 9, 10];
//! assert_eq!(kernels::sum_u64(&values), 55);
//! assert_eq!(kernels::max_u64(&values), Some(10));
//! ```

pub use knhk_core::kernels::*;

/// The indices of the elements of `xs` equal to `v`, ascending.
///
/// ```
/// assert_eq!(knhk_std::kernels::filter(&[4_u32, 2, 4], 4), vec![0, 2]);
/// ```
pub fn filter<T: Lane>(xs: &[T], v: T) -> Vec<usize> {
    // Counting first (a vectorised pass at read bandwidth) sizes the
    // vector exactly: one allocation, and no regrowth copying indices
    // already written.
    let mut out = Vec::with_capacity(count(xs, v));
    for_each_match(xs, v, |i| out.push(i));
    out
}

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
/// use knhk_std::kernels::{cap_instruction_set_from_env, instruction_set};
///
/// // With KNHK_SIMD unset, the tier stays what the CPU has.
/// # std::env::remove_var("KNHK_SIMD");
/// assert_eq!(cap_instruction_set_from_env()?, instruction_set());
/// # Ok::<(), knhk_std::kernels::SimdEnvError>(())
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
        assert_eq!(max_u64(&[3, 9, 1]), Some(9));
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
