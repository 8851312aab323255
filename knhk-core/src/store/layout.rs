//! The byte layout of a workflow store. The reader and the writer use only
//! the names defined here.
//!
//! # Version 1: the design document's format
//!
//! A sequence of entries, nothing else:
//!
//! ```text
//! entry := id: [u8; 16]  (the WorkflowSpecId's UUID bytes)
//!          len: u64      (little-endian)
//!          data: [u8; len]
//! ```
//!
//! Finding an entry means scanning from the start.
//!
//! # Version 2: knhk's first index (still read)
//!
//! The same entries, plus three sections that are themselves framed as
//! version-1 entries under reserved ids, so a version-1 scanner reads a
//! version-2 file as a list of entries (three of which it can ignore):
//!
//! ```text
//! [HEADER_ID  | 16 | magic "KNHKWF\0\2", version: u32 = 2, flags: u32 = 0]
//! [id | len | data] ...                          the workflows, in write order
//! [INDEX_ID   | 40 × capacity | slots]           open-addressing hash table
//! [TRAILER_ID | 64 | trailer]                    always the last 88 bytes
//! ```
//!
//! An index slot is `id: [u8; 16], offset: u64, len: u64, checksum: u64`:
//! where the entry's frame starts, its data length, and the checksum of its
//! data. An empty slot has `offset == EMPTY`. The table has a power-of-two
//! capacity, at most half full, and is probed linearly from
//! `slot_hash(id) & (capacity - 1)`.
//!
//! The trailer is `magic "KNHKTAIL"`, `version: u32`, `reserved: u32`,
//! `entry_count: u64`, `index_offset: u64` (where the index entry's frame
//! starts), `index_capacity: u64`, `max_probe: u64` (the longest probe the
//! writer needed, which bounds every lookup), `index_checksum: u64` (of the
//! index data) and `trailer_checksum: u64` (of the 56 trailer bytes before
//! it). All integers are little-endian.
//!
//! Opening a version-2 file reads only the trailer: O(1). A lookup reads at
//! most `max_probe + 1` slots and one entry frame, and checks them. The
//! checksums of the index and of every entry are checked by `verify`.
//!
//! # Version 3: the compact index (what knhk writes)
//!
//! The same header and workflow entries (the header says version 3), then
//! a compact, cache-line bucketed index, a table of checksums, and the
//! trailer, each again framed as a version-1 entry under a reserved id:
//!
//! ```text
//! [HEADER_ID    | 16 | magic "KNHKWF\0\3", version: u32 = 3, flags: u32]
//! [id | len | data] ...                          the workflows, in write order
//! [PAD_ID       | 0-7 | zero bytes]              before some, with FLAG_ALIGNED
//! [INDEX_ID     | pad + 64 × buckets | zero padding, then the buckets]
//! [CHECKSUMS_ID | 8 × entry_count | the checksum of each workflow's data]
//! [TRAILER_ID   | 64 | trailer]                  always the last 88 bytes
//! ```
//!
//! With [`FLAG_ALIGNED`] (what knhk writes), a padding frame goes before
//! every workflow frame that would otherwise start past byte
//! [`ALIGNED_AT_MOST`] of a 64-byte line, so that each frame's id, length
//! and first 8 data bytes lie in one cache line: a lookup then reads one
//! line of the entry, not two ([`pad_before`] gives the rule).
//!
//! The padding (0 to 63 zero bytes) puts the first bucket on a 64-byte
//! boundary of the file, and so of a memory map of it: a bucket is one
//! cache line. A bucket holds 8 slots: first their 8 tags (little-endian
//! `u16`s: the low 16 bits of the id's [`slot_hash`], 1 where those are 0;
//! 0 for an empty slot), then their 8 frame offsets (little-endian, 6 bytes
//! each; never 0 for a filled slot, since the header is there). The tags
//! side by side are compared with the id's all at once, in one 16-byte
//! word. The filled slots of a bucket come first. An id's home bucket is `(slot_hash(id) × home_buckets) >> 64`
//! (the high half of the 128-bit product); a lookup reads its home bucket
//! and, only when that is full and the id was not there, the following
//! ones, at most `max_probe` more. A slot whose tag matches leads to the
//! frame, whose id confirms the match: the lookup reads one index line and
//! the frame, which it reads anyway for the data. No lookup wraps around:
//! buckets past `home_buckets` take the overflow of the last ones.
//!
//! The checksum table holds, for each filled slot in index order, the
//! checksum of its workflow's data; only `verify` reads it.
//!
//! The trailer has the size and field positions of version 2 (so a
//! version-2 reader finds it and refuses the version), with
//! `index_capacity` holding `home_buckets`, `max_probe` counting buckets,
//! and `index_checksum` covering every byte from the index entry's frame to
//! the trailer's (index and checksum table).
//!
//! # Version 4: compressed workflows (feature `store-zstd`)
//!
//! Version 3 with every workflow a zstd frame, a new version so that a
//! reader of versions 1 to 3 refuses it instead of handing out compressed
//! bytes:
//!
//! ```text
//! [HEADER_ID     | 16 | magic "KNHKWF\0\4", version: u32 = 4, flags: u32]
//! [DICTIONARY_ID | len | a zstd dictionary]      only with FLAG_DICTIONARY
//! [id | 4 + frame | raw_len: u32, zstd frame] ... the workflows
//! [INDEX_ID ...] [CHECKSUMS_ID ...]              as in version 3
//! [ZSTD_INFO_ID  | 32 | largest, total, dictionary checksum, level]
//! [TRAILER_ID    | 64 | trailer: version 4, flags]
//! ```
//!
//! `FLAG_ZSTD` is always set; `FLAG_DICTIONARY` says the dictionary entry
//! is there and every frame used it. Each workflow's uncompressed length
//! comes before its frame (at most [`zstd_info::LARGEST`]'s value, so a
//! reader can size its buffer first); the frames carry no dictionary id,
//! content size or checksum. The checksum table holds the checksums of the
//! stored bytes (length and frame), and the trailer's index checksum covers
//! the compression facts too.

/// Bytes before an entry's data: a 16-byte id and an 8-byte length.
pub const FRAME: usize = 16 + 8;

/// With [`FLAG_ALIGNED`], the furthest into a 64-byte line a workflow frame
/// starts: its 24-byte frame and first 8 data bytes then share the line.
pub const ALIGNED_AT_MOST: u64 = 64 - FRAME as u64 - 8;

/// The data length of the padding frame that goes before a workflow frame
/// that would start at file offset `offset` in a store with
/// [`FLAG_ALIGNED`], or `None` if the frame needs none (its offset within
/// its 64-byte line is at most [`ALIGNED_AT_MOST`]).
///
/// A padding frame is at least its 24-byte frame: from line offsets 40 to
/// 63 a bare one (0 bytes of data) moves the workflow to 0 to 23; from 33
/// to 39 it takes 7 to 1 bytes more, to reach the next line's start. So a
/// padded store spends 24 to 31 bytes before about half its workflows.
///
/// ```
/// use knhk_core::store::layout::{pad_before, FRAME};
///
/// assert_eq!(pad_before(64 * 10 + 32), None);
/// assert_eq!(pad_before(64 * 10 + 33), Some(7)); // to 64 * 11
/// assert_eq!(pad_before(64 * 10 + 40), Some(0)); // to 64 * 11
/// assert_eq!(pad_before(64 * 10 + 63), Some(0)); // to 64 * 11 + 23
/// let at = 64 * 10 + 35;
/// let moved = at + (FRAME as u64) + pad_before(at).unwrap();
/// assert!(moved % 64 <= 32);
/// ```
pub const fn pad_before(offset: u64) -> Option<u64> {
    if offset % 64 <= ALIGNED_AT_MOST {
        return None;
    }
    let after_bare = (offset + FRAME as u64) % 64;
    Some(if after_bare <= ALIGNED_AT_MOST {
        0
    } else {
        64 - after_bare
    })
}

/// Reserved id of the header entry (ASCII `knhk.store.head` and a 1).
pub const HEADER_ID: [u8; 16] = *b"knhk.store.head\x01";
/// Reserved id of the index entry.
pub const INDEX_ID: [u8; 16] = *b"knhk.store.indx\x01";
/// Reserved id of the trailer entry.
pub const TRAILER_ID: [u8; 16] = *b"knhk.store.tail\x01";
/// Reserved id of the checksum table (version 3).
pub const CHECKSUMS_ID: [u8; 16] = *b"knhk.store.csum\x01";

/// Reserved id of a compressed store's dictionary (version 4).
pub const DICTIONARY_ID: [u8; 16] = *b"knhk.store.dict\x01";
/// Reserved id of a compressed store's compression facts (version 4).
pub const ZSTD_INFO_ID: [u8; 16] = *b"knhk.store.zinf\x01";

/// Reserved id of an archived store's format record.
pub const ARCHIVE_ID: [u8; 16] = *b"knhk.store.rkyv\x01";

/// Reserved id of a padding frame (version 3 with [`FLAG_ALIGNED`]): 0 to
/// 7 zero bytes of data, which readers of such a store skip.
pub const PAD_ID: [u8; 16] = *b"knhk.store.pad_\x01";

/// The ids no workflow may use.
pub const RESERVED_IDS: [[u8; 16]; 8] = [
    HEADER_ID,
    INDEX_ID,
    TRAILER_ID,
    CHECKSUMS_ID,
    DICTIONARY_ID,
    ZSTD_INFO_ID,
    ARCHIVE_ID,
    PAD_ID,
];

/// The version-2 header entry's data starts with this magic.
pub const HEADER_MAGIC_V2: [u8; 8] = *b"KNHKWF\x00\x02";
/// The version-3 header entry's data starts with this magic, followed by
/// the version and the flags.
pub const HEADER_MAGIC: [u8; 8] = *b"KNHKWF\x00\x03";
/// Length of the header entry's data.
pub const HEADER_LEN: usize = 16;
/// Bytes of the whole header entry.
pub const HEADER_SIZE: usize = FRAME + HEADER_LEN;

/// The format version this crate writes for an uncompressed store.
pub const VERSION: u32 = 3;
/// The format version of a compressed store: version 3's layout, its
/// workflows zstd frames, with an optional dictionary and the compression
/// facts. A reader that knows only versions 1 to 3 refuses it by version.
pub const VERSION_COMPRESSED: u32 = 4;
/// The version-4 header entry's data starts with this magic.
pub const HEADER_MAGIC_V4: [u8; 8] = *b"KNHKWF\x00\x04";
/// Version-4 flag (header and trailer): the workflows are zstd frames.
/// Always set in version 4.
pub const FLAG_ZSTD: u32 = 1;
/// Version-4 flag: a dictionary entry follows the header, and every frame
/// was compressed with it.
pub const FLAG_DICTIONARY: u32 = 2;
/// Flag (versions 3 and 4, header and trailer): every workflow is an rkyv
/// archive behind an alignment prefix, and the entry after the header
/// records the archive format (feature `store-archive`).
pub const FLAG_ARCHIVED: u32 = 4;
/// Version-3 flag (header and trailer): workflow frames are aligned within
/// cache lines, with padding frames ([`PAD_ID`]) before the ones that need
/// it ([`pad_before`]). A reader that does not know the flag refuses the
/// file rather than take a padding frame for a workflow.
pub const FLAG_ALIGNED: u32 = 8;
/// Every flag version 3 defines; a reader refuses any other bit.
pub const FLAGS_V3: u32 = FLAG_ARCHIVED | FLAG_ALIGNED;
/// Every flag version 4 defines; a reader refuses any other bit.
pub const FLAGS_V4: u32 = FLAG_ZSTD | FLAG_DICTIONARY | FLAG_ARCHIVED;
/// Length of the archive format record's data.
pub const ARCHIVE_LEN: usize = 16;
/// Where an archived workflow's bytes start, in the file (uncompressed) or
/// in the decompression buffer (compressed): a multiple of this.
pub const ARCHIVE_ALIGN: usize = 16;

/// The rkyv format an archived store was written in, as its format record
/// holds it: `"rkyv"`, the rkyv version (major, minor: u16), then one byte
/// each for big-endian (1) or little-endian (0), the pointer width in bytes
/// (2, 4 or 8) and aligned (1) or unaligned (0) primitives, a zero byte;
/// then the low 32 bits of the [`checksum`] of those 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArchiveFormat {
    /// rkyv's major version (0 for 0.8).
    pub major: u16,
    /// rkyv's minor version (8 for 0.8).
    pub minor: u16,
    /// Whether multi-byte primitives are big-endian.
    pub big_endian: bool,
    /// Bytes of an archived `usize` (and of relative pointers).
    pub pointer_width: u8,
    /// Whether archived primitives are aligned to their size.
    pub aligned: bool,
}

impl ArchiveFormat {
    /// The record's bytes.
    pub fn to_bytes(&self) -> [u8; ARCHIVE_LEN] {
        let major = self.major.to_le_bytes();
        let minor = self.minor.to_le_bytes();
        let mut record = [
            b'r',
            b'k',
            b'y',
            b'v',
            major[0],
            major[1],
            minor[0],
            minor[1],
            self.big_endian as u8,
            self.pointer_width,
            self.aligned as u8,
            0,
            0,
            0,
            0,
            0,
        ];
        let sum = (checksum(&record[..12]) as u32).to_le_bytes();
        record[12..].copy_from_slice(&sum);
        record
    }

    /// The format a record holds, if it is one.
    pub fn from_bytes(bytes: &[u8]) -> Option<ArchiveFormat> {
        let bytes: &[u8; ARCHIVE_LEN] = bytes.try_into().ok()?;
        let flag = |b: u8| match b {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        };
        let format = ArchiveFormat {
            major: u16::from_le_bytes([bytes[4], bytes[5]]),
            minor: u16::from_le_bytes([bytes[6], bytes[7]]),
            big_endian: flag(bytes[8])?,
            pointer_width: bytes[9],
            aligned: flag(bytes[10])?,
        };
        let known = matches!(format.pointer_width, 2 | 4 | 8);
        (known && format.to_bytes() == *bytes).then_some(format)
    }
}

impl core::fmt::Display for ArchiveFormat {
    /// As `rkyv 0.8, little-endian, 4-byte pointers, aligned primitives`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "rkyv {}.{}, {}-endian, {}-byte pointers, {} primitives",
            self.major,
            self.minor,
            if self.big_endian { "big" } else { "little" },
            self.pointer_width,
            if self.aligned { "aligned" } else { "unaligned" }
        )
    }
}

/// The archived bytes of an archived store's entry: its data is a prefix
/// byte `k` (1 to 16), `k - 1` zero bytes, then the archive, so that the
/// archive starts on an [`ARCHIVE_ALIGN`] boundary where it is read.
/// `None` if the prefix is malformed.
pub fn archived_payload(data: &[u8]) -> Option<&[u8]> {
    let (&k, _) = data.split_first()?;
    let k = usize::from(k);
    if !(1..=ARCHIVE_ALIGN).contains(&k) || data.len() < k {
        return None;
    }
    let (prefix, archive) = data.split_at(k);
    prefix[1..].iter().all(|&b| b == 0).then_some(archive)
}

/// The prefix byte for an archive whose entry data starts at `data_offset`
/// (from an [`ARCHIVE_ALIGN`]-aligned base): 1 to 16.
pub const fn archive_prefix(data_offset: u64) -> u8 {
    let misalign = (data_offset % ARCHIVE_ALIGN as u64) as u8;
    ARCHIVE_ALIGN as u8 - misalign
}
/// Bytes before a version-4 workflow's zstd frame: its uncompressed length,
/// a little-endian `u32`.
pub const RAW_LEN: usize = 4;
/// Length of the compression facts entry's data.
pub const ZSTD_INFO_LEN: usize = 32;
/// Bytes of the whole compression facts entry: always just before the
/// trailer entry in version 4.
pub const ZSTD_INFO_SIZE: usize = FRAME + ZSTD_INFO_LEN;
/// Field offsets within the compression facts (all `u64`).
pub mod zstd_info {
    /// The largest uncompressed length of any workflow: a reader sizes no
    /// buffer beyond it.
    pub const LARGEST: usize = 0;
    /// The uncompressed lengths of all workflows, summed.
    pub const TOTAL: usize = 8;
    /// [`checksum`](super::checksum) of the dictionary's bytes (0 without
    /// one).
    pub const DICTIONARY_CHECKSUM: usize = 16;
    /// The zstd level the writer used (informational; `i64`).
    pub const LEVEL: usize = 24;
}
/// The version with the 40-byte-slot index, still read.
pub const VERSION_2: u32 = 2;

/// Bytes of one index bucket: one cache line.
pub const BUCKET: usize = 64;
/// Slots in a bucket.
pub const BUCKET_SLOTS: usize = 8;
/// The buckets start at a multiple of this in the file.
pub const BUCKET_ALIGN: usize = 64;
/// Where a bucket's tags start: slot `k`'s tag is the little-endian `u16`
/// at `TAGS + 2k`; 0 marks an empty slot.
pub const TAGS: usize = 0;
/// Where a bucket's offsets start: slot `k`'s frame offset is the
/// little-endian 48-bit number at `OFFSETS + 6k` (0 for an empty slot).
pub const OFFSETS: usize = 2 * BUCKET_SLOTS;
/// Bytes of a slot's offset.
pub const OFFSET_BYTES: usize = 6;
/// The largest frame offset a version-3 slot can hold.
pub const MAX_OFFSET: u64 = (1 << (8 * OFFSET_BYTES)) - 1;
/// Workflows per home bucket the writer aims at (of [`BUCKET_SLOTS`]): the
/// index is half full, 16 bytes per workflow. About 0.8% of the workflows
/// spill out of their home bucket and 5% of the buckets are full, where a
/// miss must look at the next bucket too (at five per bucket, 12.8 bytes:
/// 2.6% and 15%; a hit then took 94 instructions and a miss 103, against
/// 74 and 62 at four, so the extra 3.2 bytes per workflow buy lookups).
pub const ENTRIES_PER_BUCKET: usize = 4;

/// The tag of a version-3 slot for an id whose [`slot_hash`] is `hash`:
/// its low 16 bits, or 1 where those are 0, so that no tag matches an empty
/// slot.
#[inline]
pub const fn tag(hash: u64) -> u16 {
    let t = hash as u16;
    if t == 0 {
        1
    } else {
        t
    }
}

/// The home bucket, of `home_buckets`, of an id whose [`slot_hash`] is
/// `hash`: the high half of `hash × home_buckets`, so any bucket count
/// works and ids spread evenly.
#[inline]
pub const fn home_bucket(hash: u64, home_buckets: u64) -> u64 {
    ((hash as u128 * home_buckets as u128) >> 64) as u64
}

/// Zero bytes at the start of the index data that put the first bucket on
/// a [`BUCKET_ALIGN`] boundary, for an index frame at `index_offset`.
#[inline]
pub const fn index_padding(index_offset: u64) -> u64 {
    let data = index_offset.wrapping_add(FRAME as u64);
    (BUCKET_ALIGN as u64 - data % BUCKET_ALIGN as u64) % BUCKET_ALIGN as u64
}

/// The number of home buckets the writer gives `entries` workflows.
pub const fn home_buckets_for(entries: u64) -> u64 {
    let b = entries.div_ceil(ENTRIES_PER_BUCKET as u64);
    if b == 0 {
        1
    } else {
        b
    }
}

/// Bytes of one version-2 index slot.
pub const SLOT: usize = 16 + 8 + 8 + 8;
/// Offset of an index slot's entry offset.
pub const SLOT_OFFSET: usize = 16;
/// Offset of an index slot's data length.
pub const SLOT_LEN: usize = 24;
/// Offset of an index slot's checksum.
pub const SLOT_CHECKSUM: usize = 32;
/// An empty slot's offset.
pub const EMPTY: u64 = u64::MAX;

/// The trailer's magic.
pub const TRAILER_MAGIC: [u8; 8] = *b"KNHKTAIL";
/// Length of the trailer entry's data.
pub const TRAILER_LEN: usize = 64;
/// Bytes of the whole trailer entry: always the end of a version-2 file.
pub const TRAILER_SIZE: usize = FRAME + TRAILER_LEN;
/// Field offsets within the trailer data.
pub mod trailer {
    /// `magic: [u8; 8]`
    pub const MAGIC: usize = 0;
    /// `version: u32`
    pub const VERSION: usize = 8;
    /// `entry_count: u64`
    pub const ENTRY_COUNT: usize = 16;
    /// `index_offset: u64`
    pub const INDEX_OFFSET: usize = 24;
    /// `flags: u32` (version 3; reserved in version 2), always 0 today.
    pub const FLAGS: usize = 12;
    /// `index_capacity: u64`: slots in version 2, home buckets in version 3.
    pub const INDEX_CAPACITY: usize = 32;
    /// `max_probe: u64`: slots past the first in version 2, buckets past
    /// the home bucket in version 3.
    pub const MAX_PROBE: usize = 40;
    /// `index_checksum: u64`: of the index data in version 2; of every
    /// byte from the index frame to the trailer frame in version 3.
    pub const INDEX_CHECKSUM: usize = 48;
    /// `trailer_checksum: u64`, over the bytes before it.
    pub const TRAILER_CHECKSUM: usize = 56;
}

/// The checksum of entry data, the index and the trailer: a 64-bit
/// multiply-rotate hash over 8-byte little-endian words, seeded with the
/// length. It detects corruption (any changed byte changes it with
/// overwhelming probability); it is not a defence against someone forging a
/// file.
pub fn checksum(data: &[u8]) -> u64 {
    // The same as `Checksum` fed in one piece, written for a whole slice:
    // no pending buffer to copy through (which keeps a firmware's reader
    // free of `memcpy`).
    let mut h = CK2 ^ (data.len() as u64).wrapping_mul(CK1);
    let (words, tail) = data.as_chunks::<8>();
    for w in words {
        h = mix(h, u64::from_le_bytes(*w));
    }
    // The last, partial word, zero-padded, little-endian.
    let last = tail
        .iter()
        .rev()
        .fold(0_u64, |w, &b| (w << 8) | u64::from(b));
    finish(mix(h, last))
}

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h ^ w.wrapping_mul(CK1)).rotate_left(29).wrapping_mul(CK2)
}

#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 32;
    h = h.wrapping_mul(CK1);
    h ^ (h >> 29)
}

const CK1: u64 = 0x9E37_79B9_7F4A_7C15;
const CK2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// [`checksum`], computed piece by piece (for data written in parts).
#[derive(Clone, Debug)]
pub struct Checksum {
    h: u64,
    pending: [u8; 8],
    pending_len: usize,
}

impl Checksum {
    /// Starts the checksum of `len` bytes in all.
    pub fn new(len: usize) -> Checksum {
        Checksum {
            h: CK2 ^ (len as u64).wrapping_mul(CK1),
            pending: [0; 8],
            pending_len: 0,
        }
    }

    #[inline]
    fn word(&mut self, w: [u8; 8]) {
        self.h = mix(self.h, u64::from_le_bytes(w));
    }

    /// Adds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 8 {
                return;
            }
            let w = self.pending;
            self.word(w);
            self.pending_len = 0;
        }
        let (words, tail) = data.as_chunks::<8>();
        for w in words {
            self.word(*w);
        }
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    /// The checksum.
    pub fn finish(mut self) -> u64 {
        let mut last = [0_u8; 8];
        last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        self.word(last);
        finish(self.h)
    }
}

/// Where an id's probe starts (before masking by the capacity). Mixes all
/// 128 bits, so time-ordered (v7) and sequential ids spread as well as
/// random ones.
#[inline]
pub fn slot_hash(id: &[u8; 16]) -> u64 {
    let a = u64::from_le_bytes(*id.first_chunk::<8>().unwrap_or(&[0; 8]));
    let b = u64::from_le_bytes(*id.last_chunk::<8>().unwrap_or(&[0; 8]));
    let mut h = a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.rotate_left(32).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^= h >> 32;
    h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up() {
        assert_eq!(OFFSETS + OFFSET_BYTES * BUCKET_SLOTS, BUCKET);
        assert_eq!(tag(0x1_0000), 1);
        assert_eq!(index_padding(0) + FRAME as u64, 64);
        assert_eq!(index_padding(40), 0);
        assert_eq!(home_buckets_for(0), 1);
        assert_eq!(home_buckets_for(6), 2);
        assert_eq!(home_bucket(u64::MAX, 10), 9);
        assert_eq!(HEADER_SIZE, 40);
        assert_eq!(TRAILER_SIZE, 88);
        assert_eq!(trailer::TRAILER_CHECKSUM + 8, TRAILER_LEN);
        assert_eq!(SLOT_CHECKSUM + 8, SLOT);
    }

    #[test]
    fn checksum_sees_every_byte_and_the_length() {
        let base = [7_u8; 37];
        let h = checksum(&base);
        for i in 0..base.len() {
            let mut changed = base;
            changed[i] ^= 1;
            assert_ne!(checksum(&changed), h, "byte {i}");
        }
        assert_ne!(checksum(&base[..36]), h);
        assert_ne!(checksum(&[]), checksum(&[0]));
    }

    #[test]
    fn checksum_in_pieces_equals_checksum_at_once() {
        let data: Vec<u8> = (0..100_u8).collect();
        for cut in [0, 1, 7, 8, 9, 40, 99, 100] {
            for cut2 in [cut, (cut + 13).min(100)] {
                let mut h = Checksum::new(data.len());
                h.update(&data[..cut]);
                h.update(&data[cut..cut2]);
                h.update(&data[cut2..]);
                assert_eq!(h.finish(), checksum(&data), "cuts {cut} {cut2}");
            }
        }
    }
}
