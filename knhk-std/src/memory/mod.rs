//! Memory: arenas (this module) and allocator statistics.
//!
//! [`Arena`] owns a heap buffer and offers the core arena's whole API
//! ([`knhk_core::arena::Arena`], through `Deref`). [`ArenaAllocator`] is the
//! per-thread arena for batch loops, whose `reset` works through a shared
//! reference: it refuses, with [`ResetError`], while anything it handed out
//! is still alive.

mod arena;

pub use arena::{Arena, ArenaAllocator, ArenaBox, ResetError, DEFAULT_CAPACITY};
pub use knhk_core::arena::{ArenaError, Checkpoint, Rejected};
