//! The atomics knhk-core uses: `portable-atomic`'s, which are the native
//! ones wherever the target has them and an emulation where it does not.
//!
//! - Targets without 64-bit atomics (thumbv7em, riscv32imac) get `AtomicU64`
//!   from portable-atomic's lock-based fallback.
//! - Targets without compare-and-swap at all (thumbv6m) get every
//!   read-modify-write through the `critical-section` crate; the final
//!   binary chooses the implementation (for example `cortex-m`'s
//!   `critical-section-single-core` feature), as the embedded ecosystem
//!   expects of a library.

pub(crate) use portable_atomic::{AtomicBool, AtomicU64, Ordering};
