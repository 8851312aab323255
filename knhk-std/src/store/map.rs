//! [`MmapWorkflowStore`]: a store file mapped into memory, and its batched
//! lookups.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use knhk_core::store::{StoreError, StoreView, Stored, Version, ZstdInfo};
use knhk_core::WorkflowSpecId;
use memmap2::Mmap;

use super::compress::{Decoder, StoreOrFrame, WorkflowArena};
use super::error::{io_error, StorageError};

/// A workflow store mapped into memory.
///
/// Version-3 and version-2 files open in O(1) and look up through their
/// index; version-1 files (the design document's format) are scanned once
/// at open into a hash index. A lookup in a version-3 file reads one
/// 64-byte index bucket and the entry; [`get_many`](Self::get_many)
/// overlaps the memory latency of a whole batch of lookups. Lookups return slices of the mapping: no copy. The data is
/// advised as randomly accessed (`MADV_RANDOM`) and, on Linux, for huge
/// pages (see [`set_huge_pages`](crate::arena::set_huge_pages)), and
/// [`prefetch_index`](Self::prefetch_index) asks for the index to be read in.
///
/// # Compressed stores
///
/// A version-4 file's workflows are zstd frames
/// ([`WorkflowStoreWriter::create_compressed`](super::WorkflowStoreWriter::create_compressed)).
/// It opens in O(1) as well (its dictionary is checked and digested once),
/// and is read through the calls that can hand out decompressed bytes:
/// [`get_workflow`](Self::get_workflow) and
/// [`get_workflow_str`](Self::get_workflow_str) (owned data, a `Cow`),
/// [`read_into`](Self::read_into) (a `Vec` you reuse) and
/// [`read_in`](Self::read_in) (an arena: no heap allocation). The
/// borrowing lookups ([`get`](Self::get), [`try_get`](Self::try_get),
/// [`get_many`](Self::get_many)) cannot hand out a decompressed workflow:
/// on a compressed store `try_get` says [`StoreError::Compressed`] and
/// `get` gives `None`. Decompression runs in a context kept per thread,
/// and never writes more than the length the store records.
///
/// ```
/// use knhk_std::store::{MmapWorkflowStore, WorkflowStoreWriter};
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
/// assert_eq!(workflow.as_deref(), Some(&b"<workflow name='approve'/>"[..]));
/// assert_eq!(workflows, vec![spec_id]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MmapWorkflowStore {
    mapped: Mapped,
    /// Version 1 only: where each workflow's data is in the map.
    scanned: Option<HashMap<WorkflowSpecId, (usize, usize)>>,
    /// Version 4 only: the digested dictionary.
    decoder: Option<Decoder>,
    path: PathBuf,
}

self_cell::self_cell!(
    /// The map (`None` for an empty file) and the view parsed over it.
    struct Mapped {
        owner: Option<Mmap>,
        #[covariant]
        dependent: StoreView,
    }
);

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
            // And huge pages where the file system caches in large folios:
            // a fault then reads the whole 2 MiB folio around it (the one
            // read-ahead that random advice still allows), and maps it
            // with one TLB entry. Lookups land anywhere in the store, so
            // most of them save a page walk; the price is reading 2 MiB
            // per fault on a cold cache, which a store that is looked up
            // all over pays off within a few hundred lookups. Off with
            // [`set_huge_pages`](crate::arena::set_huge_pages).
            #[cfg(target_os = "linux")]
            if crate::arena::huge_pages_enabled() {
                let _ = map.advise(memmap2::Advice::HugePage);
            }
        }
        let corrupt = |source| StorageError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        let mapped = Mapped::try_new(map, |map| StoreView::parse(map.as_deref().unwrap_or(&[])))
            .map_err(corrupt)?;
        let view = mapped.borrow_dependent();
        let bytes = view.bytes();
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
        let decoder = match view.compression() {
            Some(info) => Some(Decoder::new(info).map_err(|e| match e {
                StoreOrFrame::Store(source) => corrupt(source),
                StoreOrFrame::Frame(source) => StorageError::Decompress {
                    path: path.to_path_buf(),
                    id: None,
                    source,
                },
            })?),
            None => None,
        };

        Ok(MmapWorkflowStore {
            mapped,
            scanned,
            decoder,
            path: path.to_path_buf(),
        })
    }

    /// The parsed view over the map.
    #[inline(always)]
    pub(super) fn view(&self) -> &StoreView<'_> {
        self.mapped.borrow_dependent()
    }

    /// The workflow with this id, if there is one; damage the lookup runs
    /// into counts as absence ([`try_get`](Self::try_get) tells them apart).
    /// A slice of the map: on a compressed store, `None` (read those with
    /// [`get_workflow`](Self::get_workflow) or [`read_into`](Self::read_into)).
    #[inline]
    pub fn get(&self, id: &WorkflowSpecId) -> Option<&[u8]> {
        self.try_get(id).ok().flatten()
    }

    /// The workflow with this id, `Ok(None)` if there is none, or the damage
    /// the lookup ran into. In a version-3 file it reads one 64-byte index
    /// bucket and the entry. A compressed store refuses with
    /// [`StoreError::Compressed`].
    ///
    /// Inlined into the caller always: a lookup is a few dozen
    /// instructions around two cache misses, and a call would add a tenth.
    #[inline(always)]
    pub fn try_get(&self, id: &WorkflowSpecId) -> Result<Option<&[u8]>, StoreError> {
        // The version-3 common case first, with no test of the format: a
        // version-1 store (no buckets) falls through to the rest.
        match self.view().try_get_common(id) {
            Some(found) => Ok(found),
            None => self.try_get_rest(id),
        }
    }

    /// Every lookup the common case does not answer: a version-1 store's,
    /// in its `HashMap`, and the careful version-3 path. (The view's
    /// `try_get` tries the common case once more before it: a few
    /// instructions on a rare path, the bucket in cache by then, which
    /// saves the core a second public lookup method.)
    #[inline(never)]
    fn try_get_rest(&self, id: &WorkflowSpecId) -> Result<Option<&[u8]>, StoreError> {
        match &self.scanned {
            Some(index) => Ok(index
                .get(id)
                .map(|&(start, len)| &self.view().bytes()[start..start + len])),
            None => self.view().try_get(id),
        }
    }

    /// Looks up a batch of ids, in order, with their memory latency
    /// overlapped: while one workflow is handed out, the index lines and
    /// entries of the next lookups are already on their way into the cache
    /// (see [`StoreView::get_many`]). An engine knows a batch's ids before
    /// it runs the batch; this is the fastest way to fetch its specs. Each
    /// item is what [`try_get`](Self::try_get) returns for that id.
    ///
    /// ```
    /// use knhk_std::store::{MmapWorkflowStore, WorkflowStoreWriter};
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
    /// let mut specs = store.get_many(&batch);
    /// assert_eq!(specs.next(), Some(Ok(Some(&b"workflow 42"[..]))));
    /// assert_eq!(specs.next(), Some(Ok(Some(&b"workflow 7"[..]))));
    /// assert_eq!(specs.next(), Some(Ok(None)));
    /// assert_eq!(specs.next(), None);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many<'s, 'i>(&'s self, ids: &'i [WorkflowSpecId]) -> GetMany<'s, 'i> {
        GetMany {
            inner: match &self.scanned {
                Some(_) => ManyInner::Scanned {
                    store: self,
                    ids: ids.iter(),
                },
                None => ManyInner::Indexed(self.view().get_many(ids)),
            },
        }
    }

    /// The design document's lookup, for every format: the workflow,
    /// borrowed from the map, or decompressed (owned) from a compressed
    /// store; `None` if there is none or it cannot be read
    /// ([`read`](Self::read) says why).
    ///
    /// The design returned a borrowed slice; a compressed workflow has no
    /// bytes in the map to borrow, so this is a `Cow` (compare with
    /// `.as_deref()`).
    pub fn get_workflow(&self, id: &WorkflowSpecId) -> Option<Cow<'_, [u8]>> {
        self.read(id).ok().flatten()
    }

    /// The design document's text form of [`get_workflow`](Self::get_workflow):
    /// the workflow if there is one and it is UTF-8.
    pub fn get_workflow_str(&self, id: &WorkflowSpecId) -> Option<Cow<'_, str>> {
        match self.get_workflow(id)? {
            Cow::Borrowed(data) => std::str::from_utf8(data).ok().map(Cow::Borrowed),
            Cow::Owned(data) => String::from_utf8(data).ok().map(Cow::Owned),
        }
    }

    /// The workflow with this id, in every format: borrowed from the map,
    /// or decompressed into a new `Vec`; `Ok(None)` if there is none, or
    /// what stopped the read.
    pub fn read(&self, id: &WorkflowSpecId) -> Result<Option<Cow<'_, [u8]>>, StorageError> {
        match self.get_stored(id).map_err(|e| self.corrupt(e))? {
            None => Ok(None),
            Some(Stored::Plain(data)) => Ok(Some(Cow::Borrowed(data))),
            Some(Stored::Zstd(frame)) => {
                let mut out = Vec::new();
                self.decoder()?
                    .decompress_into_vec(&frame, &mut out)
                    .map_err(|e| self.decompress_error(id, e))?;
                Ok(Some(Cow::Owned(out)))
            }
        }
    }

    /// Reads the workflow with this id into `out` (cleared first; its
    /// capacity is reused, so a loop over many reads allocates only when a
    /// workflow is longer than any before). `Ok(false)` if there is none.
    /// Works on every format (an uncompressed workflow is copied).
    ///
    /// ```
    /// use knhk_std::store::{Compression, MmapWorkflowStore, WorkflowStoreWriter};
    /// use knhk_std::WorkflowSpecId;
    ///
    /// # let dir = std::env::temp_dir().join(format!("knhk-doc-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("workflows.store");
    /// let mut writer = WorkflowStoreWriter::create_compressed(&path, Compression::default())?;
    /// writer.add(WorkflowSpecId::from_bytes([1; 16]), b"<net id='approve'/>")?;
    /// writer.finish()?;
    ///
    /// let store = MmapWorkflowStore::new(&path)?;
    /// let mut spec = Vec::new();
    /// assert!(store.read_into(&WorkflowSpecId::from_bytes([1; 16]), &mut spec)?);
    /// assert_eq!(spec, b"<net id='approve'/>");
    /// assert!(!store.read_into(&WorkflowSpecId::from_bytes([2; 16]), &mut spec)?);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_into(&self, id: &WorkflowSpecId, out: &mut Vec<u8>) -> Result<bool, StorageError> {
        match self.get_stored(id).map_err(|e| self.corrupt(e))? {
            None => {
                out.clear();
                Ok(false)
            }
            Some(Stored::Plain(data)) => {
                out.clear();
                out.try_reserve(data.len()).map_err(|_| {
                    self.decompress_error(
                        id,
                        super::DecompressError::OutOfMemory { len: data.len() },
                    )
                })?;
                out.extend_from_slice(data);
                Ok(true)
            }
            Some(Stored::Zstd(frame)) => {
                self.decoder()?
                    .decompress_into_vec(&frame, out)
                    .map_err(|e| self.decompress_error(id, e))?;
                Ok(true)
            }
        }
    }

    /// Reads the workflow with this id into `arena` and hands it out:
    /// no heap allocation, so a batch of reads into an arena that is reset
    /// per batch makes none at all. `Ok(None)` if there is none. Works on
    /// every format (an uncompressed workflow is copied; [`get`](Self::get)
    /// borrows it instead).
    ///
    /// ```
    /// use knhk_std::arena::GrowingArena;
    /// use knhk_std::store::{Compression, MmapWorkflowStore, WorkflowStoreWriter};
    /// use knhk_std::WorkflowSpecId;
    ///
    /// # let dir = std::env::temp_dir().join(format!("knhk-doc-arena-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("workflows.store");
    /// let mut writer = WorkflowStoreWriter::create_compressed(&path, Compression::default())?;
    /// let ids: Vec<_> = (0..50_u8).map(|n| WorkflowSpecId::from_bytes([n; 16])).collect();
    /// for (n, id) in ids.iter().enumerate() {
    ///     writer.add(*id, format!("<net id='n{n}'/>").as_bytes())?;
    /// }
    /// writer.finish()?;
    ///
    /// let store = MmapWorkflowStore::new(&path)?;
    /// let mut arena = GrowingArena::new();
    /// for batch in ids.chunks(10) {
    ///     for id in batch {
    ///         let spec = store.read_in(id, &arena)?.expect("in the store");
    ///         assert!(spec.starts_with(b"<net id='n"));
    ///     }
    ///     arena.reset();
    /// }
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_in<'a, A: WorkflowArena<'a>>(
        &self,
        id: &WorkflowSpecId,
        arena: A,
    ) -> Result<Option<A::Bytes>, StorageError> {
        let Some(stored) = self.get_stored(id).map_err(|e| self.corrupt(e))? else {
            return Ok(None);
        };
        if let Stored::Zstd(frame) = &stored {
            Decoder::check_len(frame).map_err(|e| self.decompress_error(id, e))?;
        }
        let mut out = arena
            .zeroed(stored.len())
            .map_err(|e| self.decompress_error(id, super::DecompressError::Arena(e)))?;
        match stored {
            Stored::Plain(data) => out.copy_from_slice(data),
            Stored::Zstd(frame) => self
                .decoder()?
                .decompress(&frame, &mut out)
                .map_err(|e| self.decompress_error(id, e))?,
        }
        Ok(Some(out))
    }

    /// The workflow with this id as the file holds it: the data itself, or
    /// a compressed store's zstd frame and uncompressed length.
    pub fn get_stored(&self, id: &WorkflowSpecId) -> Result<Option<Stored<'_>>, StoreError> {
        match &self.scanned {
            Some(_) => Ok(self.try_get(id)?.map(Stored::Plain)),
            None => self.view().get_stored(id),
        }
    }

    /// The rkyv format of an archived store's workflows (written with
    /// `add_archived`, feature `rkyv`); `None` for plain workflows.
    pub fn archive_format(&self) -> Option<knhk_core::store::layout::ArchiveFormat> {
        self.view().archive_format()
    }

    /// Whether each workflow's frame and first 8 bytes lie in one cache
    /// line (version 3 as knhk writes it; see
    /// [`StoreView::is_aligned`](knhk_core::store::StoreView::is_aligned)).
    pub fn is_aligned(&self) -> bool {
        self.view().is_aligned()
    }

    /// Whether the store's workflows are compressed (format version 4).
    pub fn is_compressed(&self) -> bool {
        self.decoder.is_some()
    }

    /// What a compressed store records about its compression: its
    /// dictionary, level and uncompressed sizes.
    pub fn compression(&self) -> Option<&ZstdInfo<'_>> {
        self.view().compression()
    }

    pub(super) fn decoder(&self) -> Result<&Decoder, StorageError> {
        // Only a compressed store hands out frames, and it has a decoder.
        self.decoder
            .as_ref()
            .ok_or_else(|| self.corrupt(StoreError::Compressed))
    }

    pub(super) fn corrupt(&self, source: StoreError) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn decompress_error(
        &self,
        id: &WorkflowSpecId,
        source: super::DecompressError,
    ) -> StorageError {
        StorageError::Decompress {
            path: self.path.clone(),
            id: Some(*id),
            source,
        }
    }

    /// Starts loading the index line that a lookup of `id` will read, and
    /// returns at once: for engines that interleave lookups with their own
    /// work, call it a few tasks ahead. A hint: it never fails.
    #[inline]
    pub fn prefetch(&self, id: &WorkflowSpecId) {
        self.view().prefetch(id);
    }

    /// The ids of all workflows, in file order.
    pub fn list_workflows(&self) -> Vec<WorkflowSpecId> {
        self.view()
            .stored_entries()
            .filter_map(Result::ok)
            .map(|(id, _)| id)
            .collect()
    }

    /// Every workflow, in file order (on a compressed store, one
    /// [`StoreError::Compressed`]: see
    /// [`stored_entries`](Self::stored_entries)).
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = Result<(WorkflowSpecId, &[u8]), StoreError>> + '_ {
        self.view().entries()
    }

    /// Every workflow as the file holds it, in file order: compressed
    /// stores' frames too.
    pub fn stored_entries(
        &self,
    ) -> impl Iterator<Item = Result<(WorkflowSpecId, Stored<'_>), StoreError>> + '_ {
        self.view().stored_entries()
    }

    /// Number of workflows.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// Whether the store has no workflows.
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// The file's format version.
    pub fn version(&self) -> Version {
        self.view().version()
    }

    /// Checks every checksum and that the index and entries agree; in a
    /// compressed store, also decompresses every workflow and checks its
    /// length against the recorded one.
    pub fn verify(&self) -> Result<(), StorageError> {
        self.view().verify().map_err(|e| self.corrupt(e))?;
        if let Some(decoder) = &self.decoder {
            let mut out = Vec::new();
            for entry in self.view().stored_entries() {
                let (id, stored) = entry.map_err(|e| self.corrupt(e))?;
                if let Stored::Zstd(frame) = stored {
                    decoder
                        .decompress_into_vec(&frame, &mut out)
                        .map_err(|e| self.decompress_error(&id, e))?;
                }
            }
        }
        Ok(())
    }

    /// Asks the kernel to read the index into memory now (`MADV_WILLNEED`),
    /// so the first lookups do not wait for it. Costs time in proportion to
    /// the index size (the kernel walks its pages), which is why opening a
    /// store does not do it; [`MmapWorkflowReader`](super::MmapWorkflowReader) does, once per mapping.
    pub fn prefetch_index(&self) {
        #[cfg(unix)]
        if let (Some(map), Some(range)) = (self.mapped.borrow_owner(), self.view().index_range()) {
            let _ = map.advise_range(memmap2::Advice::WillNeed, range.start, range.len());
        }
    }

    /// The file this store maps.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn size(&self) -> usize {
        self.view().bytes().len()
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

/// The lookups of a batch of ids: made by
/// [`MmapWorkflowStore::get_many`].
#[derive(Debug)]
pub struct GetMany<'s, 'i> {
    inner: ManyInner<'s, 'i>,
}

// The indexed variant carries the ring of lookups in flight; boxing it
// would cost a heap allocation per batch, which is what this avoids.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum ManyInner<'s, 'i> {
    Indexed(knhk_core::store::GetMany<'s, 'i>),
    Scanned {
        store: &'s MmapWorkflowStore,
        ids: std::slice::Iter<'i, WorkflowSpecId>,
    },
}

impl<'s> Iterator for GetMany<'s, '_> {
    type Item = Result<Option<&'s [u8]>, StoreError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            ManyInner::Indexed(many) => many.next(),
            ManyInner::Scanned { store, ids } => scanned_next(store, ids),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            ManyInner::Indexed(many) => many.size_hint(),
            ManyInner::Scanned { ids, .. } => ids.size_hint(),
        }
    }
}

impl ExactSizeIterator for GetMany<'_, '_> {}

/// The next lookup of a version-1 store's batch, out of line: it inlines a
/// `HashMap` lookup, and inlined into [`GetMany::next`] it made `next` too
/// large for LLVM to inline into the caller's loop, so every indexed
/// lookup paid a call and returned its result through memory. (Straight
/// to the `HashMap`: a version-1 store has no common case to try.)
#[inline(never)]
fn scanned_next<'s>(
    store: &'s MmapWorkflowStore,
    ids: &mut std::slice::Iter<'_, WorkflowSpecId>,
) -> Option<Result<Option<&'s [u8]>, StoreError>> {
    ids.next().map(|id| store.try_get_rest(id))
}
