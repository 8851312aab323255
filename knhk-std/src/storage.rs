//! The design document's `storage` paths (feature `memory-v2`, on by
//! default): [`crate::store`] under the design's name.

pub use crate::store::{
    GrowingIndex, IoSink, LookupError, LookupMany, MmapWorkflowReader, MmapWorkflowStore,
    StorageError, StoreError, Version, WorkflowStoreWriter,
};
