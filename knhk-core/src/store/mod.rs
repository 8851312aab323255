//! The workflow store: many workflow specifications in one file, looked up
//! by [`WorkflowSpecId`](crate::WorkflowSpecId).
//!
//! - [`layout`]: the byte format (versions 1, 2 and 3), every offset and
//!   constant by name. `docs/store-format.md` describes it for other
//!   implementers.
//! - [`StoreView`]: reads a store from a byte slice: versions 3 and 2 open
//!   in O(1) and look up in O(1), one at a time or a batch with its memory
//!   latency overlapped ([`StoreView::get_many`]); version 1 (the design
//!   document's format) is scanned. No allocation, no `unsafe` in the
//!   parsing, and hostile input gets a [`StoreError`], never a panic.
//! - [`StoreWriter`]: writes version 3 into any [`Sink`], streaming.
//!
//! knhk-std adds the memory-mapped store, atomic file replacement and the
//! cached reader.

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
