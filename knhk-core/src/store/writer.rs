//! Writing a version-3 store into any byte sink: [`StoreWriter`].
//!
//! The writer streams: it writes the header, then each workflow as it is
//! added, then the index and the trailer, and never seeks back, so it can
//! write to a pipe, a socket or a flash programmer. It keeps the index in
//! slot memory the caller provides ([`IndexStorage`]): a fixed slice in
//! `no_std`, a growing `Vec` in knhk-std.
//!
//! With feature `heapless`, a `heapless::Vec` is both: a [`Sink`] of bytes
//! and an [`IndexStorage`] of slots, each with its capacity in its type, so
//! firmware without an allocator builds a store in a buffer it sized once.

use core::fmt;

use super::layout::{self, trailer, EMPTY, FRAME};
use crate::WorkflowSpecId;

/// Where a [`StoreWriter`] writes its bytes.
pub trait Sink {
    /// What a failed write reports.
    type Error;
    /// Writes all of `bytes`, or fails.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl<S: Sink + ?Sized> Sink for &mut S {
    type Error = S::Error;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        (**self).write_all(bytes)
    }
}

/// A [`Sink`] into a byte slice.
#[derive(Debug)]
pub struct SliceSink<'b> {
    buf: &'b mut [u8],
    written: usize,
}

impl<'b> SliceSink<'b> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> SliceSink<'b> {
        SliceSink { buf, written: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.written
    }
}

/// The buffer a [`SliceSink`] (or, with feature `heapless`, a
/// `heapless::Vec<u8, N>`) writes to is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SinkFull {
    /// Bytes the write needed.
    pub needed: usize,
    /// Bytes left in the buffer.
    pub available: usize,
}

impl fmt::Display for SinkFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output buffer full: a write needed {} bytes, {} remain",
            self.needed, self.available
        )
    }
}

impl core::error::Error for SinkFull {}

impl Sink for SliceSink<'_> {
    type Error = SinkFull;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), SinkFull> {
        let available = self.buf.len() - self.written;
        let Some(dest) = self.buf.get_mut(self.written..self.written + bytes.len()) else {
            return Err(SinkFull {
                needed: bytes.len(),
                available,
            });
        };
        dest.copy_from_slice(bytes);
        self.written += bytes.len();
        Ok(())
    }
}

/// A `heapless::Vec` of bytes as a [`Sink`]: each write is appended, or,
/// if it does not fit in the `N` bytes, refused whole with [`SinkFull`]
/// (the vec keeps what it had; the store is incomplete, so start over).
/// Any length type `L` works.
///
/// ```
/// use heapless::Vec;
/// use knhk_core::store::{IndexSlot, SinkFull, StoreView, StoreWriter, WriteError};
/// use knhk_core::WorkflowSpecId;
///
/// let mut file = Vec::<u8, 512>::new();
/// let mut slots = [IndexSlot::EMPTY; 8];
/// let mut writer = StoreWriter::new(&mut file, &mut slots[..])?;
/// writer.add(WorkflowSpecId::from_bytes([1; 16]), b"approve")?;
/// writer.finish()?;
/// let store = StoreView::parse(&file)?;
/// assert_eq!(store.get(&WorkflowSpecId::from_bytes([1; 16])), Some(&b"approve"[..]));
///
/// // Too small for the header: an error, not a panic.
/// let mut tiny = Vec::<u8, 8>::new();
/// let refused = StoreWriter::new(&mut tiny, &mut slots[..]).err();
/// assert_eq!(refused, Some(WriteError::Sink(SinkFull { needed: 16, available: 8 })));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[cfg(feature = "heapless")]
#[cfg_attr(docsrs, doc(cfg(feature = "heapless")))]
impl<const N: usize, L: heapless::LenType> Sink for heapless::Vec<u8, N, L> {
    type Error = SinkFull;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), SinkFull> {
        let available = N - self.len();
        // `extend_from_slice` checks the room first and writes nothing
        // when the bytes do not fit.
        self.extend_from_slice(bytes).map_err(|_| SinkFull {
            needed: bytes.len(),
            available,
        })
    }
}

/// One slot of the index being built: the id (to refuse duplicates), its
/// hash, where its frame is and the checksum of its data. The file's index
/// is written from these at [`StoreWriter::finish`], 8 bytes a workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSlot {
    id: [u8; 16],
    hash: u64,
    offset: u64,
    checksum: u64,
}

impl IndexSlot {
    /// A free slot.
    pub const EMPTY: IndexSlot = IndexSlot {
        id: [0; 16],
        hash: 0,
        offset: EMPTY,
        checksum: 0,
    };

    fn is_empty(&self) -> bool {
        self.offset == EMPTY
    }
}

/// The memory a [`StoreWriter`] builds its index in: a power-of-two number
/// of slots, kept at most half full. (This is the writer's working table,
/// 40 bytes a slot; the file's index is smaller.)
pub trait IndexStorage {
    /// The slots.
    fn slots(&mut self) -> &mut [IndexSlot];
    /// Replaces the slots with twice as many holding the same entries
    /// ([`rehash`] does the moving). `false` if the storage cannot grow.
    fn grow(&mut self) -> bool {
        false
    }
}

impl IndexStorage for &mut [IndexSlot] {
    fn slots(&mut self) -> &mut [IndexSlot] {
        self
    }
}

/// A `heapless::Vec` of slots as the writer's [`IndexStorage`]: like a
/// slice of `N` slots, with the size in the type, so it can live in a
/// struct or a `static` without a separate buffer.
///
/// The vec's type already reserves all `N` slots, so it does not double
/// as it fills: the writer extends it to `N` at the start and uses them
/// all. `N` must be a power of two of at least 2
/// ([`WriteError::BadIndexCapacity`] otherwise); the index then holds
/// `N / 2` workflows, and the next [`add`](StoreWriter::add) returns
/// [`WriteError::IndexFull`]. (Doubling in place would need a second
/// table to rehash into, which a fixed buffer does not have.) Any length
/// type `L` works.
///
/// ```
/// use heapless::Vec;
/// use knhk_core::store::{IndexSlot, SliceSink, StoreView, StoreWriter, WriteError};
/// use knhk_core::WorkflowSpecId;
///
/// let mut file = [0_u8; 1024];
/// let index = Vec::<IndexSlot, 4>::new(); // up to 2 workflows
/// let mut writer = StoreWriter::new(SliceSink::new(&mut file), index)?;
/// writer.add(WorkflowSpecId::from_bytes([1; 16]), b"approve")?;
/// writer.add(WorkflowSpecId::from_bytes([2; 16]), b"ship")?;
/// assert_eq!(
///     writer.add(WorkflowSpecId::from_bytes([3; 16]), b"bill"),
///     Err(WriteError::IndexFull { capacity: 4 }),
/// );
/// let len = writer.finish()? as usize;
/// let store = StoreView::parse(&file[..len])?;
/// assert_eq!(store.get(&WorkflowSpecId::from_bytes([2; 16])), Some(&b"ship"[..]));
/// assert_eq!(store.len(), 2);
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[cfg(feature = "heapless")]
#[cfg_attr(docsrs, doc(cfg(feature = "heapless")))]
impl<const N: usize, L: heapless::LenType> IndexStorage for heapless::Vec<IndexSlot, N, L> {
    fn slots(&mut self) -> &mut [IndexSlot] {
        if self.len() < N {
            // Cannot fail: the new length is the capacity.
            let _ = self.resize(N, IndexSlot::EMPTY);
        }
        self.as_mut_slice()
    }
}

/// Places `slot` in `slots` by linear probing from its id's hash and
/// returns how far it went; `None` if `slots` is full or the id is there.
fn place(slots: &mut [IndexSlot], slot: IndexSlot) -> Result<usize, Placement> {
    let mask = slots.len() - 1;
    let start = slot.hash as usize & mask;
    for step in 0..slots.len() {
        let here = &mut slots[(start + step) & mask];
        if here.is_empty() {
            *here = slot;
            return Ok(step);
        }
        if here.id == slot.id {
            return Err(Placement::Duplicate);
        }
    }
    Err(Placement::Full)
}

enum Placement {
    Duplicate,
    Full,
}

/// Moves every used slot of `old` into `new` (all empty, a power of two
/// larger than twice the used count). For [`IndexStorage::grow`].
pub fn rehash(old: &[IndexSlot], new: &mut [IndexSlot]) {
    new.fill(IndexSlot::EMPTY);
    for slot in old.iter().filter(|s| !s.is_empty()) {
        // Ids in `old` are distinct and `new` has room, so this places it.
        let _ = place(new, *slot);
    }
}

/// Why a [`StoreWriter`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WriteError<E> {
    /// The sink failed.
    Sink(E),
    /// A workflow with this id was already added.
    DuplicateId {
        /// The id.
        id: WorkflowSpecId,
    },
    /// The id is one of the format's reserved ids.
    ReservedId {
        /// The id.
        id: WorkflowSpecId,
    },
    /// The index storage is full (half its slots used) and cannot grow.
    IndexFull {
        /// Its number of slots.
        capacity: usize,
    },
    /// The index storage's size is not a power of two of at least 2.
    BadIndexCapacity {
        /// Its number of slots.
        capacity: usize,
    },
    /// The store would pass the largest offset the index can hold
    /// ([`layout::MAX_OFFSET`], 256 TiB).
    TooLarge {
        /// Where the workflow's frame would start.
        offset: u64,
    },
    /// `add` on a writer of a compressed store: add zstd frames with
    /// `add_compressed`.
    Compressed,
    /// `add_compressed` on a writer of an uncompressed store.
    Uncompressed,
    /// A compressed store records uncompressed lengths of at most
    /// `u32::MAX` bytes.
    WorkflowTooLarge {
        /// The workflow's uncompressed length.
        len: u64,
    },
    /// A plain workflow for a store that holds rkyv archives (knhk-std's
    /// writer: the first workflow added decides).
    Archived,
    /// An archive for a store that holds plain workflows, or archives in
    /// another format.
    NotArchived,
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Sink(e) => write!(f, "writing the store failed: {e}"),
            WriteError::DuplicateId { id } => {
                write!(f, "workflow {id} was already added to this store")
            }
            WriteError::ReservedId { id } => {
                write!(f, "id {id} is reserved by the store format")
            }
            WriteError::IndexFull { capacity } => write!(
                f,
                "the index's {capacity} slots hold {} workflows at most; give the writer more slots",
                capacity / 2
            ),
            WriteError::BadIndexCapacity { capacity } => write!(
                f,
                "an index needs a power-of-two number of slots (at least 2), not {capacity}"
            ),
            WriteError::TooLarge { offset } => write!(
                f,
                "the store would reach offset {offset}, past the {} bytes its index can address",
                layout::MAX_OFFSET
            ),
            WriteError::Compressed => f.write_str(
                "this writer makes a compressed store: add zstd frames with add_compressed",
            ),
            WriteError::Uncompressed => f.write_str(
                "this writer makes an uncompressed store: add workflows with add",
            ),
            WriteError::Archived => f.write_str(
                "this store holds rkyv archives: add workflows with add_archived",
            ),
            WriteError::NotArchived => f.write_str(
                "this store holds plain workflows (or archives of another format): add them with add",
            ),
            WriteError::WorkflowTooLarge { len } => write!(
                f,
                "a workflow of {len} bytes is past the {} a compressed store records",
                u32::MAX
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for WriteError<E> {}

/// Writes a version-3 store, streaming (or, with feature `store-zstd`
/// and `StoreWriter::new_compressed`, a compressed version-4 one). See
/// [`StoreView`](super::StoreView) for an example.
pub struct StoreWriter<S: Sink, I: IndexStorage> {
    sink: S,
    index: I,
    count: usize,
    offset: u64,
    /// The header's flags (the trailer repeats them).
    flags: u32,
    /// A compressed store's facts so far.
    #[cfg(feature = "store-zstd")]
    zstd: Option<ZstdFacts>,
}

/// What a compressed store's writer records as it goes.
#[cfg(feature = "store-zstd")]
#[derive(Clone, Copy, Debug)]
struct ZstdFacts {
    flags: u32,
    largest: u64,
    total: u64,
    dictionary_checksum: u64,
    level: i64,
}

impl<S: Sink, I: IndexStorage> StoreWriter<S, I> {
    /// Starts a store in `sink`, building the index in `index`, and writes
    /// the header.
    ///
    /// The store is aligned ([`layout::FLAG_ALIGNED`]): a workflow whose
    /// frame would straddle a cache line before its first 8 data bytes gets
    /// a padding frame before it, so that a lookup reads one line of the
    /// entry rather than two. That costs 24 to 31 bytes before about half
    /// the workflows; [`new_unpadded`](Self::new_unpadded) writes them back
    /// to back.
    pub fn new(sink: S, index: I) -> Result<Self, WriteError<S::Error>> {
        StoreWriter::start(
            sink,
            index,
            layout::HEADER_MAGIC,
            layout::VERSION,
            layout::FLAG_ALIGNED,
            None,
        )
    }

    /// [`new`](Self::new) without padding: every frame right after the one
    /// before (flags 0, as knhk wrote version 3 before aligned frames), a
    /// file smaller by up to 31 bytes a workflow (about 15 on average),
    /// whose lookups read a second line for the entries that straddle one.
    ///
    /// ```
    /// use knhk_core::store::{layout, IndexSlot, SliceSink, StoreView, StoreWriter};
    /// use knhk_core::WorkflowSpecId;
    ///
    /// let mut slots = [IndexSlot::EMPTY; 4];
    /// let mut file = [0_u8; 512];
    /// let mut writer = StoreWriter::new_unpadded(SliceSink::new(&mut file), &mut slots[..])?;
    /// writer.add(WorkflowSpecId::from_bytes([7; 16]), b"<workflow/>")?;
    /// let len = writer.finish()? as usize;
    /// let store = StoreView::parse(&file[..len])?;
    /// assert!(!store.is_aligned());
    /// assert_eq!(store.get(&WorkflowSpecId::from_bytes([7; 16])), Some(&b"<workflow/>"[..]));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn new_unpadded(sink: S, index: I) -> Result<Self, WriteError<S::Error>> {
        StoreWriter::start(sink, index, layout::HEADER_MAGIC, layout::VERSION, 0, None)
    }

    /// Starts an archived store: every workflow added is an rkyv archive in
    /// `format`, behind the alignment prefix of
    /// [`layout::archived_payload`] (knhk-std's `add_archived` makes both;
    /// [`offset`](Self::offset) says where the next entry's data starts).
    #[cfg(feature = "store-archive")]
    pub fn new_archived(
        sink: S,
        index: I,
        format: layout::ArchiveFormat,
    ) -> Result<Self, WriteError<S::Error>> {
        StoreWriter::start(
            sink,
            index,
            layout::HEADER_MAGIC,
            layout::VERSION,
            layout::FLAG_ARCHIVED | layout::FLAG_ALIGNED,
            Some(format.to_bytes()),
        )
    }

    /// Bytes written so far. The next workflow's frame starts here, or,
    /// in an aligned store, after the padding frame it may need
    /// ([`next_data_offset`](Self::next_data_offset) says where its data
    /// will start).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where the next workflow's data will start in the file: after its
    /// padding frame, if it gets one, and its own frame.
    pub fn next_data_offset(&self) -> u64 {
        self.next_frame().1 + FRAME as u64
    }

    /// The data length of the padding frame the next workflow gets, if it
    /// gets one, and where its own frame will then start.
    fn next_frame(&self) -> (Option<u64>, u64) {
        let pad = if self.flags & layout::FLAG_ALIGNED == 0 {
            None
        } else {
            layout::pad_before(self.offset)
        };
        (pad, self.offset + pad.map_or(0, |len| FRAME as u64 + len))
    }

    /// Checks the index storage and writes the header (and an archived
    /// store's format record).
    fn start(
        sink: S,
        mut index: I,
        magic: [u8; 8],
        version: u32,
        flags: u32,
        #[cfg_attr(not(feature = "store-archive"), allow(unused_variables))] archive: Option<
            [u8; layout::ARCHIVE_LEN],
        >,
    ) -> Result<Self, WriteError<S::Error>> {
        let capacity = index.slots().len();
        if !capacity.is_power_of_two() || capacity < 2 {
            return Err(WriteError::BadIndexCapacity { capacity });
        }
        index.slots().fill(IndexSlot::EMPTY);
        let mut writer = StoreWriter {
            sink,
            index,
            count: 0,
            offset: 0,
            flags,
            #[cfg(feature = "store-zstd")]
            zstd: None,
        };
        let mut header = [0_u8; layout::HEADER_LEN];
        header[..8].copy_from_slice(&magic);
        header[8..12].copy_from_slice(&version.to_le_bytes());
        header[12..16].copy_from_slice(&flags.to_le_bytes());
        writer.frame(&layout::HEADER_ID, &[&header])?;
        if let Some(record) = archive {
            writer.frame(&layout::ARCHIVE_ID, &[&record])?;
        }
        Ok(writer)
    }

    /// Starts a compressed (version-4) store in `sink`: its workflows are
    /// zstd frames, added with [`add_compressed`](Self::add_compressed),
    /// compressed with `dictionary` if there is one (written right after
    /// the header), at `level` (recorded for information). knhk-core does
    /// not compress: knhk-std's writer does, and trains the dictionary.
    #[cfg(feature = "store-zstd")]
    pub fn new_compressed(
        sink: S,
        index: I,
        dictionary: Option<&[u8]>,
        level: i32,
    ) -> Result<Self, WriteError<S::Error>> {
        StoreWriter::compressed(sink, index, dictionary, level, None)
    }

    /// [`new_compressed`](Self::new_compressed) for an archived store: each
    /// frame decompresses to an archive behind its alignment prefix (16
    /// bytes: the archive is aligned in a 16-byte-aligned buffer).
    #[cfg(all(feature = "store-zstd", feature = "store-archive"))]
    pub fn new_compressed_archived(
        sink: S,
        index: I,
        dictionary: Option<&[u8]>,
        level: i32,
        format: layout::ArchiveFormat,
    ) -> Result<Self, WriteError<S::Error>> {
        StoreWriter::compressed(sink, index, dictionary, level, Some(format.to_bytes()))
    }

    #[cfg(feature = "store-zstd")]
    fn compressed(
        sink: S,
        index: I,
        dictionary: Option<&[u8]>,
        level: i32,
        archive: Option<[u8; layout::ARCHIVE_LEN]>,
    ) -> Result<Self, WriteError<S::Error>> {
        let flags = layout::FLAG_ZSTD
            | if dictionary.is_some() {
                layout::FLAG_DICTIONARY
            } else {
                0
            }
            | if archive.is_some() {
                layout::FLAG_ARCHIVED
            } else {
                0
            };
        let mut writer = StoreWriter::start(
            sink,
            index,
            layout::HEADER_MAGIC_V4,
            layout::VERSION_COMPRESSED,
            flags,
            archive,
        )?;
        if let Some(dictionary) = dictionary {
            writer.frame(&layout::DICTIONARY_ID, &[dictionary])?;
        }
        writer.zstd = Some(ZstdFacts {
            flags,
            largest: 0,
            total: 0,
            dictionary_checksum: dictionary.map_or(0, layout::checksum),
            level: i64::from(level),
        });
        Ok(writer)
    }

    /// Writes one frame whose data is `parts`, one after the other.
    fn frame(&mut self, id: &[u8; 16], parts: &[&[u8]]) -> Result<(), WriteError<S::Error>> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.sink.write_all(id).map_err(WriteError::Sink)?;
        self.sink
            .write_all(&(len as u64).to_le_bytes())
            .map_err(WriteError::Sink)?;
        for part in parts {
            self.sink.write_all(part).map_err(WriteError::Sink)?;
        }
        self.offset += (FRAME + len) as u64;
        Ok(())
    }

    /// Workflows added so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a workflow. Refuses a duplicate or reserved id without writing
    /// anything. If the sink fails, the output is incomplete: discard it.
    pub fn add(&mut self, id: WorkflowSpecId, data: &[u8]) -> Result<(), WriteError<S::Error>> {
        #[cfg(feature = "store-zstd")]
        if self.zstd.is_some() {
            return Err(WriteError::Compressed);
        }
        self.add_parts(id, &[data])
    }

    /// Adds a workflow to a compressed store: `frame` is its zstd frame
    /// (made without a dictionary id, content size or checksum, with the
    /// store's dictionary if it has one) and `len` its uncompressed length,
    /// which the store records before the frame.
    #[cfg(feature = "store-zstd")]
    pub fn add_compressed(
        &mut self,
        id: WorkflowSpecId,
        len: usize,
        frame: &[u8],
    ) -> Result<(), WriteError<S::Error>> {
        let Some(mut facts) = self.zstd else {
            return Err(WriteError::Uncompressed);
        };
        let raw =
            u32::try_from(len).map_err(|_| WriteError::WorkflowTooLarge { len: len as u64 })?;
        self.add_parts(id, &[&raw.to_le_bytes(), frame])?;
        facts.largest = facts.largest.max(u64::from(raw));
        facts.total += u64::from(raw);
        self.zstd = Some(facts);
        Ok(())
    }

    fn add_parts(
        &mut self,
        id: WorkflowSpecId,
        parts: &[&[u8]],
    ) -> Result<(), WriteError<S::Error>> {
        let key = *id.as_bytes();
        if layout::RESERVED_IDS.contains(&key) {
            return Err(WriteError::ReservedId { id });
        }
        let (pad, offset) = self.next_frame();
        if offset > layout::MAX_OFFSET {
            return Err(WriteError::TooLarge { offset });
        }
        if (self.count + 1) * 2 > self.index.slots().len() && !self.index.grow() {
            let capacity = self.index.slots().len();
            return Err(WriteError::IndexFull { capacity });
        }
        let checksum = match parts {
            [data] => layout::checksum(data),
            _ => {
                let mut sum = layout::Checksum::new(parts.iter().map(|p| p.len()).sum());
                parts.iter().for_each(|p| sum.update(p));
                sum.finish()
            }
        };
        let slot = IndexSlot {
            id: key,
            hash: layout::slot_hash(&key),
            offset,
            checksum,
        };
        match place(self.index.slots(), slot) {
            Ok(_) => {}
            Err(Placement::Duplicate) => return Err(WriteError::DuplicateId { id }),
            Err(Placement::Full) => {
                let capacity = self.index.slots().len();
                return Err(WriteError::IndexFull { capacity });
            }
        }
        // After a sink error the output holds a partial frame: the writer's
        // result is unusable, and the caller starts over.
        if let Some(len) = pad {
            self.frame(&layout::PAD_ID, &[&[0; 8][..len as usize]])?;
        }
        self.frame(&key, parts)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the index and the trailer; returns the store's size in bytes.
    pub fn finish(self) -> Result<u64, WriteError<S::Error>> {
        self.finish_into_sink().map(|(_, len)| len)
    }

    /// [`finish`](Self::finish), handing the sink back (to flush or sync it).
    ///
    /// The index is built in the writer's slot memory: the slots are sorted
    /// by hash (in place, no allocation), which is the order their home
    /// buckets come in, and then laid into buckets front to back, each
    /// bucket taking the next entries whose home is at or before it. That is
    /// exactly the table linear probing by buckets would build, written in
    /// one pass with no table in memory.
    pub fn finish_into_sink(mut self) -> Result<(S, u64), WriteError<S::Error>> {
        let index_offset = self.offset;
        let count = self.count;
        let home = layout::home_buckets_for(count as u64);
        let slots = self.index.slots();
        slots.sort_unstable_by_key(|s| (s.is_empty(), s.hash));
        let entries = &slots[..count];
        // First pass: how many buckets, and the longest probe.
        let (buckets, max_probe) =
            match lay_out(entries, home, |_| Ok::<(), core::convert::Infallible>(())) {
                Ok(shape) => shape,
                Err(never) => match never {},
            };
        let padding = layout::index_padding(index_offset);
        let index_len = padding + buckets * layout::BUCKET as u64;
        let sums_len = 8 * count as u64;
        #[cfg(feature = "store-zstd")]
        let facts = self.zstd;
        #[cfg(not(feature = "store-zstd"))]
        let facts: Option<core::convert::Infallible> = None;
        let info_size = if facts.is_some() {
            layout::ZSTD_INFO_SIZE as u64
        } else {
            0
        };
        let covered = FRAME as u64 + index_len + FRAME as u64 + sums_len + info_size;
        let mut meta = layout::Checksum::new(covered as usize);
        let mut emit = |sink: &mut S, bytes: &[u8]| {
            meta.update(bytes);
            sink.write_all(bytes).map_err(WriteError::Sink)
        };

        emit(&mut self.sink, &layout::INDEX_ID)?;
        emit(&mut self.sink, &index_len.to_le_bytes())?;
        emit(
            &mut self.sink,
            &[0_u8; layout::BUCKET_ALIGN][..padding as usize],
        )?;
        let sink = &mut self.sink;
        lay_out(entries, home, |bucket| emit(sink, bucket))?;

        emit(&mut self.sink, &layout::CHECKSUMS_ID)?;
        emit(&mut self.sink, &sums_len.to_le_bytes())?;
        for slot in entries {
            emit(&mut self.sink, &slot.checksum.to_le_bytes())?;
        }
        let (version, flags) = match facts {
            #[cfg(feature = "store-zstd")]
            Some(facts) => {
                let mut info = [0_u8; layout::ZSTD_INFO_LEN];
                let fields = [
                    (layout::zstd_info::LARGEST, facts.largest),
                    (layout::zstd_info::TOTAL, facts.total),
                    (
                        layout::zstd_info::DICTIONARY_CHECKSUM,
                        facts.dictionary_checksum,
                    ),
                    (layout::zstd_info::LEVEL, facts.level as u64),
                ];
                for (at, value) in fields {
                    info[at..at + 8].copy_from_slice(&value.to_le_bytes());
                }
                emit(&mut self.sink, &layout::ZSTD_INFO_ID)?;
                emit(&mut self.sink, &(info.len() as u64).to_le_bytes())?;
                emit(&mut self.sink, &info)?;
                (layout::VERSION_COMPRESSED, facts.flags)
            }
            #[cfg(not(feature = "store-zstd"))]
            Some(never) => match never {},
            None => (layout::VERSION, self.flags),
        };
        self.offset += covered;

        let mut t = [0_u8; layout::TRAILER_LEN];
        t[trailer::MAGIC..trailer::MAGIC + 8].copy_from_slice(&layout::TRAILER_MAGIC);
        t[trailer::VERSION..trailer::VERSION + 4].copy_from_slice(&version.to_le_bytes());
        t[trailer::FLAGS..trailer::FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
        let fields = [
            (trailer::ENTRY_COUNT, count as u64),
            (trailer::INDEX_OFFSET, index_offset),
            (trailer::INDEX_CAPACITY, home),
            (trailer::MAX_PROBE, max_probe),
            (trailer::INDEX_CHECKSUM, meta.finish()),
        ];
        for (at, value) in fields {
            t[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let own = layout::checksum(&t[..trailer::TRAILER_CHECKSUM]);
        t[trailer::TRAILER_CHECKSUM..].copy_from_slice(&own.to_le_bytes());
        self.frame(&layout::TRAILER_ID, &[&t])?;
        Ok((self.sink, self.offset))
    }
}

/// Lays `entries` (sorted by hash) into buckets, handing each bucket's
/// bytes to `out` in order; returns the number of buckets and the longest
/// probe (buckets past the home bucket).
fn lay_out<E>(
    entries: &[IndexSlot],
    home: u64,
    mut out: impl FnMut(&[u8; layout::BUCKET]) -> Result<(), E>,
) -> Result<(u64, u64), E> {
    let mut next = 0;
    let mut bucket = 0_u64;
    let mut max_probe = 0;
    while bucket < home || next < entries.len() {
        let mut bytes = [0_u8; layout::BUCKET];
        for k in 0..layout::BUCKET_SLOTS {
            let Some(entry) = entries.get(next) else {
                break;
            };
            let entry_home = layout::home_bucket(entry.hash, home);
            if entry_home > bucket {
                break;
            }
            max_probe = max_probe.max(bucket - entry_home);
            let tag = layout::TAGS + 2 * k;
            bytes[tag..tag + 2].copy_from_slice(&layout::tag(entry.hash).to_le_bytes());
            let at = layout::OFFSETS + layout::OFFSET_BYTES * k;
            bytes[at..at + layout::OFFSET_BYTES]
                .copy_from_slice(&entry.offset.to_le_bytes()[..layout::OFFSET_BYTES]);
            next += 1;
        }
        out(&bytes)?;
        bucket += 1;
    }
    Ok((bucket, max_probe))
}

#[cfg(all(test, feature = "heapless"))]
mod heapless_tests {
    use super::*;
    use crate::store::StoreView;

    fn id(n: u8) -> WorkflowSpecId {
        WorkflowSpecId::from_bytes([n; 16])
    }

    fn data(n: u8) -> impl Iterator<Item = u8> {
        (0..n as usize * 5).map(move |i| i as u8 ^ n)
    }

    #[test]
    fn round_trip_through_heapless_sink_and_index() {
        let mut file = heapless::Vec::<u8, 2048>::new();
        let mut writer =
            StoreWriter::new(&mut file, heapless::Vec::<IndexSlot, 16>::new()).unwrap();
        // 16 slots hold 8 workflows; the 8th is a duplicate.
        for n in 1..=7 {
            let bytes: heapless::Vec<u8, 64> = data(n).collect();
            writer.add(id(n), &bytes).unwrap();
        }
        assert_eq!(
            writer.add(id(3), b"again"),
            Err(WriteError::DuplicateId { id: id(3) })
        );
        let len = writer.finish().unwrap();
        assert_eq!(len as usize, file.len());

        let store = StoreView::parse(&file).unwrap();
        assert_eq!(store.len(), 7);
        for n in 1..=7 {
            assert!(store.get(&id(n)).unwrap().iter().copied().eq(data(n)));
        }
        assert_eq!(store.get(&id(8)), None);
        store.verify().unwrap();

        // The same bytes as the slice sink and slice index write.
        let mut buf = [0_u8; 2048];
        let mut slots = [IndexSlot::EMPTY; 16];
        let mut writer = StoreWriter::new(SliceSink::new(&mut buf), &mut slots[..]).unwrap();
        for n in 1..=7 {
            let bytes: heapless::Vec<u8, 64> = data(n).collect();
            writer.add(id(n), &bytes).unwrap();
        }
        let len = writer.finish().unwrap() as usize;
        assert_eq!(&buf[..len], &file[..]);
    }

    #[test]
    fn a_full_vec_refuses_the_write_whole() {
        let mut slots = [IndexSlot::EMPTY; 4];
        let mut file = heapless::Vec::<u8, 200>::new();
        {
            let mut writer = StoreWriter::new(&mut file, &mut slots[..]).unwrap();
            // Header frame (40 bytes), a bare padding frame (24: the
            // workflow's frame would start 40 bytes into its line), then
            // this frame's id and length (24).
            assert_eq!(
                writer.add(id(1), &[7; 300]),
                Err(WriteError::Sink(SinkFull {
                    needed: 300,
                    available: 112
                }))
            );
        }
        assert_eq!(file.len(), 88, "the refused data left no bytes behind");

        // Room for the workflow but not for the index and trailer.
        let mut file = heapless::Vec::<u8, 120>::new();
        let mut writer = StoreWriter::new(&mut file, &mut slots[..]).unwrap();
        writer.add(id(1), b"fits").unwrap();
        assert!(matches!(
            writer.finish(),
            Err(WriteError::Sink(SinkFull { .. }))
        ));

        let mut bytes = heapless::Vec::<u8, 4, u8>::new();
        assert_eq!(bytes.write_all(b"abc"), Ok(()));
        assert_eq!(
            bytes.write_all(b"de"),
            Err(SinkFull {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(bytes, *b"abc");
    }

    #[test]
    fn a_full_index_is_an_error() {
        let mut file = [0_u8; 1024];
        let index = heapless::Vec::<IndexSlot, 4, u8>::new();
        let mut writer = StoreWriter::new(SliceSink::new(&mut file), index).unwrap();
        writer.add(id(1), b"one").unwrap();
        writer.add(id(2), b"two").unwrap();
        assert_eq!(
            writer.add(id(3), b"three"),
            Err(WriteError::IndexFull { capacity: 4 })
        );
        let len = writer.finish().unwrap() as usize;
        let store = StoreView::parse(&file[..len]).unwrap();
        assert_eq!(store.get(&id(2)), Some(&b"two"[..]));
        assert_eq!(store.get(&id(3)), None);
    }

    #[test]
    fn the_index_capacity_must_be_a_power_of_two() {
        fn capacity_error<const N: usize>() -> Option<WriteError<SinkFull>> {
            let mut file = [0_u8; 256];
            StoreWriter::new(
                SliceSink::new(&mut file),
                heapless::Vec::<IndexSlot, N>::new(),
            )
            .err()
        }
        assert_eq!(
            capacity_error::<6>(),
            Some(WriteError::BadIndexCapacity { capacity: 6 })
        );
        assert_eq!(
            capacity_error::<1>(),
            Some(WriteError::BadIndexCapacity { capacity: 1 })
        );
        assert_eq!(
            capacity_error::<0>(),
            Some(WriteError::BadIndexCapacity { capacity: 0 })
        );
        assert_eq!(capacity_error::<2>(), None);
    }
}
