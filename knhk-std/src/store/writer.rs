//! [`WorkflowStoreWriter`]: a store file written in one pass and put in
//! place atomically; [`IoSink`] and [`GrowingIndex`] for knhk-core's
//! writer over any `io::Write`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use knhk_core::store::{rehash, IndexSlot, IndexStorage, Sink, StoreWriter, WriteError};
use knhk_core::WorkflowSpecId;

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
        let writer = StoreWriter::new(sink, GrowingIndex::new())
            .map_err(|e| write_error(e, &temp, &path))?;
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
                Err(write_error(e, &self.temp, &self.path))
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
            .map_err(|e| write_error(e, &self.temp, &self.path))?;
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
