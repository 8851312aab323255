#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`arena`]: a bump arena over a caller's buffer, with checkpoints,
//!   scopes, and values that are dropped exactly once.
//! - [`cache`]: [`CacheAligned`](cache::CacheAligned) and
//!   [`CachePadded`](cache::CachePadded), against false sharing.
//! - [`counters`]: executor statistics, plain and sharded per writer.
//! - [`alloc_stats`]: a counting `GlobalAlloc` wrapper.
//! - [`kernels`]: vectorised slice kernels (count, search, filter, exact
//!   sum, max, min, mean, variance), dispatched at run time on x86_64.
//! - [`patterns`]: the 43 workflow control-flow patterns and [`PatternId`].
//! - [`registry`]: once-initialised cells and a slot per pattern (spin-based).
//! - [`store`]: the workflow store format, a reader over `&[u8]` and a
//!   streaming writer.
//! - [`ticks`]: the CPU's cycle/timestamp counter, for costs stated in ticks.
//! - [`PatternId`] and [`WorkflowSpecId`]: the identifiers the workflow
//!   engine uses everywhere.
//!
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc_stats;
pub mod arena;
pub mod cache;
pub mod counters;
pub mod kernels;
pub mod patterns;
pub mod registry;
pub mod store;
mod sync;
pub mod ticks;
pub mod workflow;

pub use patterns::PatternId;
pub use workflow::WorkflowSpecId;
