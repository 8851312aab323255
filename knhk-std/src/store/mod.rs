//! Workflow stores in files (feature `memory-v2`, on by default):
//! [`MmapWorkflowStore`] maps one, [`MmapWorkflowReader`] caches open ones,
//! [`WorkflowStoreWriter`] writes one and puts it in place atomically.
//!
//! The format, its reader over bytes and its streaming writer are
//! knhk-core's ([`knhk_core::store`]); this module maps files, replaces
//! them atomically, and caches open stores.
//!
//! # The memory-map contract
//!
//! A mapped file's bytes are the file's bytes: if another process
//! truncates the file or rewrites it in place while it is mapped, reads of
//! the mapping may see torn data or fault (`SIGBUS`). knhk never does
//! either: [`WorkflowStoreWriter`] writes a new file next to the old one and
//! renames it over, so a mapped store keeps seeing the file it opened, and
//! [`MmapWorkflowReader`] notices the replacement and maps the new one.
//! Other programs that write store files must do the same.

#[cfg(feature = "rkyv")]
mod archived;
#[cfg(all(test, feature = "rkyv"))]
mod archived_tests;
mod cache;
mod compress;
#[cfg(all(test, not(miri)))]
mod compressed_tests;
mod error;
mod map;
#[cfg(all(test, not(miri)))]
mod tests;
mod writer;

#[cfg(feature = "rkyv")]
pub use archived::{archive_format, ArchiveBuffer, ArchiveError, Archived, VerifiedArchives};
pub use cache::MmapWorkflowReader;
pub use compress::{Compression, DecompressError, WorkflowArena};
pub use error::StorageError;
pub use knhk_core::store::layout::ArchiveFormat;
pub use knhk_core::store::{StoreError, Stored, Version, ZstdFrame, ZstdInfo};
pub use map::{GetMany, MmapWorkflowStore};
/// The rkyv this crate reads and writes archives with (feature `rkyv`):
/// derive with `#[rkyv(crate = knhk_std::store::rkyv)]`, or depend on the
/// same rkyv 0.8 yourself.
#[cfg(feature = "rkyv")]
pub use rkyv;
pub use writer::{GrowingIndex, IoSink, WorkflowStoreWriter};
