//! Storage: the memory-mapped workflow store at the design document's
//! paths (feature `memory-v2`, on by default).
//!
//! The format, its reader over bytes and its streaming writer are
//! knhk-core's ([`knhk_core::store`]); this module maps files, replaces
//! them atomically, and caches open stores.

mod mmap;

pub use knhk_core::store::{StoreError, Version};
pub use mmap::{
    GrowingIndex, IoSink, LookupError, LookupMany, MmapWorkflowReader, MmapWorkflowStore,
    StorageError, WorkflowStoreWriter,
};
