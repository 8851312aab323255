//! Archived stores (flag `FLAG_ARCHIVED`): every workflow is an rkyv
//! archive behind an alignment prefix. The core checks the prefixes and
//! hands out the archives' bytes, aligned where they lie; knhk-std
//! validates and accesses them with rkyv.

use super::{StoreError, StoreView};
use crate::store::layout::{self, ArchiveFormat};
use crate::WorkflowSpecId;

impl<'a> StoreView<'a> {
    /// The rkyv format an archived store records (`None`: its workflows
    /// are plain bytes).
    pub fn archive_format(&self) -> Option<ArchiveFormat> {
        self.archive
    }

    /// The archive of the workflow with this id, `Ok(None)` if there is
    /// none: the entry's bytes after its alignment prefix, on an
    /// [`ARCHIVE_ALIGN`](layout::ARCHIVE_ALIGN) boundary of the file. A
    /// compressed store refuses with [`StoreError::Compressed`] (its
    /// archives are aligned in the decompressed bytes).
    pub fn get_archived(&self, id: &WorkflowSpecId) -> Result<Option<&'a [u8]>, StoreError> {
        #[cfg(feature = "store-zstd")]
        if self.zstd.is_some() {
            return Err(StoreError::Compressed);
        }
        match self.lookup(id)? {
            Some(data) => self.archived(data).map(Some),
            None => Ok(None),
        }
    }

    /// An entry's archive, after its prefix.
    fn archived(&self, data: &'a [u8]) -> Result<&'a [u8], StoreError> {
        layout::archived_payload(data).ok_or_else(|| StoreError::BadArchivedEntry {
            offset: self.entry_offset(data),
        })
    }

    /// `verify`'s part for archived stores: every uncompressed entry's
    /// prefix (a compressed entry's is checked where it is decompressed).
    pub(super) fn verify_archive_prefixes(&self) -> Result<(), StoreError> {
        #[cfg(feature = "store-zstd")]
        if self.zstd.is_some() {
            return Ok(());
        }
        let mut walk = self.entries();
        while let Some(entry) = walk.next_frame() {
            let (_, frame) = entry?;
            self.archived(&self.bytes[frame.data..frame.next])?;
        }
        Ok(())
    }
}
