//! Reading a store from bytes: [`StoreView`].
//!
//! Hostile input is normal input here. Every offset and length from the file
//! goes through checked arithmetic and `usize::try_from` (so a 32-bit target
//! refuses what it cannot address), every field is read with
//! `from_le_bytes` from a bounds-checked slice, and probing stops at the
//! file's stated maximum (itself capped by the table size). A corrupt file
//! gives a [`StoreError`] that says what is wrong and where; never a panic,
//! a hang or an out-of-bounds read. No `unsafe` is used (the one prefetch
//! hint lives in its own module).

use core::fmt;

use super::layout::{self, trailer, BUCKET, FRAME};
#[cfg(feature = "store-v2")]
use super::layout::{EMPTY, SLOT, SLOT_CHECKSUM, SLOT_LEN, SLOT_OFFSET};
use super::prefetch;
use crate::WorkflowSpecId;

#[cfg(feature = "store-archive")]
mod archived;
#[cfg(feature = "store-zstd")]
mod compressed;
#[cfg(feature = "store-zstd")]
pub use compressed::{Stored, StoredEntries, ZstdFrame, ZstdInfo};

/// What is wrong with a store file, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError {
    /// An entry's frame or data runs past the end of the file.
    Truncated {
        /// Where the entry starts.
        offset: u64,
        /// Bytes it needs from there.
        needed: u64,
        /// Bytes the file has from there.
        available: u64,
    },
    /// The trailer names a version this reader does not know.
    UnsupportedVersion {
        /// The version in the file.
        version: u32,
    },
    /// The trailer's own checksum does not match: the file's end is damaged.
    TrailerChecksum {
        /// Where the trailer starts.
        offset: u64,
    },
    /// The trailer's counts or offsets contradict each other or the file.
    BadTrailer {
        /// Where the trailer starts.
        offset: u64,
        /// Which field is wrong.
        field: &'static str,
    },
    /// The index's checksum does not match (found by `verify`).
    IndexChecksum {
        /// Where the index entry starts.
        offset: u64,
    },
    /// An index slot points at something that is not the entry it names.
    BadSlot {
        /// Where the slot is.
        offset: u64,
    },
    /// An entry's data does not match its checksum (found by `verify`).
    EntryChecksum {
        /// The entry's id.
        id: WorkflowSpecId,
        /// Where the entry starts.
        offset: u64,
    },
    /// Two entries have the same id.
    DuplicateId {
        /// The id.
        id: WorkflowSpecId,
        /// Where the second one starts.
        offset: u64,
    },
    /// A workflow is not in the index (found by `verify`).
    MissingFromIndex {
        /// The entry's id.
        id: WorkflowSpecId,
        /// Where the entry starts.
        offset: u64,
    },
    /// A reserved id appears where a workflow should be.
    ReservedId {
        /// Where the entry starts.
        offset: u64,
    },
    /// The file has a number of entries or an index that does not fit in
    /// this target's address space.
    TooLarge {
        /// The offending value.
        value: u64,
    },
    /// The store's workflows are zstd frames (format version 4): a plain
    /// lookup would hand out compressed bytes, so it refuses.
    /// `StoreView::get_stored` hands out the frames; knhk-std's store
    /// decompresses them.
    Compressed,
    /// A compressed workflow's entry has no uncompressed length before its
    /// frame, or one above the largest the store records.
    BadCompressedEntry {
        /// Where the entry starts.
        offset: u64,
    },
    /// A compressed store's dictionary does not match its checksum.
    DictionaryChecksum {
        /// Where the dictionary entry starts.
        offset: u64,
    },
    /// An archived store's entry lacks a valid alignment prefix.
    BadArchivedEntry {
        /// Where the entry starts.
        offset: u64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StoreError::Truncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "truncated store: the entry at offset {offset} needs {needed} bytes, \
                 but only {available} remain"
            ),
            StoreError::UnsupportedVersion { version } => write!(
                f,
                "store format version {version} is not supported (this reader knows 1{}, 3{}{})",
                if cfg!(feature = "store-v2") {
                    ", 2"
                } else {
                    ""
                },
                if cfg!(feature = "store-zstd") {
                    " and 4"
                } else {
                    ""
                },
                match (cfg!(feature = "store-v2"), cfg!(feature = "store-zstd")) {
                    (true, true) => "",
                    (false, true) => "; version 2 needs knhk-core's `store-v2` feature",
                    (true, false) =>
                        "; version 4, compressed, needs knhk-core's `store-zstd` feature",
                    (false, false) =>
                        "; versions 2 and 4 need knhk-core's `store-v2` and `store-zstd` features",
                }
            ),
            StoreError::TrailerChecksum { offset } => write!(
                f,
                "corrupt store: the trailer at offset {offset} does not match its checksum"
            ),
            StoreError::BadTrailer { offset, field } => write!(
                f,
                "corrupt store: the trailer at offset {offset} has an impossible {field}"
            ),
            StoreError::IndexChecksum { offset } => write!(
                f,
                "corrupt store: the index at offset {offset} does not match its checksum"
            ),
            StoreError::BadSlot { offset } => write!(
                f,
                "corrupt store: the index slot at offset {offset} points at the wrong entry"
            ),
            StoreError::EntryChecksum { id, offset } => write!(
                f,
                "corrupt store: workflow {id} at offset {offset} does not match its checksum"
            ),
            StoreError::DuplicateId { id, offset } => write!(
                f,
                "corrupt store: workflow {id} appears again at offset {offset}"
            ),
            StoreError::MissingFromIndex { id, offset } => write!(
                f,
                "corrupt store: workflow {id} at offset {offset} is missing from the index"
            ),
            StoreError::ReservedId { offset } => write!(
                f,
                "corrupt store: the entry at offset {offset} uses an id reserved for the format"
            ),
            StoreError::TooLarge { value } => {
                write!(
                    f,
                    "store too large for this target: {value} does not fit in usize"
                )
            }
            StoreError::Compressed => f.write_str(
                "the store's workflows are zstd-compressed: read them through a \
                 decompressing reader (knhk-std's store) or as frames (get_stored)",
            ),
            StoreError::BadCompressedEntry { offset } => write!(
                f,
                "corrupt store: the compressed workflow at offset {offset} has no valid \
                 uncompressed length"
            ),
            StoreError::DictionaryChecksum { offset } => write!(
                f,
                "corrupt store: the dictionary at offset {offset} does not match its checksum"
            ),
            StoreError::BadArchivedEntry { offset } => write!(
                f,
                "corrupt store: the archived workflow at offset {offset} has no valid \
                 alignment prefix"
            ),
        }
    }
}

impl core::error::Error for StoreError {}

/// Which format a view was parsed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Version {
    /// The design document's plain entry list: lookups scan.
    V1,
    /// knhk's first indexed format: lookups probe a hash index of 40-byte
    /// slots.
    V2,
    /// knhk's compact index: lookups read one 64-byte bucket of 8-byte
    /// slots, then the entry.
    V3,
    /// Version 3's index over zstd-compressed workflows (feature
    /// `store-zstd`).
    V4,
}

#[derive(Clone, Copy, Debug)]
enum Index {
    #[cfg(feature = "store-v2")]
    Slots(SlotIndex),
    Buckets(BucketIndex),
}

/// Version 3's index.
#[derive(Clone, Copy, Debug)]
struct BucketIndex {
    /// Where the first bucket starts.
    buckets: usize,
    /// Buckets ids hash onto.
    home: u64,
    /// Buckets in all (the home buckets and the overflow after them).
    total: usize,
    max_probe: usize,
    entry_count: usize,
    /// Where the index entry's frame starts (end of the data entries).
    frame: usize,
    /// Where the checksum table's data starts.
    sums: usize,
    checksum: u64,
    trailer: usize,
    /// Where the index and checksum tables end: the trailer's frame, or in
    /// version 4 the compression facts' frame.
    end: usize,
}

/// Version 2's index.
#[cfg(feature = "store-v2")]
#[derive(Clone, Copy, Debug)]
struct SlotIndex {
    /// Where the slots start.
    slots: usize,
    capacity: usize,
    max_probe: usize,
    entry_count: usize,
    /// Where the index entry's frame starts (end of the data entries).
    frame: usize,
    checksum: u64,
    trailer: usize,
}

/// A parsed store over a byte slice (a file in memory, a memory map, a
/// flash image).
///
/// ```
/// use knhk_core::store::{IndexSlot, SliceSink, StoreView, StoreWriter};
/// use knhk_core::WorkflowSpecId;
///
/// let mut slots = [IndexSlot::EMPTY; 8];
/// let mut file = [0_u8; 512];
/// let mut sink = SliceSink::new(&mut file);
/// let mut writer = StoreWriter::new(&mut sink, &mut slots[..])?;
/// let id = WorkflowSpecId::from_bytes([7; 16]);
/// writer.add(id, b"approve-order")?;
/// let len = writer.finish()? as usize;
///
/// let store = StoreView::parse(&file[..len])?;
/// assert_eq!(store.get(&id), Some(&b"approve-order"[..]));
/// assert_eq!(store.len(), 1);
/// store.verify()?;
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StoreView<'a> {
    bytes: &'a [u8],
    version: Version,
    index: Option<Index>,
    /// First byte of the data entries.
    data_start: usize,
    /// One past the data entries.
    data_end: usize,
    /// `bytes[data_start..data_end]`: a frame found in here, at its offset
    /// less `data_start`, needs one bounds check.
    data: &'a [u8],
    /// Version 3's buckets, home and overflow (empty for other versions):
    /// a bucket found in here needs one bounds check.
    buckets: &'a [[u8; BUCKET]],
    /// The buckets [`try_get`](Self::try_get) answers from: `buckets`,
    /// but empty in a compressed store (whose `try_get` refuses), so that
    /// the common lookup needs no test of the store's kind.
    plain_buckets: &'a [[u8; BUCKET]],
    /// Version 3's number of home buckets (0 for other versions, which
    /// sends every fast lookup to the empty `buckets`' bounds check).
    home_buckets: u64,
    /// Data entries (excludes the reserved ones).
    len: usize,
    /// Version 4's compression: its workflows are zstd frames.
    #[cfg(feature = "store-zstd")]
    zstd: Option<compressed::ZstdInfo<'a>>,
    /// An archived store's rkyv format.
    #[cfg(feature = "store-archive")]
    archive: Option<layout::ArchiveFormat>,
    /// Version 3 with [`layout::FLAG_ALIGNED`]: padding frames may come
    /// between the workflows.
    aligned: bool,
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

fn read_id(bytes: &[u8], at: usize) -> Option<[u8; 16]> {
    let end = at.checked_add(16)?;
    bytes.get(at..end)?.try_into().ok()
}

fn to_usize(value: u64) -> Result<usize, StoreError> {
    usize::try_from(value).map_err(|_| StoreError::TooLarge { value })
}

/// One framed entry: its id, where its data is, and where the next begins.
#[derive(Clone, Copy, Debug)]
struct Frame {
    id: [u8; 16],
    data: usize,
    len: usize,
    next: usize,
}

/// Reads the frame at `at`, checking that it and its data fit.
fn frame_at(bytes: &[u8], at: usize) -> Result<Frame, StoreError> {
    let available = bytes.len().saturating_sub(at) as u64;
    let truncated = |needed: u64| StoreError::Truncated {
        offset: at as u64,
        needed,
        available,
    };
    let len_at = at.checked_add(16);
    let (Some(id), Some(len)) = (read_id(bytes, at), len_at.and_then(|l| read_u64(bytes, l)))
    else {
        return Err(truncated(FRAME as u64));
    };
    let needed = len.checked_add(FRAME as u64).ok_or(truncated(u64::MAX))?;
    if needed > available {
        return Err(truncated(needed));
    }
    // `needed <= available <= bytes.len()`, so these fit in usize.
    let len = len as usize;
    let data = at + FRAME;
    Ok(Frame {
        id,
        data,
        len,
        next: data + len,
    })
}

impl<'a> StoreView<'a> {
    /// Parses `bytes` as a version-3 or version-2 store (O(1): only the
    /// trailer and the header are read) or, failing the trailer's magic, as
    /// a version-1 entry list (scanned and validated once).
    pub fn parse(bytes: &'a [u8]) -> Result<StoreView<'a>, StoreError> {
        let tail_at = bytes.len().checked_sub(layout::TRAILER_SIZE);
        if let Some(at) = tail_at {
            let has_trailer = read_id(bytes, at) == Some(layout::TRAILER_ID)
                && bytes.get(at + FRAME..at + FRAME + 8) == Some(&layout::TRAILER_MAGIC[..]);
            if has_trailer {
                let bad = StoreError::BadTrailer {
                    offset: at as u64,
                    field: "version",
                };
                return match read_u32(bytes, at + FRAME + trailer::VERSION).ok_or(bad)? {
                    layout::VERSION => StoreView::parse_v3(bytes, at),
                    #[cfg(feature = "store-zstd")]
                    layout::VERSION_COMPRESSED => StoreView::parse_v4(bytes, at),
                    #[cfg(feature = "store-v2")]
                    layout::VERSION_2 => StoreView::parse_v2(bytes, at),
                    version => Err(StoreError::UnsupportedVersion { version }),
                };
            }
        }
        StoreView::parse_v1(bytes)
    }

    /// Checks the trailer frame's length and checksum.
    fn trailer_frame(bytes: &[u8], at: usize) -> Result<(), StoreError> {
        let offset = at as u64;
        let t = at + FRAME;
        if read_u64(bytes, at + 16) != Some(layout::TRAILER_LEN as u64) {
            return Err(StoreError::BadTrailer {
                offset,
                field: "length",
            });
        }
        let stated =
            read_u64(bytes, t + trailer::TRAILER_CHECKSUM).ok_or(StoreError::BadTrailer {
                offset,
                field: "length",
            })?;
        if layout::checksum(&bytes[t..t + trailer::TRAILER_CHECKSUM]) != stated {
            return Err(StoreError::TrailerChecksum { offset });
        }
        Ok(())
    }

    /// Checks the header entry for `version` and `flags`; returns where
    /// the workflows start.
    fn header(bytes: &[u8], version: u32, flags: u32, data_end: usize) -> Option<usize> {
        let header = frame_at(bytes, 0).ok()?;
        let magic = match version {
            #[cfg(feature = "store-v2")]
            layout::VERSION_2 => layout::HEADER_MAGIC_V2,
            #[cfg(feature = "store-zstd")]
            layout::VERSION_COMPRESSED => layout::HEADER_MAGIC_V4,
            _ => layout::HEADER_MAGIC,
        };
        let ok = header.id == layout::HEADER_ID
            && header.len == layout::HEADER_LEN
            && bytes.get(header.data..header.data + 8) == Some(&magic[..])
            && read_u32(bytes, header.data + 8) == Some(version)
            && read_u32(bytes, header.data + 12) == Some(flags)
            && header.next <= data_end;
        ok.then_some(header.next)
    }

    fn parse_v3(bytes: &'a [u8], at: usize) -> Result<StoreView<'a>, StoreError> {
        StoreView::trailer_frame(bytes, at)?;
        let known = if cfg!(feature = "store-archive") {
            layout::FLAGS_V3
        } else {
            layout::FLAG_ALIGNED
        };
        let flags = read_u32(bytes, at + FRAME + trailer::FLAGS)
            .filter(|f| f & !known == 0)
            .ok_or(StoreError::BadTrailer {
                offset: at as u64,
                field: "flags",
            })?;
        let (view, _) = StoreView::parse_buckets(bytes, at, at, layout::VERSION, flags)?;
        Ok(view)
    }

    /// The bucket index and the region of a version-3 or version-4 store
    /// whose trailer (at `at`) is checked, with its tables ending at `end`
    /// (the trailer, or version 4's compression facts); also returns where
    /// the header ends.
    fn parse_buckets(
        bytes: &'a [u8],
        at: usize,
        end: usize,
        version: u32,
        flags: u32,
    ) -> Result<(StoreView<'a>, usize), StoreError> {
        let offset = at as u64;
        let bad = |field| StoreError::BadTrailer { offset, field };
        let t = at + FRAME;
        let field = |f: usize| read_u64(bytes, t + f).ok_or(bad("length"));
        let entry_count = to_usize(field(trailer::ENTRY_COUNT)?)?;
        let index_frame = to_usize(field(trailer::INDEX_OFFSET)?)?;
        let home = field(trailer::INDEX_CAPACITY)?;
        let max_probe = to_usize(field(trailer::MAX_PROBE)?)?;
        let checksum = field(trailer::INDEX_CHECKSUM)?;
        // The index and the checksum table fill the space between the
        // index frame and the trailer, so their shape follows from the
        // trailer's numbers alone: opening touches no page but the
        // trailer's and the header's. `verify` reads their frames.
        let sums_len = entry_count.checked_mul(8).ok_or(bad("entry count"))?;
        let padding = layout::index_padding(index_frame as u64) as usize;
        let buckets = index_frame
            .checked_add(FRAME + padding)
            .filter(|&b| b <= end)
            .ok_or(bad("index offset"))?;
        let tables = sums_len.checked_add(FRAME).ok_or(bad("entry count"))?;
        let table = (end - buckets)
            .checked_sub(tables)
            .ok_or(bad("index offset"))?;
        if !table.is_multiple_of(BUCKET) {
            return Err(bad("index offset"));
        }
        let total = table / BUCKET;
        if home == 0 || home > total as u64 {
            return Err(bad("index capacity"));
        }
        if max_probe >= total {
            return Err(bad("maximum probe"));
        }
        if total
            .checked_mul(layout::BUCKET_SLOTS)
            .is_none_or(|slots| entry_count > slots)
        {
            return Err(bad("entry count"));
        }
        let sums = buckets + table + FRAME;
        #[allow(unused_mut)]
        let mut data_start =
            StoreView::header(bytes, version, flags, index_frame).ok_or(bad("header"))?;
        #[cfg(feature = "store-archive")]
        let mut archive = None;
        #[cfg(feature = "store-archive")]
        if flags & layout::FLAG_ARCHIVED != 0 {
            // The format record comes first after the header.
            let record = frame_at(&bytes[..index_frame], data_start)
                .ok()
                .filter(|r| r.id == layout::ARCHIVE_ID)
                .ok_or(bad("archive format"))?;
            archive = Some(
                layout::ArchiveFormat::from_bytes(&bytes[record.data..record.next])
                    .ok_or(bad("archive format"))?,
            );
            data_start = record.next;
        }
        let (buckets_table, _) = bytes[buckets..buckets + table].as_chunks::<BUCKET>();
        let view = StoreView {
            bytes,
            version: Version::V3,
            buckets: buckets_table,
            plain_buckets: buckets_table,
            home_buckets: home,
            index: Some(Index::Buckets(BucketIndex {
                buckets,
                home,
                total,
                max_probe,
                entry_count,
                frame: index_frame,
                sums,
                checksum,
                trailer: at,
                end,
            })),
            #[cfg(feature = "store-archive")]
            archive,
            aligned: version == layout::VERSION && flags & layout::FLAG_ALIGNED != 0,
            ..StoreView::indexed_region(bytes, data_start, index_frame, entry_count)
        };
        Ok((view, data_start))
    }

    /// The fields an indexed view shares: its workflows lie between the
    /// header and the index frame. (`version` and `index` are set by the
    /// caller.)
    fn indexed_region(
        bytes: &'a [u8],
        data_start: usize,
        index_frame: usize,
        entry_count: usize,
    ) -> StoreView<'a> {
        StoreView {
            bytes,
            version: Version::V3,
            index: None,
            data_start,
            data_end: index_frame,
            data: &bytes[data_start..index_frame],
            buckets: &[],
            plain_buckets: &[],
            home_buckets: 0,
            len: entry_count,
            #[cfg(feature = "store-zstd")]
            zstd: None,
            #[cfg(feature = "store-archive")]
            archive: None,
            aligned: false,
        }
    }

    fn parse_v1(bytes: &'a [u8]) -> Result<StoreView<'a>, StoreError> {
        let mut at = 0;
        let mut len = 0;
        while at < bytes.len() {
            let frame = frame_at(bytes, at)?;
            if !layout::RESERVED_IDS.contains(&frame.id) {
                len += 1;
            }
            at = frame.next;
        }
        Ok(StoreView {
            bytes,
            version: Version::V1,
            index: None,
            data_start: 0,
            data_end: bytes.len(),
            data: bytes,
            buckets: &[],
            plain_buckets: &[],
            home_buckets: 0,
            len,
            #[cfg(feature = "store-zstd")]
            zstd: None,
            #[cfg(feature = "store-archive")]
            archive: None,
            aligned: false,
        })
    }

    #[cfg(feature = "store-v2")]
    fn parse_v2(bytes: &'a [u8], at: usize) -> Result<StoreView<'a>, StoreError> {
        let offset = at as u64;
        let bad = |field| StoreError::BadTrailer { offset, field };
        StoreView::trailer_frame(bytes, at)?;
        let t = at + FRAME;
        let field = |f: usize| read_u64(bytes, t + f).ok_or(bad("length"));
        let entry_count = to_usize(field(trailer::ENTRY_COUNT)?)?;
        let index_frame = to_usize(field(trailer::INDEX_OFFSET)?)?;
        let capacity = to_usize(field(trailer::INDEX_CAPACITY)?)?;
        let max_probe = to_usize(field(trailer::MAX_PROBE)?)?;
        let checksum = field(trailer::INDEX_CHECKSUM)?;
        if !capacity.is_power_of_two() {
            return Err(bad("index capacity"));
        }
        if entry_count > capacity / 2 {
            return Err(bad("entry count"));
        }
        if max_probe >= capacity {
            return Err(bad("maximum probe"));
        }
        let index = frame_at(bytes, index_frame).map_err(|_| bad("index offset"))?;
        let slot_bytes = capacity.checked_mul(SLOT).ok_or(bad("index capacity"))?;
        if index.id != layout::INDEX_ID || index.len != slot_bytes || index.next != at {
            return Err(bad("index offset"));
        }
        let data_start =
            StoreView::header(bytes, layout::VERSION_2, 0, index_frame).ok_or(bad("header"))?;
        Ok(StoreView {
            bytes,
            version: Version::V2,
            index: Some(Index::Slots(SlotIndex {
                slots: index.data,
                capacity,
                max_probe,
                entry_count,
                frame: index_frame,
                checksum,
                trailer: at,
            })),
            ..StoreView::indexed_region(bytes, data_start, index_frame, entry_count)
        })
    }

    /// Where the frame of the entry whose data is `data` (a slice of
    /// `bytes`) starts: for the errors that name an entry.
    #[cfg(any(feature = "store-zstd", feature = "store-archive"))]
    fn entry_offset(&self, data: &[u8]) -> u64 {
        (data.as_ptr() as usize)
            .wrapping_sub(self.bytes.as_ptr() as usize)
            .wrapping_sub(FRAME) as u64
    }

    /// The format the bytes were parsed as.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Number of workflows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the workflow frames are aligned within cache lines
    /// ([`layout::FLAG_ALIGNED`], what [`StoreWriter::new`] writes): a
    /// lookup then reads one line of the entry for its id, length and
    /// first 8 data bytes.
    ///
    /// [`StoreWriter::new`]: super::StoreWriter::new
    pub fn is_aligned(&self) -> bool {
        self.aligned
    }

    /// Whether the store has no workflows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the view is over.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The byte range of the index (versions 2 and 3), for callers that
    /// want to advise the kernel to load it.
    pub fn index_range(&self) -> Option<core::ops::Range<usize>> {
        match self.index? {
            #[cfg(feature = "store-v2")]
            Index::Slots(ix) => Some(ix.slots..ix.slots + ix.capacity * SLOT),
            Index::Buckets(ix) => Some(ix.buckets..ix.buckets + ix.total * BUCKET),
        }
    }

    /// The workflow with this id, or `None` if there is none (or the file
    /// is damaged where the lookup led; [`try_get`](Self::try_get) says).
    ///
    /// A lookup trusts the index for where the data is, within the data
    /// region: it is always in bounds, but only [`verify`](Self::verify)
    /// proves that a damaged or forged index points at the right entry.
    #[inline]
    pub fn get(&self, id: &WorkflowSpecId) -> Option<&'a [u8]> {
        self.try_get(id).ok().flatten()
    }

    /// The workflow with this id, `Ok(None)` if there is none, or the damage
    /// the lookup ran into.
    ///
    /// In version 3 this reads one 64-byte index bucket (more only when the
    /// home bucket overflowed, which the writer keeps rare) and the entry's
    /// frame, whose id confirms the match.
    ///
    /// On hosted targets the common case is inlined into the caller (the
    /// fewer instructions a lookup takes, the more of them the CPU
    /// overlaps); on bare metal (`target_os = "none"`), where code size
    /// counts more, every lookup takes the one careful path.
    ///
    /// A compressed store (version 4) refuses with
    /// [`StoreError::Compressed`] rather than hand out compressed bytes.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn try_get(&self, id: &WorkflowSpecId) -> Result<Option<&'a [u8]>, StoreError> {
        // A compressed store's `plain_buckets` are empty: its lookups all
        // come to the careful path, which refuses them.
        #[cfg(not(target_os = "none"))]
        if let Some(found) = self.try_get_common(id) {
            return Ok(found);
        }
        #[cfg(feature = "store-zstd")]
        if self.zstd.is_some() {
            return Err(StoreError::Compressed);
        }
        self.lookup_carefully(id)
    }

    /// The common case of [`try_get`](Self::try_get) alone: `Some(answer)`
    /// where the id's home bucket settles the lookup (in a version-3 store
    /// nearly every lookup), `None` where `try_get` must look further
    /// (other versions, a crowded bucket, damage, a compressed store).
    ///
    /// For callers that answer the rest their own way (knhk-std keeps a
    /// version-1 store's index in a `HashMap`) without paying a test per
    /// lookup for it: `quick.or_else(|| full lookup)` is `try_get`.
    ///
    /// ```
    /// use knhk_core::store::{IndexSlot, SliceSink, StoreView, StoreWriter};
    /// use knhk_core::WorkflowSpecId;
    ///
    /// let mut slots = [IndexSlot::EMPTY; 8];
    /// let mut file = [0_u8; 512];
    /// let mut writer = StoreWriter::new(SliceSink::new(&mut file), &mut slots[..])?;
    /// let id = WorkflowSpecId::from_bytes([1; 16]);
    /// writer.add(id, b"approve")?;
    /// let len = writer.finish()? as usize;
    ///
    /// let store = StoreView::parse(&file[..len])?;
    /// let found = match store.try_get_common(&id) {
    ///     Some(answer) => answer,
    ///     None => store.try_get(&id)?,
    /// };
    /// assert_eq!(found, Some(&b"approve"[..]));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub fn try_get_common(&self, id: &WorkflowSpecId) -> Option<Option<&'a [u8]>> {
        self.probe_common(self.plain_buckets, id.as_bytes())
    }

    /// [`try_get`](Self::try_get) whatever the store holds: the stored
    /// bytes (a compressed store's length and frame).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn lookup(&self, id: &WorkflowSpecId) -> Result<Option<&'a [u8]>, StoreError> {
        #[cfg(not(target_os = "none"))]
        if let Some(found) = self.probe_common(self.buckets, id.as_bytes()) {
            return Ok(found);
        }
        self.lookup_carefully(id)
    }

    /// Every lookup the common case does not answer: the older versions,
    /// and the version-3 lookups that need more than one slot or bucket.
    #[cfg_attr(not(target_os = "none"), cold, inline(never))]
    fn lookup_carefully(&self, id: &WorkflowSpecId) -> Result<Option<&'a [u8]>, StoreError> {
        let key = id.as_bytes();
        match &self.index {
            Some(Index::Buckets(ix)) => self.probe_buckets(ix, key, layout::slot_hash(key)),
            #[cfg(feature = "store-v2")]
            Some(Index::Slots(ix)) => self.probe_slots(ix, key),
            None => self.scan(key),
        }
    }

    /// The common case of a version-3 lookup, in as few instructions as it
    /// can be: a lookup's cost is mostly memory latency, and the fewer
    /// instructions each takes, the more lookups the CPU keeps in flight at
    /// once. The common case: the home bucket has at most one slot with the
    /// id's tag, and that slot's frame is the id's, or it has none and is
    /// not full. `Some(answer)` then; `None` sends the lookup to
    /// [`probe_buckets`](Self::probe_buckets), which answers everything.
    ///
    /// `buckets` is the view's `buckets` or `plain_buckets`; where it is
    /// empty (other versions, or a compressed store for `try_get`) the
    /// bounds check sends the lookup to the careful path, so the common
    /// case tests nothing else.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn probe_common(
        &self,
        buckets: &'a [[u8; BUCKET]],
        key: &[u8; 16],
    ) -> Option<Option<&'a [u8]>> {
        let hash = layout::slot_hash(key);
        let home = layout::home_bucket(hash, self.home_buckets) as usize;
        match self.candidate_in(buckets, home, hash) {
            Ahead::Absent => Some(None),
            Ahead::Frame(frame) => self.frame_data(frame, key).map(Some),
            Ahead::Ask => None,
        }
    }

    /// What bucket `home` of `buckets` says of `hash`: the frame its one
    /// candidate slot points at, that the id is absent (no slot with its
    /// tag, and the bucket not full), or that the careful path must look.
    #[inline(always)]
    fn candidate_in(&self, buckets: &'a [[u8; BUCKET]], home: usize, hash: u64) -> Ahead {
        let Some(bucket) = buckets.get(home) else {
            return Ahead::Ask;
        };
        // The hash's low 16 bits, without the fix-up of `layout::tag` that
        // makes a 0 a 1 (three instructions of a few dozen): where they
        // are 0 (one lookup in 65,536), they match an empty slot, whose
        // offset 0 leads outside the data, or none in a full bucket;
        // either way the careful path, which uses the real tag, answers.
        let Some(k) = first_tag_slot(bucket, hash as u16) else {
            return if bucket_full(bucket) {
                Ahead::Ask
            } else {
                Ahead::Absent
            };
        };
        // A 48-bit offset fits a 64-bit usize; elsewhere, the careful path.
        // The frame is kept relative to the data (an offset below it wraps
        // round to one that no data slice holds).
        match slot_offset(bucket, k).map(usize::try_from) {
            Some(Ok(frame)) => Ahead::Frame(frame.wrapping_sub(self.data_start)),
            _ => Ahead::Ask,
        }
    }

    /// Starts loading the index line that a lookup of `id` reads, without
    /// waiting for it: call it for the next ids while working on the
    /// current one, so that their memory latency overlaps your work. A
    /// hint only: it never fails, and does nothing for version-1 stores.
    /// [`get_many`](Self::get_many) does this (and more) for a whole batch.
    #[inline]
    pub fn prefetch(&self, id: &WorkflowSpecId) {
        let key = id.as_bytes();
        match &self.index {
            Some(Index::Buckets(ix)) => {
                let hash = layout::slot_hash(key);
                self.prefetch_bucket(layout::home_bucket(hash, ix.home) as usize);
            }
            #[cfg(feature = "store-v2")]
            Some(Index::Slots(ix)) => {
                let slot = layout::slot_hash(key) as usize & (ix.capacity - 1);
                if let Some(byte) = self.bytes.get(ix.slots + slot * SLOT) {
                    prefetch::line(byte);
                }
            }
            None => {}
        }
    }

    /// Looks up every id of `ids`, in order, overlapping the memory latency
    /// of the lookups: while it hands out one workflow, it has the index
    /// lines of the lookups [`INDEX_AHEAD`](GetMany::INDEX_AHEAD) ahead and
    /// the entries of those [`DATA_AHEAD`](GetMany::DATA_AHEAD) ahead on
    /// their way into the cache. Each item is what
    /// [`try_get`](Self::try_get) returns for that id.
    ///
    /// ```
    /// use knhk_core::store::{IndexSlot, SliceSink, StoreView, StoreWriter};
    /// use knhk_core::WorkflowSpecId;
    ///
    /// let mut slots = [IndexSlot::EMPTY; 8];
    /// let mut file = [0_u8; 512];
    /// let mut writer = StoreWriter::new(SliceSink::new(&mut file), &mut slots[..])?;
    /// let (a, b) = (WorkflowSpecId::from_bytes([1; 16]), WorkflowSpecId::from_bytes([2; 16]));
    /// writer.add(a, b"approve")?;
    /// writer.add(b, b"ship")?;
    /// let len = writer.finish()? as usize;
    ///
    /// let store = StoreView::parse(&file[..len])?;
    /// let batch = [b, a, WorkflowSpecId::from_bytes([3; 16])];
    /// let found: Vec<_> = store.get_many(&batch).collect::<Result<_, _>>()?;
    /// assert_eq!(found, [Some(&b"ship"[..]), Some(&b"approve"[..]), None]);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn get_many<'i>(&self, ids: &'i [WorkflowSpecId]) -> GetMany<'a, 'i> {
        GetMany::new(*self, ids)
    }

    fn scan(&self, key: &[u8; 16]) -> Result<Option<&'a [u8]>, StoreError> {
        for entry in self.entries() {
            let (found, data) = entry?;
            if found.as_bytes() == key {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    #[inline]
    fn prefetch_bucket(&self, bucket: usize) {
        if let Some(line) = self.buckets.get(bucket) {
            prefetch::line(&line[0]);
        }
    }

    /// Bucket number `bucket` of the index.
    #[inline]
    fn bucket(&self, ix: &BucketIndex, bucket: usize) -> Result<&'a [u8; BUCKET], StoreError> {
        let at = ix.buckets + bucket * BUCKET;
        self.bytes
            .get(at..at + BUCKET)
            .and_then(|b| b.try_into().ok())
            .ok_or(StoreError::BadSlot { offset: at as u64 })
    }

    /// The data of the frame at `offset`, if it is a data frame with id
    /// `key`; `Err` if the offset or the frame's length leave the data.
    #[inline]
    fn frame_with_id(
        &self,
        offset: usize,
        key: &[u8; 16],
        bad: StoreError,
    ) -> Result<Option<&'a [u8]>, StoreError> {
        if offset < self.data_start {
            return Err(bad);
        }
        let data = offset.checked_add(FRAME).ok_or(bad)?;
        let head = self.bytes.get(offset..data).ok_or(bad)?;
        let (id, len) = head.split_at(16);
        if id != key {
            return Ok(None);
        }
        let len = u64::from_le_bytes(len.try_into().map_err(|_| bad)?);
        let len = usize::try_from(len).map_err(|_| bad)?;
        let end = data.checked_add(len).ok_or(bad)?;
        if end > self.data_end {
            return Err(bad);
        }
        Ok(Some(&self.bytes[data..end]))
    }

    /// Every version-3 lookup, careful about everything (and the one that
    /// names the damage).
    #[cold]
    #[inline(never)]
    fn probe_buckets(
        &self,
        ix: &BucketIndex,
        key: &[u8; 16],
        hash: u64,
    ) -> Result<Option<&'a [u8]>, StoreError> {
        let tag = layout::tag(hash);
        let home = layout::home_bucket(hash, ix.home) as usize;
        // `home < ix.home <= ix.total` and `max_probe < ix.total`, checked
        // at parse, so neither sum overflows.
        let last = (home + ix.max_probe).min(ix.total - 1);
        for number in home..=last {
            let bucket = self.bucket(ix, number)?;
            let mut matches = tag_lanes(bucket, tag);
            while matches != 0 {
                let k = lane(matches);
                matches &= matches - 1;
                let bad = StoreError::BadSlot {
                    offset: (ix.buckets + number * BUCKET + layout::TAGS + 2 * k) as u64,
                };
                let frame = slot_offset(bucket, k).ok_or(bad)?;
                let frame = usize::try_from(frame).map_err(|_| bad)?;
                if let Some(data) = self.frame_with_id(frame, key, bad)? {
                    return Ok(Some(data));
                }
            }
            // Filled slots come first: a bucket whose last slot is empty
            // was never full, so the id did not spill past it.
            if !bucket_full(bucket) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    #[cfg(feature = "store-v2")]
    fn probe_slots(&self, ix: &SlotIndex, key: &[u8; 16]) -> Result<Option<&'a [u8]>, StoreError> {
        let mask = ix.capacity - 1;
        let start = layout::slot_hash(key) as usize & mask;
        for step in 0..=ix.max_probe {
            let slot_at = ix.slots + ((start + step) & mask) * SLOT;
            let slot_offset = slot_at as u64;
            let bad = StoreError::BadSlot {
                offset: slot_offset,
            };
            let entry = read_u64(self.bytes, slot_at + SLOT_OFFSET).ok_or(bad)?;
            if entry == EMPTY {
                return Ok(None);
            }
            if read_id(self.bytes, slot_at).ok_or(bad)? != *key {
                continue;
            }
            let len = read_u64(self.bytes, slot_at + SLOT_LEN).ok_or(bad)?;
            // The slot's data must lie within the data entries. The frame
            // itself is not read here (that would cost a cache miss into the
            // data per lookup); `verify` checks every slot against its frame.
            let entry = usize::try_from(entry).map_err(|_| bad)?;
            let len = usize::try_from(len).map_err(|_| bad)?;
            let start = entry.checked_add(FRAME).ok_or(bad)?;
            let end = start.checked_add(len).ok_or(bad)?;
            if entry < self.data_start || end > self.data_end {
                return Err(bad);
            }
            return Ok(Some(&self.bytes[start..end]));
        }
        Ok(None)
    }

    /// The workflows in file order. A compressed store's yields
    /// [`StoreError::Compressed`] (its `stored_entries` hands out the
    /// frames).
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            bytes: self.bytes,
            at: self.data_start,
            end: self.data_end,
            failed: false,
            aligned: self.aligned,
            #[cfg(feature = "store-zstd")]
            compressed: self.zstd.is_some(),
        }
    }

    /// Checks everything: every entry's frame, and for versions 2 and 3 the
    /// index checksum, every entry's checksum, that every slot points at its
    /// entry, and that the index and the entries agree; duplicate ids are
    /// reported (for version 1 by comparing every pair: O(n²)).
    pub fn verify(&self) -> Result<(), StoreError> {
        match self.index {
            None => self.verify_v1(),
            #[cfg(feature = "store-v2")]
            Some(Index::Slots(ix)) => self.verify_v2(&ix),
            Some(Index::Buckets(ix)) => self.verify_v3(&ix),
        }
    }

    fn verify_v1(&self) -> Result<(), StoreError> {
        let mut walk = self.entries();
        while let Some(entry) = walk.next_frame() {
            let (offset, frame) = entry?;
            let mut earlier = self.entries();
            while let Some(before) = earlier.next_frame() {
                let (before_offset, before) = before?;
                if before_offset >= offset {
                    break;
                }
                if before.id == frame.id {
                    let id = WorkflowSpecId::from_bytes(frame.id);
                    return Err(StoreError::DuplicateId {
                        id,
                        offset: offset as u64,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every entry must be found through the index, at its own place.
    fn entries_are_indexed(&self) -> Result<usize, StoreError> {
        let mut entries = 0_usize;
        let mut walk = self.entries();
        while let Some(entry) = walk.next_frame() {
            let (offset, frame) = entry?;
            let id = WorkflowSpecId::from_bytes(frame.id);
            entries += 1;
            match self.lookup(&id)? {
                Some(found) if found.as_ptr() == self.bytes[frame.data..].as_ptr() => {}
                Some(_) => {
                    return Err(StoreError::DuplicateId {
                        id,
                        offset: offset as u64,
                    })
                }
                None => {
                    return Err(StoreError::MissingFromIndex {
                        id,
                        offset: offset as u64,
                    })
                }
            }
        }
        Ok(entries)
    }

    fn verify_v3(&self, ix: &BucketIndex) -> Result<(), StoreError> {
        if layout::checksum(&self.bytes[ix.frame..ix.trailer]) != ix.checksum {
            return Err(StoreError::IndexChecksum {
                offset: ix.frame as u64,
            });
        }
        // The two frames whose shape parsing took from the trailer.
        let bad = |field| StoreError::BadTrailer {
            offset: ix.trailer as u64,
            field,
        };
        let index = frame_at(self.bytes, ix.frame).map_err(|_| bad("index offset"))?;
        if index.id != layout::INDEX_ID || index.next != ix.buckets + ix.total * BUCKET {
            return Err(bad("index offset"));
        }
        let sums = frame_at(self.bytes, index.next).map_err(|_| bad("checksum table"))?;
        if sums.id != layout::CHECKSUMS_ID || sums.data != ix.sums || sums.next != ix.end {
            return Err(bad("checksum table"));
        }
        if self.bytes[ix.frame + FRAME..ix.buckets]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(StoreError::IndexChecksum {
                offset: ix.frame as u64,
            });
        }
        // Every entry is found by a lookup at its own place: distinct
        // entries through distinct slots. With as many filled slots as
        // entries, the slots and the entries then correspond one to one, so
        // every filled slot leads to an entry's frame, whose data must
        // match the slot's checksum.
        let entries = self.entries_are_indexed()?;
        let mut filled = 0_usize;
        let table = &self.bytes[ix.buckets..ix.buckets + ix.total * BUCKET];
        for (b, bucket) in table.as_chunks::<BUCKET>().0.iter().enumerate() {
            for k in 0..layout::BUCKET_SLOTS {
                let bad = StoreError::BadSlot {
                    offset: (ix.buckets + b * BUCKET + layout::TAGS + 2 * k) as u64,
                };
                let tag = bucket[layout::TAGS + 2 * k] | bucket[layout::TAGS + 2 * k + 1];
                let offset = slot_offset(bucket, k).ok_or(bad)?;
                if tag == 0 {
                    if offset != 0 {
                        return Err(bad);
                    }
                    continue;
                }
                filled += 1;
                if filled > ix.entry_count {
                    continue; // counted, and refused below
                }
                let at = to_usize(offset)?;
                let frame = frame_at(&self.bytes[..self.data_end], at).map_err(|_| bad)?;
                // `filled <= entry_count`: within the checksum table.
                let stated = read_u64(self.bytes, ix.sums + 8 * (filled - 1)).ok_or(bad)?;
                if layout::checksum(&self.bytes[frame.data..frame.next]) != stated {
                    let id = WorkflowSpecId::from_bytes(frame.id);
                    return Err(StoreError::EntryChecksum {
                        id,
                        offset: at as u64,
                    });
                }
            }
        }
        if filled != entries || entries != ix.entry_count {
            return Err(StoreError::BadTrailer {
                offset: ix.trailer as u64,
                field: "entry count",
            });
        }
        #[cfg(feature = "store-zstd")]
        if let Some(info) = &self.zstd {
            self.verify_compression(info, ix)?;
        }
        #[cfg(feature = "store-archive")]
        if self.archive.is_some() {
            self.verify_archive_prefixes()?;
        }
        Ok(())
    }

    #[cfg(feature = "store-v2")]
    fn verify_v2(&self, ix: &SlotIndex) -> Result<(), StoreError> {
        let slots = &self.bytes[ix.slots..ix.slots + ix.capacity * SLOT];
        if layout::checksum(slots) != ix.checksum {
            return Err(StoreError::IndexChecksum {
                offset: ix.frame as u64,
            });
        }
        let entries = self.entries_are_indexed()?;
        let mut filled = 0_usize;
        for (i, slot) in slots.chunks_exact(SLOT).enumerate() {
            let bad = StoreError::BadSlot {
                offset: (ix.slots + i * SLOT) as u64,
            };
            let entry = read_u64(slot, SLOT_OFFSET).ok_or(bad)?;
            if entry == EMPTY {
                continue;
            }
            filled += 1;
            let key = read_id(slot, 0).ok_or(bad)?;
            let id = WorkflowSpecId::from_bytes(key);
            let data = self.probe_slots(ix, &key)?.ok_or(bad)?;
            // The slot must point at a frame with its id and length.
            let frame = frame_at(self.bytes, to_usize(entry)?).map_err(|_| bad)?;
            if frame.id != key || frame.len != data.len() || frame.next > self.data_end {
                return Err(bad);
            }
            let stated = read_u64(slot, SLOT_CHECKSUM).ok_or(bad)?;
            if layout::checksum(data) != stated {
                return Err(StoreError::EntryChecksum { id, offset: entry });
            }
        }
        if filled != entries || entries != ix.entry_count {
            return Err(StoreError::BadTrailer {
                offset: ix.trailer as u64,
                field: "entry count",
            });
        }
        Ok(())
    }
}

/// The lookups of a batch of ids, in order, with their memory latency
/// overlapped: made by [`StoreView::get_many`].
///
/// A pipeline of three stages over a ring of the lookups in flight: the id
/// [`INDEX_AHEAD`](Self::INDEX_AHEAD) places ahead is hashed and its index
/// bucket prefetched; the one [`DATA_AHEAD`](Self::DATA_AHEAD) ahead reads
/// its bucket (arrived by then), notes which frame it points at (or that
/// the id is absent), and prefetches that frame; the current one checks
/// its frame's id and hands out the data. Anything unusual takes the
/// careful lookup of [`StoreView::try_get`].
#[derive(Clone, Debug)]
pub struct GetMany<'a, 'i> {
    view: StoreView<'a>,
    ids: &'i [WorkflowSpecId],
    next: usize,
    /// The home buckets of the bucket index the pipeline reads (`None`:
    /// every lookup through [`StoreView::try_get`], for the other versions
    /// and compressed stores). Only this number is read per lookup.
    fast: Option<u64>,
    /// The lookup of `ids[i]`, at `i % RING`.
    ring: [InFlight; RING],
}

/// Room for every lookup between the index stage and the current one.
const RING: usize = 64;
const _: () = assert!(GetMany::INDEX_AHEAD < RING && GetMany::DATA_AHEAD < GetMany::INDEX_AHEAD);

/// A lookup on its way through [`GetMany`]'s pipeline.
#[derive(Clone, Copy, Debug, Default)]
struct InFlight {
    hash: u64,
    /// Its home bucket, found (and prefetched) at the first stage.
    home: usize,
    found: Ahead,
}

/// What a lookup's bucket said, read a few lookups ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Ahead {
    /// Not read yet, or it needs the careful lookup.
    #[default]
    Ask,
    /// No slot with the id's tag, in a bucket that is not full.
    Absent,
    /// The frame that the only candidate slot points at.
    Frame(usize),
}

impl<'a, 'i> GetMany<'a, 'i> {
    /// How many lookups ahead the index line is loaded.
    ///
    /// The distances are in lookups, and what they must cover is time: a
    /// line from DRAM, with a page walk, takes 100-150 ns, and a batched
    /// lookup of a cold store about 20 ns, so the index line needs some
    /// seven lookups before its bucket is read and the entry as many
    /// before it is handed out. Twice or three times that leaves room for
    /// a slower machine and for the misses that queue behind each other.
    /// Measured on an AMD EPYC (Zen 4) over a 100,000-workflow store,
    /// lookups cycling through 262,144 random ids (best of 32 windows of
    /// 16,384): 16 and 8, 23-25 ns a lookup; 28 and 12, 20-22; 40 and 16,
    /// 19-21; 48 and 20, 18.5-20.5; 64 and 24, 18.6-22; 96 and 32, 21-23
    /// (the ring's lines start to crowd out the lookups' own).
    pub const INDEX_AHEAD: usize = 48;
    /// How many lookups ahead the entry (its frame and first bytes) is
    /// loaded, once its index line has had time to arrive.
    pub const DATA_AHEAD: usize = 20;

    fn new(view: StoreView<'a>, ids: &'i [WorkflowSpecId]) -> GetMany<'a, 'i> {
        // The stores `try_get` answers from the buckets (version 3, not
        // compressed): the others have no plain buckets.
        let fast = (!view.plain_buckets.is_empty()).then_some(view.home_buckets);
        let mut many = GetMany {
            view,
            ids,
            next: 0,
            fast,
            ring: [InFlight::default(); RING],
        };
        if let Some(home) = fast {
            for i in 0..ids.len().min(Self::INDEX_AHEAD) {
                many.hash_ahead(home, i);
            }
            for i in 0..ids.len().min(Self::DATA_AHEAD) {
                many.read_ahead(i);
            }
        }
        many
    }

    /// Stage one for `ids[i]`: hash it, prefetch its bucket.
    #[inline(always)]
    fn hash_ahead(&mut self, home_buckets: u64, i: usize) {
        if let Some(id) = self.ids.get(i) {
            let hash = layout::slot_hash(id.as_bytes());
            let home = layout::home_bucket(hash, home_buckets) as usize;
            self.ring[i % RING] = InFlight {
                hash,
                home,
                found: Ahead::Ask,
            };
            self.view.prefetch_bucket(home);
        }
    }

    /// Stage two for `ids[i]`: read its bucket, note the frame (and
    /// prefetch it) or the absence.
    #[inline(always)]
    fn read_ahead(&mut self, i: usize) {
        let slot = &mut self.ring[i % RING];
        slot.found = self.view.look_ahead(slot.home, slot.hash);
    }
}

impl<'a> StoreView<'a> {
    /// What the home bucket `home` says of `hash`, with the frame
    /// prefetched.
    #[inline(always)]
    fn look_ahead(&self, home: usize, hash: u64) -> Ahead {
        let found = self.candidate_in(self.buckets, home, hash);
        if let Ahead::Frame(frame) = found {
            // The frame and the first bytes of the data (a frame that
            // straddles two lines gets both), by address: a prefetch needs
            // no bounds check, and `frame_data` checks before it reads.
            let at = self.data.as_ptr().wrapping_add(frame);
            prefetch::addr(at);
            prefetch::addr(at.wrapping_add(FRAME + 7));
        }
        found
    }

    /// The data of the frame at `frame` if it is `key`'s and lies within
    /// the data; `None` for the careful lookup to sort out.
    #[inline(always)]
    fn frame_data(&self, frame: usize, key: &[u8; 16]) -> Option<&'a [u8]> {
        let (head, rest) = self.data.get(frame..)?.split_first_chunk::<FRAME>()?;
        let (id, len) = head.split_first_chunk::<16>()?;
        if id != key {
            return None;
        }
        let len = usize::try_from(u64::from_le_bytes(*len.first_chunk::<8>()?)).ok()?;
        rest.get(..len)
    }
}

impl<'a> Iterator for GetMany<'a, '_> {
    type Item = Result<Option<&'a [u8]>, StoreError>;

    /// Inlined into the caller's loop on hosted targets (as `try_get`'s
    /// common case is): out of line, each lookup paid a call and handed its
    /// result back through memory, a third of a batched lookup's time
    /// when the store is in cache.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        let id = self.ids.get(i)?;
        self.next = i + 1;
        let Some(home) = self.fast else {
            if let Some(ahead) = self.ids.get(i + Self::INDEX_AHEAD) {
                self.view.prefetch(ahead);
            }
            return Some(self.view.try_get(id));
        };
        self.hash_ahead(home, i + Self::INDEX_AHEAD);
        if i + Self::DATA_AHEAD < self.ids.len() {
            self.read_ahead(i + Self::DATA_AHEAD);
        }
        let current = self.ring[i % RING];
        let key = id.as_bytes();
        let quick = match current.found {
            Ahead::Absent => Some(None),
            Ahead::Frame(frame) => self.view.frame_data(frame, key).map(Some),
            Ahead::Ask => None,
        };
        Some(match quick {
            Some(answer) => Ok(answer),
            // Rare (a crowded bucket, a shared tag): the careful lookup.
            None => self.view.lookup_carefully(id),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.ids.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for GetMany<'_, '_> {}

/// The lanes of a bucket's tags (eight 16-bit lanes in one 128-bit word)
/// that equal `tag`: bit `16k + 15` is set for each matching slot `k`. A
/// branch-free SWAR compare (the slot holding an id sits anywhere in its
/// bucket, so a compare per slot would mispredict on most lookups, and a
/// mispredict throws away the lookups the CPU has in flight). The tag is
/// never 0, so empty slots never match.
#[inline(always)]
fn tag_lanes(bucket: &[u8; BUCKET], tag: u16) -> u128 {
    const ONES: u128 = 0x0001_0001_0001_0001_0001_0001_0001_0001;
    const LOW15: u128 = 0x7FFF * ONES;
    let (tags, _) = bucket.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
    let x = u128::from_le_bytes(*tags) ^ (u128::from(tag) * ONES);
    // A lane's top bit ends up set exactly when the lane is zero: the sum
    // sets it for every non-zero low part, `| x` for a set top bit, and no
    // carry crosses lanes (0x7FFF + 0x7FFF < 0x10000).
    !(((x & LOW15) + LOW15) | x | LOW15)
}

/// The first slot whose tag is `tag`, if any: as [`tag_lanes`] in fewer
/// instructions (one SSE2 compare on x86-64; see
/// `kernels::tags`, which keeps this reader free of `unsafe`).
#[inline(always)]
fn first_tag_slot(bucket: &[u8; BUCKET], tag: u16) -> Option<usize> {
    let (tags, _) = bucket.split_first_chunk::<16>()?;
    crate::kernels::tags::first_equal_u16(tags, tag)
}

/// The slot of the lowest lane set in a [`tag_lanes`] result.
#[inline(always)]
fn lane(matches: u128) -> usize {
    (matches.trailing_zeros() / 16) as usize
}

/// Slot `k`'s frame offset: the 6 bytes at `OFFSETS + 6k`, read as the top
/// of the 8 bytes ending there (which stay inside the bucket for every k).
#[inline(always)]
fn slot_offset(bucket: &[u8; BUCKET], k: usize) -> Option<u64> {
    let end = layout::OFFSETS + layout::OFFSET_BYTES * (k + 1);
    let word: &[u8; 8] = bucket.get(end.checked_sub(8)?..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(*word) >> (8 * (8 - layout::OFFSET_BYTES)))
}

/// Whether every slot of the bucket is filled (its last tag is not 0).
#[inline(always)]
fn bucket_full(bucket: &[u8; BUCKET]) -> bool {
    let last = layout::TAGS + 2 * (layout::BUCKET_SLOTS - 1);
    bucket[last] | bucket[last + 1] != 0
}

/// The workflows of a store in file order: `(id, data)`, or the damage
/// that stopped the scan (after which the iterator ends).
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    failed: bool,
    /// Padding frames are skipped (an aligned version-3 store).
    aligned: bool,
    /// Refuse to hand out stored bytes as workflows.
    #[cfg(feature = "store-zstd")]
    compressed: bool,
}

impl Entries<'_> {
    /// The next workflow's frame and where it starts.
    fn next_frame(&mut self) -> Option<Result<(usize, Frame), StoreError>> {
        while !self.failed && self.at < self.end {
            let at = self.at;
            let frame = match frame_at(&self.bytes[..self.end], at) {
                Ok(frame) => frame,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            self.at = frame.next;
            if layout::RESERVED_IDS.contains(&frame.id) {
                if at == 0 && frame.id == layout::HEADER_ID {
                    continue;
                }
                // A padding frame as the writer makes them: fewer than 8
                // zero bytes, in a store that says it has them.
                let data = &self.bytes[frame.data..frame.next];
                if frame.id == layout::PAD_ID
                    && self.aligned
                    && data.len() < 8
                    && data.iter().all(|&b| b == 0)
                {
                    continue;
                }
                self.failed = true;
                return Some(Err(StoreError::ReservedId { offset: at as u64 }));
            }
            return Some(Ok((at, frame)));
        }
        None
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(WorkflowSpecId, &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        #[cfg(feature = "store-zstd")]
        if self.compressed {
            if self.failed {
                return None;
            }
            self.failed = true;
            return Some(Err(StoreError::Compressed));
        }
        let bytes = self.bytes;
        self.next_frame().map(|entry| {
            entry.map(|(_, frame)| {
                (
                    WorkflowSpecId::from_bytes(frame.id),
                    &bytes[frame.data..frame.next],
                )
            })
        })
    }
}
