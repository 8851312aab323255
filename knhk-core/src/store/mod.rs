//! The workflow store: many workflow specifications in one file, looked up
//! by [`WorkflowSpecId`](crate::WorkflowSpecId).
//!
//! - [`layout`]: the byte format (versions 1 and 2), every offset and
//!   constant by name. `docs/store-format.md` describes it for other
//!   implementers.
//! - [`StoreView`]: reads a store from a byte slice: version 2 opens in
//!   O(1) and looks up in O(1); version 1 (the design document's format) is
//!   scanned. No allocation, no `unsafe`, and hostile input gets a
//!   [`StoreError`], never a panic.
//! - [`StoreWriter`]: writes version 2 into any [`Sink`], streaming.
//!
//! knhk-std adds the memory-mapped store, atomic file replacement and the
//! cached reader.

pub mod layout;
mod reader;
mod writer;

pub use reader::{Entries, StoreError, StoreView, Version};
pub use writer::{
    rehash, IndexSlot, IndexStorage, Sink, SinkFull, SliceSink, StoreWriter, WriteError,
};

#[cfg(test)]
mod tests;
