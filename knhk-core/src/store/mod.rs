//! The workflow store: many workflow specifications in one file, looked up
//! by [`WorkflowSpecId`](crate::WorkflowSpecId).
//!
//! - [`layout`]: the byte format (versions 1 to 4), every offset and
//!   constant by name. `docs/store-format.md` describes it for other
//!   implementers.
//! - [`StoreView`]: reads a store from a byte slice: versions 3 and 2 open
//!   in O(1) and look up in O(1), one at a time or a batch with its memory
//!   latency overlapped ([`StoreView::get_many`]); version 1 (the design
//!   document's format) is scanned. No allocation, no `unsafe` in the
//!   parsing, and hostile input gets a [`StoreError`], never a panic.
//! - [`StoreWriter`]: writes version 3 into any [`Sink`], streaming.
//! - With feature `store-zstd`, version 4: stores whose workflows are zstd
//!   frames. The view parses them and hands out each frame with its
//!   uncompressed length (`StoreView::get_stored`); the writer takes frames
//!   made elsewhere (`StoreWriter::new_compressed`). The core never
//!   decompresses: knhk-std does. Without the feature, a version-4 file is
//!   refused as an unsupported version.
//!
//! knhk-std adds the memory-mapped store, atomic file replacement, the
//! cached reader, and compression.

pub mod layout;
mod prefetch;
mod reader;
mod writer;

pub use reader::{Entries, GetMany, StoreError, StoreView, Version};
#[cfg(feature = "store-zstd")]
pub use reader::{Stored, StoredEntries, ZstdFrame, ZstdInfo};
pub use writer::{
    rehash, IndexSlot, IndexStorage, Sink, SinkFull, SliceSink, StoreWriter, WriteError,
};

#[cfg(test)]
mod tests;
