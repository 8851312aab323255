//! Memory-mapped workflow stores: [`MmapWorkflowStore`],
//! [`MmapWorkflowReader`] and [`WorkflowStoreWriter`].
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

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use knhk_core::store::{
    rehash, GetMany, IndexSlot, IndexStorage, Sink, StoreError, StoreView, StoreWriter, Version,
    WriteError,
};
use knhk_core::WorkflowSpecId;
use memmap2::Mmap;

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

fn io_error<'p>(
    path: &'p Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Why a lookup found no usable workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No workflow has this id.
    NotFound,
    /// The workflow exists but is not UTF-8 text.
    NotUtf8 {
        /// Where the first invalid byte is.
        valid_up_to: usize,
    },
    /// The lookup ran into damage in the file.
    Corrupt(StoreError),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("no workflow has this id"),
            LookupError::NotUtf8 { valid_up_to } => write!(
                f,
                "the workflow is not UTF-8 text (invalid byte at {valid_up_to})"
            ),
            LookupError::Corrupt(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for LookupError {}

/// A workflow store mapped into memory.
///
/// Version-3 and version-2 files open in O(1) and look up through their
/// index; version-1 files (the design document's format) are scanned once
/// at open into a hash index. A lookup in a version-3 file reads one
/// 64-byte index bucket and the entry; [`lookup_many`](Self::lookup_many)
/// overlaps the memory latency of a whole batch of lookups. Lookups return slices of the mapping: no copy. The data is
/// advised as randomly accessed (`MADV_RANDOM`), and
/// [`prefetch_index`](Self::prefetch_index) asks for the index to be read in.
///
/// ```
/// use knhk_std::storage::{MmapWorkflowStore, WorkflowStoreWriter};
/// use knhk_std::WorkflowSpecId;
///
/// let dir = std::env::temp_dir().join(format!("knhk-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("workflows.bin");
/// let spec_id = WorkflowSpecId::from_bytes([1; 16]);
///
/// let mut writer = WorkflowStoreWriter::create(&path)?;
/// writer.add(spec_id, b"<workflow name='approve'/>")?;
/// writer.finish()?;
///
/// // Direct store access
/// let store = MmapWorkflowStore::new(&path)?;
/// let workflow = store.get_workflow(&spec_id);
/// let workflows = store.list_workflows();
/// assert_eq!(workflow, Some(&b"<workflow name='approve'/>"[..]));
/// assert_eq!(workflows, vec![spec_id]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MmapWorkflowStore {
    // Declared first, so dropped before the map it borrows.
    view: StoreView<'static>,
    /// Version 1 only: where each workflow's data is in the map.
    scanned: Option<HashMap<WorkflowSpecId, (usize, usize)>>,
    path: PathBuf,
    _map: Option<Mmap>,
}

impl MmapWorkflowStore {
    /// Maps and parses the store at `path`.
    pub fn new(path: impl AsRef<Path>) -> Result<MmapWorkflowStore, StorageError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_error(path, "open"))?;
        let len = file
            .metadata()
            .map_err(io_error(path, "read the metadata of"))?
            .len();
        // An empty file cannot be mapped on every platform; it is an empty
        // version-1 store.
        let map = if len == 0 {
            None
        } else {
            // The length read above is passed on, so that memmap2 does not
            // ask the file system for it again (one system call less).
            let len = usize::try_from(len).map_err(|_| {
                io_error(path, "memory-map")(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the file is larger than this platform's address space",
                ))
            })?;
            Some(
                // SAFETY: sound while nobody truncates or rewrites the file
                // (this module's contract; knhk's writer replaces files
                // atomically), and `len` is the file's length.
                unsafe { memmap2::MmapOptions::new().len(len).map(&file) }
                    .map_err(io_error(path, "memory-map"))?,
            )
        };
        #[cfg(unix)]
        if let Some(map) = &map {
            // Lookups land anywhere: no read-ahead for the data. Advised
            // before the first touch, so that even the faults of parsing do
            // not read ahead. (O(1): it only marks the mapping. Will-need for
            // the index walks the index's pages, so it is `prefetch_index`,
            // which the caching reader calls.)
            let _ = map.advise(memmap2::Advice::Random);
        }
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
        // The view is declared before the map in `Self`, so dropped first,
        // and it is never handed out as 'static: methods borrow from `&self`.
        // SAFETY: the mapping lives in `_map` as long as `self` and does not
        // move when `self` moves (the kernel's memory, not the heap's).
        let bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        let corrupt = |source| StorageError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        let view = StoreView::parse(bytes).map_err(corrupt)?;
        let scanned = if view.version() == Version::V1 {
            let mut index = HashMap::with_capacity(view.len());
            for entry in view.entries() {
                let (id, data) = entry.map_err(corrupt)?;
                let start = data.as_ptr() as usize - bytes.as_ptr() as usize;
                if index.insert(id, (start, data.len())).is_some() {
                    let offset = (start - knhk_core::store::layout::FRAME) as u64;
                    return Err(corrupt(StoreError::DuplicateId { id, offset }));
                }
            }
            Some(index)
        } else {
            None
        };

        Ok(MmapWorkflowStore {
            view,
            scanned,
            path: path.to_path_buf(),
            _map: map,
        })
    }

    /// The workflow with this id, if there is one (damage is treated as
    /// absence; [`lookup`](Self::lookup) says which).
    #[inline]
    pub fn get_workflow(&self, id: &WorkflowSpecId) -> Option<&[u8]> {
        self.lookup(id).ok()
    }

    /// The workflow as text, if there is one and it is UTF-8.
    pub fn get_workflow_str(&self, id: &WorkflowSpecId) -> Option<&str> {
        self.lookup_str(id).ok()
    }

    /// The workflow with this id, or why not.
    #[inline]
    pub fn lookup(&self, id: &WorkflowSpecId) -> Result<&[u8], LookupError> {
        match &self.scanned {
            Some(index) => {
                let &(start, len) = index.get(id).ok_or(LookupError::NotFound)?;
                Ok(&self.view.bytes()[start..start + len])
            }
            None => found(self.view.try_get(id)),
        }
    }

    /// Looks up a batch of ids, in order, with their memory latency
    /// overlapped: while one workflow is handed out, the index lines and
    /// entries of the next lookups are already on their way into the cache
    /// (see [`StoreView::get_many`]). An engine knows a batch's ids before
    /// it runs the batch; this is the fastest way to fetch its specs. Each
    /// item is what [`lookup`](Self::lookup) returns for that id.
    ///
    /// ```
    /// use knhk_std::storage::{MmapWorkflowStore, WorkflowStoreWriter};
    /// use knhk_std::storage::LookupError;
    /// use knhk_std::WorkflowSpecId;
    ///
    /// # let dir = std::env::temp_dir().join(format!("knhk-doc-many-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("workflows.bin");
    /// let ids: Vec<_> = (0..100_u8).map(|n| WorkflowSpecId::from_bytes([n; 16])).collect();
    /// let mut writer = WorkflowStoreWriter::create(&path)?;
    /// for (n, id) in ids.iter().enumerate() {
    ///     writer.add(*id, format!("workflow {n}").as_bytes())?;
    /// }
    /// writer.finish()?;
    ///
    /// let store = MmapWorkflowStore::new(&path)?;
    /// let batch = [ids[42], ids[7], WorkflowSpecId::from_bytes([200; 16])];
    /// let mut specs = store.lookup_many(&batch);
    /// assert_eq!(specs.next(), Some(Ok(&b"workflow 42"[..])));
    /// assert_eq!(specs.next(), Some(Ok(&b"workflow 7"[..])));
    /// assert_eq!(specs.next(), Some(Err(LookupError::NotFound)));
    /// assert_eq!(specs.next(), None);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lookup_many<'s, 'i>(&'s self, ids: &'i [WorkflowSpecId]) -> LookupMany<'s, 'i> {
        LookupMany {
            inner: match &self.scanned {
                Some(_) => ManyInner::Scanned {
                    store: self,
                    ids: ids.iter(),
                },
                None => ManyInner::Indexed(self.view.get_many(ids)),
            },
        }
    }

    /// Starts loading the index line that a lookup of `id` will read, and
    /// returns at once: for engines that interleave lookups with their own
    /// work, call it a few tasks ahead. A hint: it never fails.
    #[inline]
    pub fn prefetch(&self, id: &WorkflowSpecId) {
        self.view.prefetch(id);
    }

    /// The workflow as text, or why not.
    pub fn lookup_str(&self, id: &WorkflowSpecId) -> Result<&str, LookupError> {
        let data = self.lookup(id)?;
        std::str::from_utf8(data).map_err(|e| LookupError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })
    }

    /// The ids of all workflows, in file order.
    pub fn list_workflows(&self) -> Vec<WorkflowSpecId> {
        self.view
            .entries()
            .filter_map(Result::ok)
            .map(|(id, _)| id)
            .collect()
    }

    /// Every workflow, in file order.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = Result<(WorkflowSpecId, &[u8]), StoreError>> + '_ {
        self.view.entries()
    }

    /// Number of workflows.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the store has no workflows.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The file's format version.
    pub fn version(&self) -> Version {
        self.view.version()
    }

    /// Checks every checksum and that the index and entries agree.
    pub fn verify(&self) -> Result<(), StoreError> {
        self.view.verify()
    }

    /// Asks the kernel to read the index into memory now (`MADV_WILLNEED`),
    /// so the first lookups do not wait for it. Costs time in proportion to
    /// the index size (the kernel walks its pages), which is why opening a
    /// store does not do it; [`MmapWorkflowReader`] does, once per mapping.
    pub fn prefetch_index(&self) {
        #[cfg(unix)]
        if let (Some(map), Some(range)) = (&self._map, self.view.index_range()) {
            let _ = map.advise_range(memmap2::Advice::WillNeed, range.start, range.len());
        }
    }

    /// The file this store maps.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn size(&self) -> usize {
        self.view.bytes().len()
    }
}

impl fmt::Debug for MmapWorkflowStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapWorkflowStore")
            .field("path", &self.path)
            .field("version", &self.version())
            .field("workflows", &self.len())
            .finish()
    }
}

#[inline]
fn found(result: Result<Option<&[u8]>, StoreError>) -> Result<&[u8], LookupError> {
    match result {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(LookupError::NotFound),
        Err(e) => Err(LookupError::Corrupt(e)),
    }
}

/// The lookups of a batch of ids: made by
/// [`MmapWorkflowStore::lookup_many`].
#[derive(Debug)]
pub struct LookupMany<'s, 'i> {
    inner: ManyInner<'s, 'i>,
}

// The indexed variant carries the ring of lookups in flight; boxing it
// would cost a heap allocation per batch, which is what this avoids.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum ManyInner<'s, 'i> {
    Indexed(GetMany<'s, 'i>),
    Scanned {
        store: &'s MmapWorkflowStore,
        ids: std::slice::Iter<'i, WorkflowSpecId>,
    },
}

impl<'s> Iterator for LookupMany<'s, '_> {
    type Item = Result<&'s [u8], LookupError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            ManyInner::Indexed(many) => many.next().map(found),
            ManyInner::Scanned { store, ids } => ids.next().map(|id| store.lookup(id)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            ManyInner::Indexed(many) => many.size_hint(),
            ManyInner::Scanned { ids, .. } => ids.size_hint(),
        }
    }
}

impl ExactSizeIterator for LookupMany<'_, '_> {}

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
/// # use knhk_std::storage::{MmapWorkflowReader, WorkflowStoreWriter};
/// # let dir = std::env::temp_dir().join(format!("knhk-doc-reader-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("workflows.bin");
/// # WorkflowStoreWriter::create(&path)?.finish()?;
/// let mut reader = MmapWorkflowReader::new();
/// let store = reader.load_store(&path)?;
/// let again = reader.load_store(&path)?;
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
    /// otherwise newly mapped (and cached).
    pub fn load_store(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<Arc<MmapWorkflowStore>, StorageError> {
        self.load(path)
    }

    /// [`load_store`](Self::load_store) through a shared reference.
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

/// Any `io::Write` (a socket, a pipe, a `Vec<u8>`) as the [`Sink`] of
/// knhk-core's streaming [`StoreWriter`], for stores that are not files.
///
/// ```
/// use knhk_core::store::{StoreView, StoreWriter};
/// use knhk_std::storage::{GrowingIndex, IoSink};
/// use knhk_std::WorkflowSpecId;
///
/// let mut out = Vec::new();
/// let mut writer = StoreWriter::new(IoSink(&mut out), GrowingIndex::new())?;
/// writer.add(WorkflowSpecId::from_bytes([3; 16]), b"spec")?;
/// writer.finish()?;
/// let store = StoreView::parse(&out)?;
/// assert_eq!(store.get(&WorkflowSpecId::from_bytes([3; 16])), Some(&b"spec"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct IoSink<W>(pub W);

impl<W: Write> Sink for IoSink<W> {
    type Error = io::Error;
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
}

/// Index storage for [`StoreWriter`] that grows as workflows are added
/// (doubling and rehashing), so no capacity needs choosing up front.
#[derive(Debug)]
pub struct GrowingIndex(Vec<IndexSlot>);

impl GrowingIndex {
    /// A small index that grows as needed.
    pub fn new() -> GrowingIndex {
        GrowingIndex(vec![IndexSlot::EMPTY; 64])
    }
}

impl Default for GrowingIndex {
    fn default() -> Self {
        GrowingIndex::new()
    }
}

impl IndexStorage for GrowingIndex {
    fn slots(&mut self) -> &mut [IndexSlot] {
        &mut self.0
    }
    fn grow(&mut self) -> bool {
        let mut bigger = vec![IndexSlot::EMPTY; self.0.len() * 2];
        rehash(&self.0, &mut bigger);
        self.0 = bigger;
        true
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a version-3 store file, replacing `path` atomically on
/// [`finish`](Self::finish): the workflows go to a temporary file in the
/// same directory, which is flushed, synced, renamed over `path`, and the
/// directory synced. A crash at any point leaves either the old file or the
/// new one at `path`, never a torn one. Dropped without `finish`, the
/// writer deletes its temporary file and `path` is untouched.
pub struct WorkflowStoreWriter {
    writer: Option<StoreWriter<IoSink<BufWriter<File>>, GrowingIndex>>,
    temp: PathBuf,
    path: PathBuf,
}

impl WorkflowStoreWriter {
    /// Starts writing a store that will replace `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<WorkflowStoreWriter, StorageError> {
        let path = path.as_ref().to_path_buf();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map_or_else(|| "store".into(), |n| n.to_string_lossy());
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_error(&temp, "create"))?;
        let sink = IoSink(BufWriter::with_capacity(1 << 20, file));
        let writer =
            StoreWriter::new(sink, GrowingIndex::new()).map_err(|e| write_error(e, &temp))?;
        Ok(WorkflowStoreWriter {
            writer: Some(writer),
            temp,
            path,
        })
    }

    /// Adds a workflow. Duplicate and reserved ids are refused.
    pub fn add(&mut self, id: WorkflowSpecId, data: &[u8]) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().ok_or_else(|| StorageError::Io {
            path: self.temp.clone(),
            action: "write to",
            source: io::Error::other("an earlier write failed"),
        })?;
        match writer.add(id, data) {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(e, WriteError::Sink(_)) {
                    self.writer = None; // the output is incomplete
                }
                Err(write_error(e, &self.temp))
            }
        }
    }

    /// Workflows added so far.
    pub fn len(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.len())
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the index and trailer, syncs, and atomically replaces the
    /// destination. Returns the store's size in bytes.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        let writer = self.writer.take().ok_or_else(|| StorageError::Io {
            path: self.temp.clone(),
            action: "write to",
            source: io::Error::other("an earlier write failed"),
        })?;
        let (IoSink(buffered), len) = writer
            .finish_into_sink()
            .map_err(|e| write_error(e, &self.temp))?;
        let file = buffered.into_inner().map_err(|e| StorageError::Io {
            path: self.temp.clone(),
            action: "flush",
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_error(&self.temp, "sync"))?;
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(io_error(&self.path, "replace"))?;
        #[cfg(unix)]
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // The rename is durable once the directory is synced.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error(dir, "sync the directory"))?;
        }
        Ok(len)
    }
}

impl Drop for WorkflowStoreWriter {
    fn drop(&mut self) {
        // Not finished (or `finish` failed before the rename): the
        // temporary file is garbage. After a rename it no longer exists.
        let _ = fs::remove_file(&self.temp);
    }
}

impl fmt::Debug for WorkflowStoreWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowStoreWriter")
            .field("path", &self.path)
            .field("workflows", &self.len())
            .finish()
    }
}

fn write_error(e: WriteError<io::Error>, temp: &Path) -> StorageError {
    match e {
        WriteError::Sink(source) => StorageError::Io {
            path: temp.to_path_buf(),
            action: "write to",
            source,
        },
        WriteError::DuplicateId { id } => StorageError::DuplicateId { id },
        WriteError::ReservedId { id } => StorageError::ReservedId { id },
        // The Vec index grows, so the index errors cannot happen; these and
        // a store past the index's 256 TiB reach are reported as I/O.
        other => StorageError::Io {
            path: temp.to_path_buf(),
            action: "index",
            source: io::Error::other(other.to_string()),
        },
    }
}

// Miri cannot map files (no mmap shim), so these run natively only; the
// format's reader over bytes is knhk-core's, which Miri checks.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("knhk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn id(n: u8) -> WorkflowSpecId {
        WorkflowSpecId::from_bytes([n; 16])
    }

    #[test]
    fn write_map_and_look_up() {
        let dir = temp_dir("mmap");
        let path = dir.join("w.bin");
        let mut w = WorkflowStoreWriter::create(&path).unwrap();
        for n in 0..200_u8 {
            w.add(id(n), format!("workflow {n}").as_bytes()).unwrap();
        }
        assert!(matches!(
            w.add(id(5), b"again"),
            Err(StorageError::DuplicateId { .. })
        ));
        w.add(id(250), &[0xFF, 0xFE]).unwrap();
        w.finish().unwrap();

        let store = MmapWorkflowStore::new(&path).unwrap();
        assert_eq!(store.len(), 201);
        assert_eq!(store.version(), Version::V3);
        let ids: Vec<_> = (0..=255).map(id).collect();
        let many: Vec<_> = store.lookup_many(&ids).collect();
        let one: Vec<_> = ids.iter().map(|i| store.lookup(i)).collect();
        assert_eq!(many, one);
        assert_eq!(store.get_workflow_str(&id(7)), Some("workflow 7"));
        assert_eq!(store.lookup(&id(251)), Err(LookupError::NotFound));
        assert_eq!(
            store.lookup_str(&id(250)),
            Err(LookupError::NotUtf8 { valid_up_to: 0 })
        );
        assert_eq!(store.list_workflows().len(), 201);
        store.verify().unwrap();
        assert!(
            fs::read_dir(&dir).unwrap().count() == 1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_1_files_and_empty_files_open() {
        let dir = temp_dir("v1");
        let path = dir.join("v1.bin");
        let mut bytes = Vec::new();
        for n in 1..=3_u8 {
            bytes.extend_from_slice(&[n; 16]);
            bytes.extend_from_slice(&2_u64.to_le_bytes());
            bytes.extend_from_slice(&[n, n]);
        }
        fs::write(&path, &bytes).unwrap();
        let store = MmapWorkflowStore::new(&path).unwrap();
        assert_eq!((store.version(), store.len()), (Version::V1, 3));
        assert_eq!(store.get_workflow(&id(2)), Some(&[2, 2][..]));
        let many: Vec<_> = store.lookup_many(&[id(3), id(9)]).collect();
        assert_eq!(many, vec![Ok(&[3, 3][..]), Err(LookupError::NotFound)]);
        // A duplicate in a version-1 file is reported at open.
        bytes.extend_from_slice(&[2; 16]);
        bytes.extend_from_slice(&0_u64.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            MmapWorkflowStore::new(&path),
            Err(StorageError::Corrupt {
                source: StoreError::DuplicateId { .. },
                ..
            })
        ));
        fs::write(&path, b"").unwrap();
        assert!(MmapWorkflowStore::new(&path).unwrap().is_empty());
        fs::write(&path, b"short").unwrap();
        let err = MmapWorkflowStore::new(&path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(matches!(
            MmapWorkflowStore::new(dir.join("missing.bin")),
            Err(StorageError::Io { action: "open", .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_reader_caches_and_reloads_replaced_files() {
        let dir = temp_dir("reader");
        let path = dir.join("w.bin");
        let mut w = WorkflowStoreWriter::create(&path).unwrap();
        w.add(id(1), b"one").unwrap();
        w.finish().unwrap();
        let reader = MmapWorkflowReader::new();
        let first = reader.load(&path).unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &reader.load(dir.join(".").join("w.bin")).unwrap()
        ));
        let mut w = WorkflowStoreWriter::create(&path).unwrap();
        w.add(id(2), b"two").unwrap();
        w.finish().unwrap();
        let second = reader.load(&path).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        // The old mapping still reads the old file: it was replaced, not
        // rewritten.
        assert_eq!(first.get_workflow(&id(1)), Some(&b"one"[..]));
        assert_eq!(second.get_workflow(&id(2)), Some(&b"two"[..]));
        assert_eq!(reader.cached(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_abandoned_writer_leaves_the_old_file() {
        let dir = temp_dir("abandon");
        let path = dir.join("w.bin");
        let mut w = WorkflowStoreWriter::create(&path).unwrap();
        w.add(id(1), b"old").unwrap();
        w.finish().unwrap();
        let mut w = WorkflowStoreWriter::create(&path).unwrap();
        w.add(id(2), b"new").unwrap();
        drop(w);
        let store = MmapWorkflowStore::new(&path).unwrap();
        assert_eq!(store.list_workflows(), vec![id(1)]);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary file removed"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
