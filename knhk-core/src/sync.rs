//! The atomics knhk-core uses: `portable-atomic`'s, which are the native
//! ones wherever the target has them and an emulation where it does not.
//!
//! - Targets without 64-bit atomics (thumbv7em, riscv32imac) get `AtomicU64`
//!   from portable-atomic's fallback, which uses a table of spinlocks (about
//!   2 KiB of RAM). A single-core firmware should enable portable-atomic's
//!   `unsafe-assume-single-core` feature in its own `Cargo.toml`: the
//!   fallback then disables interrupts instead, which is smaller and safe
//!   against interrupt handlers (targets/firmware does this).
//! - Targets without compare-and-swap at all (thumbv6m) get every
//!   read-modify-write through the `critical-section` crate; the final
//!   binary chooses the implementation (for example `cortex-m`'s
//!   `critical-section-single-core` feature), as the embedded ecosystem
//!   expects of a library.

pub(crate) use portable_atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
