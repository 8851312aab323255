//! # knhk-std
//!
//! knhk's memory layer for hosted programs. It re-exports [`knhk_core`] under
//! the module paths of the original design document and adds what needs an
//! operating system: arenas that own their heap buffer, and arenas per thread.
//!
//! Depend on it under the design document's name to use its paths as written:
//!
//! ```toml
//! [dependencies]
//! knhk-workflow-engine = { package = "knhk-std", version = "0.1", features = ["memory-v2"] }
//! ```
//!
//! ```
//! use knhk_std::memory::{Arena, ArenaAllocator};
//!
//! let mut arena = Arena::with_capacity(1024 * 1024)?;
//! for i in 0..1000 {
//!     let val = arena.alloc(i)?;
//!     *val += 1;
//! }
//! arena.reset();
//!
//! let allocator = ArenaAllocator::new()?;
//! let val = allocator.alloc(42)?;
//! assert_eq!(*val, 42);
//! drop(val);
//! allocator.reset()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc_stats;
pub mod arena;
pub mod executor;
pub mod kernels;
pub mod pool;
pub mod registry;
pub mod stats;
#[cfg(feature = "memory-v2")]
pub mod store;
mod thread_slot;

// The design document's paths: each item one line naming the real one.
pub mod initialization;
pub mod memory;
pub mod performance;
#[cfg(feature = "memory-v2")]
pub mod storage;

pub use knhk_core::{ticks, PatternId, WorkflowSpecId};
