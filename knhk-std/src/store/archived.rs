//! Typed workflows straight from the mapped file (feature `rkyv`): each
//! workflow an rkyv archive, aligned in the file, so that a lookup plus
//! validation hands back `&Archived<T>` with nothing parsed and nothing
//! allocated.
//!
//! ```
//! use knhk_std::store::rkyv::{Archive, Deserialize, Serialize};
//! use knhk_std::store::{MmapWorkflowStore, WorkflowStoreWriter};
//! use knhk_std::WorkflowSpecId;
//!
//! #[derive(Archive, Serialize, Deserialize)]
//! #[rkyv(crate = knhk_std::store::rkyv)]
//! struct Spec {
//!     name: String,
//!     patterns: Vec<u8>,
//! }
//!
//! # let dir = std::env::temp_dir().join(format!("knhk-doc-rkyv-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let path = dir.join("typed.store");
//! let id = WorkflowSpecId::from_bytes([7; 16]);
//! let mut writer = WorkflowStoreWriter::create(&path)?;
//! writer.add_archived(id, &Spec { name: "approve".into(), patterns: vec![1, 2, 4] })?;
//! writer.finish()?;
//!
//! let store = MmapWorkflowStore::new(&path)?;
//! let spec = store.get_archived::<Spec>(&id)?.expect("in the store");
//! assert_eq!(spec.name, "approve");
//! assert_eq!(spec.patterns.as_slice(), &[1, 2, 4]);
//!
//! // Validate every archive once; then each access is a lookup.
//! let typed = store.verify_archived::<Spec>()?;
//! assert_eq!(typed.get(&id).map(|s| s.patterns.len()), Some(3));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use knhk_core::store::layout::{self, ArchiveFormat};
use knhk_core::store::Stored;
use knhk_core::WorkflowSpecId;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Portable, Serialize};

use super::{MmapWorkflowStore, StorageError, WorkflowStoreWriter};

/// An archive buffer aligned as the store aligns archives.
pub type ArchiveBuffer = AlignedVec<{ layout::ARCHIVE_ALIGN }>;

/// The rkyv format this build writes and reads: rkyv 0.8, and the
/// endianness, pointer width and alignment its features chose.
pub fn archive_format() -> ArchiveFormat {
    static FORMAT: OnceLock<ArchiveFormat> = OnceLock::new();
    *FORMAT.get_or_init(|| {
        // An archived 1_u32 starts with its low byte when little-endian.
        let one = rkyv::to_bytes::<rancor::Error>(&1_u32).ok();
        ArchiveFormat {
            major: 0,
            minor: 8,
            big_endian: one.as_deref().and_then(|b| b.first()) != Some(&1),
            pointer_width: core::mem::size_of::<rkyv::primitive::ArchivedUsize>() as u8,
            aligned: core::mem::align_of::<rkyv::primitive::ArchivedU32>() > 1,
        }
    })
}

/// Why a typed read or write failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The store's workflows are plain bytes, not archives.
    NotArchived,
    /// The store was written in another rkyv format.
    Format {
        /// This build's.
        expected: ArchiveFormat,
        /// The store's.
        found: ArchiveFormat,
    },
    /// rkyv's validation refused the bytes: damaged, forged, or an archive
    /// of another type.
    Invalid {
        /// rkyv's reason.
        reason: String,
    },
    /// The value could not be serialized.
    Serialize {
        /// rkyv's reason.
        reason: String,
    },
    /// A compressed store's archives lie compressed in the file: read them
    /// into a buffer ([`MmapWorkflowStore::read_archived_into`]).
    Compressed,
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::NotArchived => f.write_str("the store's workflows are not rkyv archives"),
            ArchiveError::Format { expected, found } => write!(
                f,
                "the store's archives are {found}; this build reads {expected}"
            ),
            ArchiveError::Invalid { reason } => write!(f, "invalid archive: {reason}"),
            ArchiveError::Serialize { reason } => write!(f, "cannot archive the value: {reason}"),
            ArchiveError::Compressed => f.write_str(
                "the store is compressed: read archives into a buffer (read_archived_into)",
            ),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// Types whose archives a store can hold and hand back checked: what
/// `rkyv::access` needs of `T::Archived`.
pub trait Archived:
    Archive<Archived: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>>
{
}

impl<T> Archived for T where
    T: Archive<Archived: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>>
{
}

impl WorkflowStoreWriter {
    /// Adds `value` as an rkyv archive, aligned to 16 bytes where it will
    /// be read (in the file, so in the map; in the decompressed bytes of a
    /// compressed store). The first workflow added decides: a store holds
    /// archives (added with this) or plain workflows (added with
    /// [`add`](Self::add)), and refuses the other kind.
    pub fn add_archived<T>(&mut self, id: WorkflowSpecId, value: &T) -> Result<(), StorageError>
    where
        T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
    {
        let archive =
            rkyv::to_bytes::<rancor::Error>(value).map_err(|e| StorageError::Archive {
                path: self.path().to_path_buf(),
                id: Some(id),
                source: ArchiveError::Serialize {
                    reason: e.to_string(),
                },
            })?;
        let k = self.archive_prefix(archive_format())?;
        let mut entry = Vec::with_capacity(usize::from(k) + archive.len());
        entry.push(k);
        entry.resize(usize::from(k), 0);
        entry.extend_from_slice(&archive);
        self.add_entry(id, &entry)
    }
}

impl MmapWorkflowStore {
    /// Checks that the store holds archives in this build's format.
    fn archives(&self, id: Option<&WorkflowSpecId>) -> Result<(), StorageError> {
        let expected = archive_format();
        match self.view().archive_format() {
            Some(found) if found == expected => Ok(()),
            Some(found) => Err(self.archive_error(id, ArchiveError::Format { expected, found })),
            None => Err(self.archive_error(id, ArchiveError::NotArchived)),
        }
    }

    fn archive_error(&self, id: Option<&WorkflowSpecId>, source: ArchiveError) -> StorageError {
        StorageError::Archive {
            path: self.path().to_path_buf(),
            id: id.copied(),
            source,
        }
    }

    /// The workflow with this id as `&T::Archived`, straight from the map
    /// and validated by rkyv's bytecheck (a damaged or forged archive is an
    /// error, never undefined behaviour); `Ok(None)` if there is none.
    /// Nothing is parsed or allocated. A compressed store refuses
    /// ([`ArchiveError::Compressed`]): use
    /// [`read_archived_into`](Self::read_archived_into).
    pub fn get_archived<T: Archived>(
        &self,
        id: &WorkflowSpecId,
    ) -> Result<Option<&T::Archived>, StorageError> {
        self.archives(Some(id))?;
        if self.is_compressed() {
            return Err(self.archive_error(Some(id), ArchiveError::Compressed));
        }
        let Some(bytes) = self.view().get_archived(id).map_err(|e| self.corrupt(e))? else {
            return Ok(None);
        };
        rkyv::access::<T::Archived, rancor::Error>(bytes)
            .map(Some)
            .map_err(|e| self.invalid(id, e))
    }

    fn invalid(&self, id: &WorkflowSpecId, e: rancor::Error) -> StorageError {
        self.archive_error(
            Some(id),
            ArchiveError::Invalid {
                reason: e.to_string(),
            },
        )
    }

    /// The workflow with this id as `&T::Archived` in `buffer`: a
    /// compressed store's decompressed into it (its capacity reused), an
    /// uncompressed one's copied. Validated like
    /// [`get_archived`](Self::get_archived).
    pub fn read_archived_into<'b, T: Archived>(
        &self,
        id: &WorkflowSpecId,
        buffer: &'b mut ArchiveBuffer,
    ) -> Result<Option<&'b T::Archived>, StorageError> {
        self.archives(Some(id))?;
        let Some(stored) = self.get_stored(id).map_err(|e| self.corrupt(e))? else {
            return Ok(None);
        };
        buffer.clear();
        let start = match stored {
            Stored::Plain(data) => {
                let archive = layout::archived_payload(data).ok_or_else(|| {
                    self.corrupt(knhk_core::store::StoreError::BadArchivedEntry {
                        offset: self.offset_of(data),
                    })
                })?;
                buffer.extend_from_slice(archive);
                0
            }
            Stored::Zstd(frame) => {
                super::compress::Decoder::check_len(&frame)
                    .map_err(|e| self.decompress_error(id, e))?;
                buffer.resize(frame.len, 0);
                self.decoder()?
                    .decompress(&frame, buffer)
                    .map_err(|e| self.decompress_error(id, e))?;
                // The prefix put the archive on a 16-byte boundary of the
                // decompressed bytes, so of the buffer.
                let archive = layout::archived_payload(buffer).ok_or_else(|| {
                    self.corrupt(knhk_core::store::StoreError::BadArchivedEntry {
                        offset: self.offset_of(frame.frame),
                    })
                })?;
                buffer.len() - archive.len()
            }
        };
        let buffer: &'b ArchiveBuffer = buffer;
        rkyv::access::<T::Archived, rancor::Error>(&buffer[start..])
            .map(Some)
            .map_err(|e| self.invalid(id, e))
    }

    /// Validates every archive in the store as a `T` once (and the whole
    /// store, as [`verify`](Self::verify) does), and hands back a view
    /// whose lookups skip validation: each access is then a lookup. A
    /// compressed store refuses ([`ArchiveError::Compressed`]): its
    /// archives are validated as each read decompresses them.
    pub fn verify_archived<T: Archived>(&self) -> Result<VerifiedArchives<'_, T>, StorageError> {
        self.archives(None)?;
        if self.is_compressed() {
            return Err(self.archive_error(None, ArchiveError::Compressed));
        }
        self.verify()?;
        for entry in self.view().stored_entries() {
            let (id, stored) = entry.map_err(|e| self.corrupt(e))?;
            if let Stored::Plain(data) = stored {
                let archive = layout::archived_payload(data).ok_or_else(|| {
                    self.corrupt(knhk_core::store::StoreError::BadArchivedEntry {
                        offset: self.offset_of(data),
                    })
                })?;
                rkyv::access::<T::Archived, rancor::Error>(archive)
                    .map_err(|e| self.invalid(&id, e))?;
            }
        }
        Ok(VerifiedArchives {
            store: self,
            archive: PhantomData,
        })
    }

    /// Where `data` (a slice of the map) starts, less a frame: its entry.
    fn offset_of(&self, data: &[u8]) -> u64 {
        (data.as_ptr() as usize)
            .wrapping_sub(self.view().bytes().as_ptr() as usize)
            .wrapping_sub(layout::FRAME) as u64
    }
}

/// A store whose every archive was validated as a `T`: made by
/// [`MmapWorkflowStore::verify_archived`]. Its lookups hand out
/// `&T::Archived` without validating again.
pub struct VerifiedArchives<'s, T> {
    store: &'s MmapWorkflowStore,
    archive: PhantomData<fn() -> T>,
}

impl<'s, T: Archived> VerifiedArchives<'s, T> {
    /// The workflow with this id, if there is one: a lookup, nothing more.
    #[inline]
    pub fn get(&self, id: &WorkflowSpecId) -> Option<&'s T::Archived> {
        let bytes = self.store.view().get_archived(id).ok()??;
        // `verify_archived` checked this store (whose map cannot change
        // while mapped: the module's contract) with `verify`, so every
        // lookup leads to one of its entries, and then validated every
        // entry's archive (the bytes after its prefix, which is what
        // `get_archived` hands out) as a `T::Archived` with bytecheck,
        // alignment included.
        // SAFETY: `bytes` is one of those validated archives, and `self`
        // borrows the store (so the map) for `'s`.
        Some(unsafe { rkyv::access_unchecked::<T::Archived>(bytes) })
    }

    /// The store.
    pub fn store(&self) -> &'s MmapWorkflowStore {
        self.store
    }
}

impl<T> Clone for VerifiedArchives<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for VerifiedArchives<'_, T> {}

impl<T> fmt::Debug for VerifiedArchives<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedArchives")
            .field("store", &self.store.path())
            .finish()
    }
}
