//! [`MmapWorkflowReader`]: open stores cached by path, remapped when the
//! file is replaced.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::error::{io_error, StorageError};
use super::map::MmapWorkflowStore;

/// What identifies a file's current contents: replacing the file (a
/// rename over it) changes its inode, and rewriting changes size or time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> Result<FileIdentity, StorageError> {
        let meta = fs::metadata(path).map_err(io_error(path, "read the metadata of"))?;
        Ok(FileIdentity {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino())
            },
        })
    }
}

/// Opens stores and keeps them open: a second load of the same file (by
/// canonical path) returns the same mapping, unless the file was replaced
/// since, in which case the new file is mapped.
///
/// ```
/// # use knhk_std::store::{MmapWorkflowReader, WorkflowStoreWriter};
/// # let dir = std::env::temp_dir().join(format!("knhk-doc-reader-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("workflows.bin");
/// # WorkflowStoreWriter::create(&path)?.finish()?;
/// let reader = MmapWorkflowReader::new();
/// let store = reader.load(&path)?;
/// let again = reader.load(&path)?;
/// assert!(std::sync::Arc::ptr_eq(&store, &again));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct MmapWorkflowReader {
    cache: Mutex<HashMap<PathBuf, (FileIdentity, Arc<MmapWorkflowStore>)>>,
}

impl MmapWorkflowReader {
    /// An empty cache.
    pub fn new() -> MmapWorkflowReader {
        MmapWorkflowReader::default()
    }

    /// The store at `path`: from the cache if the file is unchanged,
    /// otherwise newly mapped (and cached). Takes `&self`: share one reader
    /// between threads.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Arc<MmapWorkflowStore>, StorageError> {
        let path = path.as_ref();
        let canonical = fs::canonicalize(path).map_err(io_error(path, "find"))?;
        let identity = FileIdentity::of(&canonical)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, store)) = cache.get(&canonical) {
            if *known == identity {
                return Ok(Arc::clone(store));
            }
        }
        let store = Arc::new(MmapWorkflowStore::new(&canonical)?);
        // A cached store serves many lookups: have its index read in now.
        store.prefetch_index();
        cache.insert(canonical, (identity, Arc::clone(&store)));
        Ok(store)
    }

    /// The design document's name for [`load`](Self::load).
    pub fn load_store(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<Arc<MmapWorkflowStore>, StorageError> {
        self.load(path)
    }

    /// How many stores are cached.
    pub fn cached(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl fmt::Debug for MmapWorkflowReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapWorkflowReader")
            .field("cached", &self.cached())
            .finish()
    }
}
