//! Writing a version-2 store into any byte sink: [`StoreWriter`].
//!
//! The writer streams: it writes the header, then each workflow as it is
//! added, then the index and the trailer, and never seeks back, so it can
//! write to a pipe, a socket or a flash programmer. It keeps the index in
//! slot memory the caller provides ([`IndexStorage`]): a fixed slice in
//! `no_std`, a growing `Vec` in knhk-std.

use core::fmt;

use super::layout::{self, trailer, EMPTY, FRAME, SLOT};
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

/// One slot of the index being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSlot {
    id: [u8; 16],
    offset: u64,
    len: u64,
    checksum: u64,
}

impl IndexSlot {
    /// A free slot.
    pub const EMPTY: IndexSlot = IndexSlot {
        id: [0; 16],
        offset: EMPTY,
        len: 0,
        checksum: 0,
    };

    fn is_empty(&self) -> bool {
        self.offset == EMPTY
    }

    fn to_bytes(self) -> [u8; SLOT] {
        let mut out = [0_u8; SLOT];
        out[..16].copy_from_slice(&self.id);
        out[layout::SLOT_OFFSET..layout::SLOT_LEN].copy_from_slice(&self.offset.to_le_bytes());
        out[layout::SLOT_LEN..layout::SLOT_CHECKSUM].copy_from_slice(&self.len.to_le_bytes());
        out[layout::SLOT_CHECKSUM..].copy_from_slice(&self.checksum.to_le_bytes());
        out
    }
}

/// The memory a [`StoreWriter`] builds its index in: a power-of-two number
/// of slots, kept at most half full.
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
    let start = layout::slot_hash(&slot.id) as usize & mask;
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
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for WriteError<E> {}

/// Writes a version-2 store, streaming. See [`StoreView`](super::StoreView)
/// for an example.
pub struct StoreWriter<S: Sink, I: IndexStorage> {
    sink: S,
    index: I,
    count: usize,
    offset: u64,
    max_probe: usize,
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
            max_probe: 0,
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
        if (self.count + 1) * 2 > self.index.slots().len() {
            if !self.index.grow() {
                let capacity = self.index.slots().len();
                return Err(WriteError::IndexFull { capacity });
            }
            self.max_probe = probe_distance(self.index.slots());
        }
        let slot = IndexSlot {
            id: key,
            offset: self.offset,
            len: data.len() as u64,
            checksum: layout::checksum(data),
        };
        let step = match place(self.index.slots(), slot) {
            Ok(step) => step,
            Err(Placement::Duplicate) => return Err(WriteError::DuplicateId { id }),
            Err(Placement::Full) => {
                let capacity = self.index.slots().len();
                return Err(WriteError::IndexFull { capacity });
            }
        };
        // After a sink error the output holds a partial frame: the writer's
        // result is unusable, and the caller starts over.
        self.frame(&key, data)?;
        self.max_probe = self.max_probe.max(step);
        self.count += 1;
        Ok(())
    }

    /// Writes the index and the trailer; returns the store's size in bytes.
    pub fn finish(self) -> Result<u64, WriteError<S::Error>> {
        self.finish_into_sink().map(|(_, len)| len)
    }

    /// [`finish`](Self::finish), handing the sink back (to flush or sync it).
    pub fn finish_into_sink(mut self) -> Result<(S, u64), WriteError<S::Error>> {
        let index_offset = self.offset;
        let capacity = self.index.slots().len();
        let index_len = capacity * SLOT;
        self.sink
            .write_all(&layout::INDEX_ID)
            .map_err(WriteError::Sink)?;
        self.sink
            .write_all(&(index_len as u64).to_le_bytes())
            .map_err(WriteError::Sink)?;
        let mut hash = layout::Checksum::new(index_len);
        for i in 0..capacity {
            let bytes = self.index.slots()[i].to_bytes();
            hash.update(&bytes);
            self.sink.write_all(&bytes).map_err(WriteError::Sink)?;
        }
        self.offset += (FRAME + index_len) as u64;
        let mut t = [0_u8; layout::TRAILER_LEN];
        t[trailer::MAGIC..trailer::MAGIC + 8].copy_from_slice(&layout::TRAILER_MAGIC);
        t[trailer::VERSION..trailer::VERSION + 4].copy_from_slice(&layout::VERSION.to_le_bytes());
        let fields = [
            (trailer::ENTRY_COUNT, self.count as u64),
            (trailer::INDEX_OFFSET, index_offset),
            (trailer::INDEX_CAPACITY, capacity as u64),
            (trailer::MAX_PROBE, self.max_probe as u64),
            (trailer::INDEX_CHECKSUM, hash.finish()),
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

/// The longest probe any used slot needs.
fn probe_distance(slots: &[IndexSlot]) -> usize {
    let mask = slots.len() - 1;
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| i.wrapping_sub(layout::slot_hash(&s.id) as usize) & mask)
        .max()
        .unwrap_or(0)
}
