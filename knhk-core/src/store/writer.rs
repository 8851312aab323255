//! Writing a version-3 store into any byte sink: [`StoreWriter`].
//!
//! The writer streams: it writes the header, then each workflow as it is
//! added, then the index and the trailer, and never seeks back, so it can
//! write to a pipe, a socket or a flash programmer. It keeps the index in
//! slot memory the caller provides ([`IndexStorage`]): a fixed slice in
//! `no_std`, a growing `Vec` in knhk-std.

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

/// The slice a [`SliceSink`] writes to is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SinkFull {
    /// Bytes the write needed.
    pub needed: usize,
    /// Bytes left in the slice.
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
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for WriteError<E> {}

/// Writes a version-3 store, streaming. See [`StoreView`](super::StoreView)
/// for an example.
pub struct StoreWriter<S: Sink, I: IndexStorage> {
    sink: S,
    index: I,
    count: usize,
    offset: u64,
}

impl<S: Sink, I: IndexStorage> StoreWriter<S, I> {
    /// Starts a store in `sink`, building the index in `index`, and writes
    /// the header.
    pub fn new(sink: S, mut index: I) -> Result<Self, WriteError<S::Error>> {
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
        };
        let mut header = [0_u8; layout::HEADER_LEN];
        header[..8].copy_from_slice(&layout::HEADER_MAGIC);
        header[8..12].copy_from_slice(&layout::VERSION.to_le_bytes());
        writer.frame(&layout::HEADER_ID, &header)?;
        Ok(writer)
    }

    fn frame(&mut self, id: &[u8; 16], data: &[u8]) -> Result<(), WriteError<S::Error>> {
        self.sink.write_all(id).map_err(WriteError::Sink)?;
        self.sink
            .write_all(&(data.len() as u64).to_le_bytes())
            .map_err(WriteError::Sink)?;
        self.sink.write_all(data).map_err(WriteError::Sink)?;
        self.offset += (FRAME + data.len()) as u64;
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
        let key = *id.as_bytes();
        if layout::RESERVED_IDS.contains(&key) {
            return Err(WriteError::ReservedId { id });
        }
        if self.offset > layout::MAX_OFFSET {
            return Err(WriteError::TooLarge {
                offset: self.offset,
            });
        }
        if (self.count + 1) * 2 > self.index.slots().len() && !self.index.grow() {
            let capacity = self.index.slots().len();
            return Err(WriteError::IndexFull { capacity });
        }
        let slot = IndexSlot {
            id: key,
            hash: layout::slot_hash(&key),
            offset: self.offset,
            checksum: layout::checksum(data),
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
        self.frame(&key, data)?;
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
        let covered = FRAME as u64 + index_len + FRAME as u64 + sums_len;
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
        self.offset += covered;

        let mut t = [0_u8; layout::TRAILER_LEN];
        t[trailer::MAGIC..trailer::MAGIC + 8].copy_from_slice(&layout::TRAILER_MAGIC);
        t[trailer::VERSION..trailer::VERSION + 4].copy_from_slice(&layout::VERSION.to_le_bytes());
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
        self.frame(&layout::TRAILER_ID, &t)?;
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
