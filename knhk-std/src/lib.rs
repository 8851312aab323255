#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "memory-v2")))]
pub mod store;
mod thread_slot;

// The design document's paths: each item one line naming the real one.
pub mod initialization;
pub mod memory;
pub mod performance;
#[cfg(feature = "memory-v2")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory-v2")))]
pub mod storage;

pub use knhk_core::{ticks, PatternId, WorkflowSpecId};
