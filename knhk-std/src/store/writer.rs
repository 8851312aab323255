//! [`WorkflowStoreWriter`]: a store file written in one pass and put in
//! place atomically; [`IoSink`] and [`GrowingIndex`] for knhk-core's
//! writer over any `io::Write`.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use knhk_core::store::layout::{self, ArchiveFormat};
use knhk_core::store::{rehash, IndexSlot, IndexStorage, Sink, StoreWriter, WriteError};
use knhk_core::WorkflowSpecId;

use super::compress::{train, Compression, Encoder};
use super::error::{io_error, StorageError};

/// Any `io::Write` (a socket, a pipe, a `Vec<u8>`) as the [`Sink`] of
/// knhk-core's streaming [`StoreWriter`], for stores that are not files.
///
/// ```
/// use knhk_core::store::{StoreView, StoreWriter};
/// use knhk_std::store::{GrowingIndex, IoSink};
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

type FileSink = IoSink<Chunked<File>>;

/// The size and alignment of the pieces a store file is written in: one
/// huge page.
const CHUNK: usize = crate::arena::HUGE_PAGE;

/// A store's temporary file (`W`), written in whole [`CHUNK`]s at offsets that
/// are multiples of it (all but the last piece).
///
/// Why not `BufWriter`: when a write does not fit in what it has left, it
/// writes out what it holds, so its writes land at any length and offset.
/// Linux file systems that cache files in large folios (ext4 and xfs on
/// recent kernels) size a file's cached folios by the writes that made
/// them: a store written in 2 MiB pieces at 2 MiB offsets stays in the page
/// cache as 2 MiB folios, and every mapping of it (2 MiB aligned, as the
/// kernel places large file mappings) then reads it through huge pages:
/// one TLB entry for 2 MiB of workflows instead of 512. The lookups of an
/// engine land anywhere in the store, so that is a TLB miss less for most
/// of them. Written through `BufWriter`'s 1 MiB buffer, the report's
/// 100 MB store came out 42% huge-mapped; in 2 MiB pieces, all of it
/// (Linux 6.18, ext4). Elsewhere this is an ordinary buffered writer.
struct Chunked<W> {
    file: W,
    /// At most `CHUNK` bytes not yet written; the file holds a whole
    /// number of chunks before them.
    pending: Vec<u8>,
}

impl<W: Write> Chunked<W> {
    fn new(file: W) -> Chunked<W> {
        Chunked {
            file,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    /// Writes what is pending and hands back the file.
    fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.file)
    }
}

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() && bytes.len() >= CHUNK {
            // At a chunk boundary already: whole chunks go straight to the
            // file, without a copy.
            let whole = bytes.len() - bytes.len() % CHUNK;
            self.file.write_all(&bytes[..whole])?;
            return Ok(whole);
        }
        let taken = bytes.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&bytes[..taken]);
        if self.pending.len() == CHUNK {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all(&self.pending)?;
        self.pending.clear();
        self.file.flush()
    }
}

/// Writes a store file, replacing `path` atomically on
/// [`finish`](Self::finish): the workflows go to a temporary file in the
/// same directory, which is flushed, synced, renamed over `path`, and the
/// directory synced. A crash at any point leaves either the old file or the
/// new one at `path`, never a torn one. Dropped without `finish`, the
/// writer deletes its temporary file and `path` is untouched.
///
/// [`create`](Self::create) writes an uncompressed store (format version
/// 3); [`create_compressed`](Self::create_compressed) a compressed one
/// (version 4), each workflow a zstd frame, by default with a dictionary
/// trained on the first workflows.
pub struct WorkflowStoreWriter {
    state: State,
    /// Whether the store holds rkyv archives (decided by the first add).
    archive: Option<Option<ArchiveFormat>>,
    temp: PathBuf,
    path: PathBuf,
}

enum State {
    /// Nothing written yet: the first workflow says whether the store
    /// holds archives, which the header records.
    Fresh(Box<(FileSink, Option<Compression>)>),
    Plain(StoreWriter<FileSink, GrowingIndex>),
    /// Holding the first workflows to train the dictionary on.
    Sampling(Box<Sampling>),
    Compressing(Box<Compressing>),
    /// A write failed: the output is incomplete.
    Failed,
}

struct Sampling {
    sink: FileSink,
    compression: Compression,
    archive: Option<ArchiveFormat>,
    /// The workflows so far, end to end, and each one's id and length.
    samples: Vec<u8>,
    entries: Vec<(WorkflowSpecId, usize)>,
    ids: HashSet<WorkflowSpecId>,
}

struct Compressing {
    writer: StoreWriter<FileSink, GrowingIndex>,
    encoder: Encoder,
    /// The frame being made, its capacity reused.
    frame: Vec<u8>,
}

impl Compressing {
    fn add(&mut self, id: WorkflowSpecId, data: &[u8]) -> Result<(), WriteError<io::Error>> {
        self.encoder
            .compress(data, &mut self.frame)
            .map_err(WriteError::Sink)?;
        self.writer.add_compressed(id, data.len(), &self.frame)
    }
}

impl WorkflowStoreWriter {
    /// Starts writing an uncompressed store that will replace `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<WorkflowStoreWriter, StorageError> {
        let (sink, temp, path) = WorkflowStoreWriter::temp_file(path.as_ref())?;
        Ok(WorkflowStoreWriter {
            state: State::Fresh(Box::new((sink, None))),
            archive: None,
            temp,
            path,
        })
    }

    /// Starts writing a compressed store (format version 4) that will
    /// replace `path`, compressed as `compression` says.
    ///
    /// With a dictionary (the default), the writer holds the first
    /// workflows, up to [`Compression::sample_bytes`], trains the dictionary
    /// on them when that much has come (or at [`finish`](Self::finish)),
    /// and then streams. If zstd cannot train one (fewer than 8 workflows,
    /// or too little text), the store is compressed without.
    ///
    /// ```
    /// use knhk_std::store::{Compression, MmapWorkflowStore, WorkflowStoreWriter};
    /// use knhk_std::WorkflowSpecId;
    ///
    /// let dir = std::env::temp_dir().join(format!("knhk-doc-zstd-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("workflows.zst.store");
    ///
    /// let mut writer = WorkflowStoreWriter::create_compressed(&path, Compression::default())?;
    /// for n in 0..100_u8 {
    ///     let spec = format!("<net id='n{n}'><task id='approve' join='xor' split='and'/></net>");
    ///     writer.add(WorkflowSpecId::from_bytes([n; 16]), spec.as_bytes())?;
    /// }
    /// writer.finish()?;
    ///
    /// let store = MmapWorkflowStore::new(&path)?;
    /// assert!(store.is_compressed());
    /// let spec = store.get_workflow_str(&WorkflowSpecId::from_bytes([7; 16])).unwrap();
    /// assert!(spec.starts_with("<net id='n7'>"));
    /// store.verify()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_compressed(
        path: impl AsRef<Path>,
        compression: Compression,
    ) -> Result<WorkflowStoreWriter, StorageError> {
        let (sink, temp, path) = WorkflowStoreWriter::temp_file(path.as_ref())?;
        Ok(WorkflowStoreWriter {
            state: State::Fresh(Box::new((sink, Some(compression)))),
            archive: None,
            temp,
            path,
        })
    }

    /// Writes the header (and an archived store's format record): the
    /// first workflow, or `finish`, says what the store holds.
    fn begin(&mut self, archive: Option<ArchiveFormat>) -> Result<(), StorageError> {
        if !matches!(self.state, State::Fresh(_)) {
            return Ok(());
        }
        let State::Fresh(fresh) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let (sink, compression) = *fresh;
        self.archive = Some(archive);
        self.state = match compression {
            None => {
                let index = GrowingIndex::new();
                let writer = match archive {
                    Some(format) => StoreWriter::new_archived(sink, index, format),
                    None => StoreWriter::new(sink, index),
                };
                State::Plain(writer.map_err(|e| write_error(e, &self.temp, &self.path))?)
            }
            Some(compression) if compression.dictionary => State::Sampling(Box::new(Sampling {
                sink,
                compression,
                archive,
                samples: Vec::new(),
                entries: Vec::new(),
                ids: HashSet::new(),
            })),
            Some(compression) => State::Compressing(Box::new(self.compressing(
                sink,
                compression.level,
                None,
                archive,
            )?)),
        };
        Ok(())
    }

    /// A writer of compressed workflows into `sink`, its header (and
    /// dictionary) written.
    fn compressing(
        &self,
        sink: FileSink,
        level: i32,
        dictionary: Option<&[u8]>,
        archive: Option<ArchiveFormat>,
    ) -> Result<Compressing, StorageError> {
        let encoder = Encoder::new(level, dictionary).map_err(io_error(&self.path, "compress"))?;
        let index = GrowingIndex::new();
        let writer = match archive {
            Some(format) => {
                StoreWriter::new_compressed_archived(sink, index, dictionary, level, format)
            }
            None => StoreWriter::new_compressed(sink, index, dictionary, level),
        }
        .map_err(|e| write_error(e, &self.temp, &self.path))?;
        Ok(Compressing {
            writer,
            encoder,
            frame: Vec::new(),
        })
    }

    /// Trains the dictionary on the workflows held, writes it and them, and
    /// goes on streaming.
    fn stop_sampling(&mut self) -> Result<(), StorageError> {
        if !matches!(self.state, State::Sampling(_)) {
            return Ok(());
        }
        let State::Sampling(sampling) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let Sampling {
            sink,
            compression,
            archive,
            samples,
            entries,
            ..
        } = *sampling;
        let lengths: Vec<usize> = entries.iter().map(|&(_, len)| len).collect();
        let dictionary = train(&samples, &lengths, compression.dictionary_size);
        let mut compressing =
            self.compressing(sink, compression.level, dictionary.as_deref(), archive)?;
        let mut at = 0;
        for (id, len) in entries {
            compressing
                .add(id, &samples[at..at + len])
                .map_err(|e| write_error(e, &self.temp, &self.path))?;
            at += len;
        }
        self.state = State::Compressing(Box::new(compressing));
        Ok(())
    }

    /// A new temporary file next to `path`, and the two paths.
    fn temp_file(path: &Path) -> Result<(FileSink, PathBuf, PathBuf), StorageError> {
        let path = path.to_path_buf();
        let path = path.to_path_buf();
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
        let sink = IoSink(Chunked::new(file));
        Ok((sink, temp, path))
    }

    fn failed(&self) -> StorageError {
        StorageError::Io {
            path: self.temp.clone(),
            action: "write to",
            source: io::Error::other("an earlier write failed"),
        }
    }

    /// Adds a workflow. Duplicate and reserved ids are refused.
    pub fn add(&mut self, id: WorkflowSpecId, data: &[u8]) -> Result<(), StorageError> {
        self.begin(None)?;
        if self.archive != Some(None) {
            return Err(self.refused(WriteError::Archived));
        }
        self.add_entry(id, data)
    }

    /// The error for a refused write, named by the destination.
    pub(super) fn refused(&self, e: WriteError<io::Error>) -> StorageError {
        write_error(e, &self.temp, &self.path)
    }

    /// Where the next workflow's archive must start to be aligned where
    /// it is read: its prefix byte (see [`layout::archived_payload`]).
    /// Writes the header first, for an archived store in `format`.
    #[cfg_attr(not(feature = "rkyv"), allow(dead_code))]
    pub(super) fn archive_prefix(&mut self, format: ArchiveFormat) -> Result<u8, StorageError> {
        self.begin(Some(format))?;
        if self.archive != Some(Some(format)) {
            return Err(self.refused(WriteError::NotArchived));
        }
        Ok(match &self.state {
            // In the file: aligned in the map.
            State::Plain(writer) => layout::archive_prefix(writer.next_data_offset()),
            // In the decompressed bytes: aligned in an aligned buffer.
            _ => layout::archive_prefix(0),
        })
    }

    /// Adds an entry's data as it is.
    pub(super) fn add_entry(
        &mut self,
        id: WorkflowSpecId,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let result = match &mut self.state {
            State::Plain(writer) => writer.add(id, data),
            State::Compressing(compressing) => compressing.add(id, data),
            State::Sampling(sampling) => {
                if layout::RESERVED_IDS.contains(id.as_bytes()) {
                    Err(WriteError::ReservedId { id })
                } else if u32::try_from(data.len()).is_err() {
                    Err(WriteError::WorkflowTooLarge {
                        len: data.len() as u64,
                    })
                } else if !sampling.ids.insert(id) {
                    Err(WriteError::DuplicateId { id })
                } else {
                    sampling.samples.extend_from_slice(data);
                    sampling.entries.push((id, data.len()));
                    if sampling.samples.len() >= sampling.compression.sample_bytes {
                        return self.stop_sampling();
                    }
                    Ok(())
                }
            }
            State::Fresh(_) | State::Failed => return Err(self.failed()),
        };
        result.map_err(|e| {
            if matches!(e, WriteError::Sink(_)) {
                self.state = State::Failed; // the output is incomplete
            }
            write_error(e, &self.temp, &self.path)
        })
    }

    /// The file the store will replace.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Workflows added so far.
    pub fn len(&self) -> usize {
        match &self.state {
            State::Plain(writer) => writer.len(),
            State::Sampling(sampling) => sampling.entries.len(),
            State::Compressing(compressing) => compressing.writer.len(),
            State::Fresh(_) | State::Failed => 0,
        }
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the index and trailer, syncs, and atomically replaces the
    /// destination. Returns the store's size in bytes.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        self.begin(None)?;
        self.stop_sampling()?;
        let writer = match std::mem::replace(&mut self.state, State::Failed) {
            State::Plain(writer) => writer,
            State::Compressing(compressing) => compressing.writer,
            State::Fresh(_) | State::Sampling(_) | State::Failed => return Err(self.failed()),
        };
        let (IoSink(buffered), len) = writer
            .finish_into_sink()
            .map_err(|e| write_error(e, &self.temp, &self.path))?;
        let file = buffered.into_inner().map_err(|source| StorageError::Io {
            path: self.temp.clone(),
            action: "write to",
            source,
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

/// A sink failure is I/O on the temporary file; a refusal is about the
/// store being written, named by its destination.
fn write_error(e: WriteError<io::Error>, temp: &Path, path: &Path) -> StorageError {
    match e {
        WriteError::Sink(source) => StorageError::Io {
            path: temp.to_path_buf(),
            action: "write to",
            source,
        },
        refused => StorageError::Write {
            path: path.to_path_buf(),
            source: refused,
        },
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    /// Records where and how long each write to the file was.
    #[derive(Default)]
    struct Recorder {
        bytes: Vec<u8>,
        writes: Vec<(usize, usize)>,
    }

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.writes.push((self.bytes.len(), bytes.len()));
            self.bytes.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "16 MB through Miri; no unsafe or threads here")]
    fn every_write_but_the_last_is_whole_chunks_at_a_chunk_boundary() {
        let mut out = Chunked::new(Recorder::default());
        let mut want = Vec::new();
        let mut n = 0_u8;
        // Small writes that straddle chunk boundaries, one larger than a
        // chunk arriving mid-chunk, and one of several chunks arriving at
        // a boundary.
        for len in [
            1,
            1000,
            CHUNK - 1001,
            7,
            3 * CHUNK + 5,
            4096,
            CHUNK - 4108,
            2 * CHUNK,
            9,
        ] {
            let piece: Vec<u8> = (0..len)
                .map(|_| {
                    n = n.wrapping_add(1);
                    n
                })
                .collect();
            out.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
        }
        let file = out.into_inner().unwrap();
        assert_eq!(file.bytes, want);
        let (last, whole) = file.writes.split_last().unwrap();
        for &(at, len) in whole {
            assert_eq!(
                (at % CHUNK, len % CHUNK),
                (0, 0),
                "a write of {len} at {at}"
            );
        }
        assert_eq!(last.0 % CHUNK, 0);
        assert_eq!(last.0 + last.1, want.len());
    }

    #[test]
    fn what_is_pending_is_written_at_the_end() {
        let out = Chunked::new(Recorder::default());
        assert!(out.into_inner().unwrap().bytes.is_empty());
        let mut out = Chunked::new(Recorder::default());
        out.write_all(b"spec").unwrap();
        assert_eq!(out.into_inner().unwrap().bytes, b"spec");
    }
}
