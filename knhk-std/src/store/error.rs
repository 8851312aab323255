//! What can go wrong opening, writing or reading a store file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use knhk_core::store::{StoreError, WriteError};
use knhk_core::WorkflowSpecId;

use super::compress::DecompressError;

/// A store file could not be opened or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// The file system refused.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The file is not a valid store.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: StoreError,
    },
    /// The store's writer refused: a duplicate or reserved id, or a store
    /// past what the index can address (knhk-core's [`WriteError`]; its
    /// `Sink` failures are reported as [`Io`](StorageError::Io) instead).
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the writer refused.
        source: WriteError<io::Error>,
    },
    /// An archived workflow (or the store's archive format, with no `id`)
    /// could not be read or written as a typed value (feature `rkyv`).
    #[cfg(feature = "rkyv")]
    Archive {
        /// The file.
        path: PathBuf,
        /// The workflow, if the error is about one.
        id: Option<WorkflowSpecId>,
        /// What went wrong.
        source: super::archived::ArchiveError,
    },
    /// A compressed workflow (or the store's dictionary, with no `id`)
    /// could not be decompressed.
    Decompress {
        /// The file.
        path: PathBuf,
        /// The workflow (`None`: the store's dictionary).
        id: Option<WorkflowSpecId>,
        /// What went wrong.
        source: DecompressError,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            StorageError::Corrupt { path, source } => write!(f, "{}: {source}", path.display()),
            StorageError::Write { path, source } => write!(f, "{}: {source}", path.display()),
            StorageError::Decompress {
                path,
                id: Some(id),
                source,
            } => write!(f, "{}: workflow {id}: {source}", path.display()),
            #[cfg(feature = "rkyv")]
            StorageError::Archive {
                path,
                id: Some(id),
                source,
            } => write!(f, "{}: workflow {id}: {source}", path.display()),
            #[cfg(feature = "rkyv")]
            StorageError::Archive {
                path,
                id: None,
                source,
            } => write!(f, "{}: {source}", path.display()),
            StorageError::Decompress {
                path,
                id: None,
                source,
            } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Corrupt { source, .. } => Some(source),
            StorageError::Write { source, .. } => Some(source),
            StorageError::Decompress { source, .. } => Some(source),
            #[cfg(feature = "rkyv")]
            StorageError::Archive { source, .. } => Some(source),
        }
    }
}

pub(super) fn io_error<'p>(
    path: &'p Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}
