//! The design document's `storage` paths (feature `memory-v2`, on by
//! default): [`crate::store`] under the design's name.

pub use crate::store::{
    GetMany, GrowingIndex, IoSink, MmapWorkflowReader, MmapWorkflowStore, StorageError, StoreError,
    Version, WorkflowStoreWriter,
};
