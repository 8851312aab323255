//! What can go wrong opening, writing or reading a store file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use knhk_core::store::StoreError;
use knhk_core::WorkflowSpecId;

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
    /// A workflow with this id was already added to the store being written.
    DuplicateId {
        /// The id.
        id: WorkflowSpecId,
    },
    /// The id is reserved by the store format.
    ReservedId {
        /// The id.
        id: WorkflowSpecId,
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
            StorageError::DuplicateId { id } => {
                write!(f, "workflow {id} was already added to this store")
            }
            StorageError::ReservedId { id } => {
                write!(f, "id {id} is reserved by the store format")
            }
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Corrupt { source, .. } => Some(source),
            _ => None,
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
