//! Performance: the slice kernels ([`simd`]) and the tick counter
//! ([`ticks`]), at the design document's paths.

pub mod simd;

pub use knhk_core::ticks;
