//! Version 4: the workflows are zstd frames. The core parses the store,
//! looks frames up and checks their checksums exactly as in version 3, and
//! hands each frame out with its uncompressed length ([`Stored`]); it does
//! not decompress (knhk-std does, with libzstd).

use super::{frame_at, read_u32, read_u64, BucketIndex, Entries, StoreError, StoreView, Version};
use crate::store::layout::{self, trailer, zstd_info, FRAME};
use crate::WorkflowSpecId;

/// What a compressed store records about its compression: its dictionary
/// (if it has one) and the uncompressed sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZstdInfo<'a> {
    dictionary: Option<&'a [u8]>,
    dictionary_offset: usize,
    dictionary_checksum: u64,
    largest: u64,
    total: u64,
    level: i64,
}

impl<'a> ZstdInfo<'a> {
    /// The zstd dictionary every frame was compressed with, if any (its
    /// bytes in the store: a dictionary as `zstd --train` writes one).
    pub fn dictionary(&self) -> Option<&'a [u8]> {
        self.dictionary
    }

    /// The largest uncompressed length of any workflow in the store. No
    /// frame may claim more; a reader sizes no buffer beyond it.
    pub fn largest(&self) -> u64 {
        self.largest
    }

    /// The uncompressed lengths of all the workflows, summed.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The zstd level the writer used.
    pub fn level(&self) -> i64 {
        self.level
    }

    /// Checks the dictionary against the checksum the store records (its
    /// bytes once; a reader does this before it trusts the dictionary).
    pub fn check_dictionary(&self) -> Result<(), StoreError> {
        let sum = self.dictionary.map_or(0, layout::checksum);
        if sum == self.dictionary_checksum {
            Ok(())
        } else {
            Err(StoreError::DictionaryChecksum {
                offset: self.dictionary_offset as u64,
            })
        }
    }
}

/// A workflow as the store holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    /// The workflow itself (versions 1 to 3).
    Plain(&'a [u8]),
    /// A zstd frame of it (version 4).
    Zstd(ZstdFrame<'a>),
}

impl Stored<'_> {
    /// The workflow's length, uncompressed.
    pub fn len(&self) -> usize {
        match self {
            Stored::Plain(data) => data.len(),
            Stored::Zstd(frame) => frame.len,
        }
    }

    /// Whether the workflow is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One workflow's zstd frame and its uncompressed length, as recorded
/// before the frame (so a reader sizes its buffer without parsing the
/// frame). Nothing here is trusted: a decompressor must refuse a frame
/// that does not decompress to exactly `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZstdFrame<'a> {
    /// The frame: no dictionary id, no content size, no checksum (the
    /// store's own checksum covers these bytes).
    pub frame: &'a [u8],
    /// The uncompressed length, at most the store's
    /// [`largest`](ZstdInfo::largest).
    pub len: usize,
}

impl<'a> StoreView<'a> {
    /// Parses a version-4 store whose trailer is at `at`.
    pub(super) fn parse_v4(bytes: &'a [u8], at: usize) -> Result<StoreView<'a>, StoreError> {
        StoreView::trailer_frame(bytes, at)?;
        let offset = at as u64;
        let bad = |field| StoreError::BadTrailer { offset, field };
        let flags = read_u32(bytes, at + FRAME + trailer::FLAGS).ok_or(bad("flags"))?;
        let known = if cfg!(feature = "store-archive") {
            layout::FLAGS_V4
        } else {
            layout::FLAGS_V4 & !layout::FLAG_ARCHIVED
        };
        if flags & layout::FLAG_ZSTD == 0 || flags & !known != 0 {
            return Err(bad("flags"));
        }
        let facts = bad("compression facts");
        let info_at = at.checked_sub(layout::ZSTD_INFO_SIZE).ok_or(facts)?;
        let info = frame_at(bytes, info_at).map_err(|_| facts)?;
        if info.id != layout::ZSTD_INFO_ID || info.len != layout::ZSTD_INFO_LEN || info.next != at {
            return Err(facts);
        }
        let fact = |f: usize| read_u64(bytes, info.data + f).ok_or(facts);
        let largest = fact(zstd_info::LARGEST)?;
        if largest > u64::from(u32::MAX) {
            return Err(facts);
        }
        let total = fact(zstd_info::TOTAL)?;
        let dictionary_checksum = fact(zstd_info::DICTIONARY_CHECKSUM)?;
        let level = fact(zstd_info::LEVEL)? as i64;
        let (mut view, header_end) =
            StoreView::parse_buckets(bytes, at, info_at, layout::VERSION_COMPRESSED, flags)?;
        let mut dictionary = None;
        if flags & layout::FLAG_DICTIONARY != 0 {
            // The dictionary comes first after the header, and the
            // workflows after it.
            let dict =
                frame_at(&bytes[..view.data_end], header_end).map_err(|_| bad("dictionary"))?;
            if dict.id != layout::DICTIONARY_ID {
                return Err(bad("dictionary"));
            }
            dictionary = Some(&bytes[dict.data..dict.next]);
            view.data_start = dict.next;
            view.data = &bytes[dict.next..view.data_end];
        }
        view.version = Version::V4;
        // `try_get` refuses compressed workflows: none of its lookups may
        // take the fast path.
        view.plain_buckets = &[];
        view.zstd = Some(ZstdInfo {
            dictionary,
            dictionary_offset: header_end,
            dictionary_checksum,
            largest,
            total,
            level,
        });
        Ok(view)
    }

    /// Whether the store's workflows are zstd frames (version 4).
    pub fn is_compressed(&self) -> bool {
        self.zstd.is_some()
    }

    /// What a compressed store records about its compression (`None` for
    /// an uncompressed one).
    pub fn compression(&self) -> Option<&ZstdInfo<'a>> {
        self.zstd.as_ref()
    }

    /// The workflow with this id as the store holds it, `Ok(None)` if there
    /// is none: [`Stored::Plain`] in versions 1 to 3, [`Stored::Zstd`] (the
    /// frame and its uncompressed length) in version 4. The lookup is
    /// [`try_get`](Self::try_get)'s.
    ///
    /// ```
    /// use knhk_core::store::{IndexSlot, SliceSink, Stored, StoreView, StoreWriter};
    /// use knhk_core::WorkflowSpecId;
    ///
    /// // A compressed store, its frame made by a zstd compressor elsewhere
    /// // (here a stand-in: the core never decompresses).
    /// let mut slots = [IndexSlot::EMPTY; 8];
    /// let mut file = [0_u8; 512];
    /// let mut writer = StoreWriter::new_compressed(SliceSink::new(&mut file), &mut slots[..], None, 3)?;
    /// let id = WorkflowSpecId::from_bytes([7; 16]);
    /// writer.add_compressed(id, 13, b"<zstd frame>")?;
    /// let len = writer.finish()? as usize;
    ///
    /// let store = StoreView::parse(&file[..len])?;
    /// let Some(Stored::Zstd(frame)) = store.get_stored(&id)? else { unreachable!() };
    /// assert_eq!((frame.frame, frame.len), (&b"<zstd frame>"[..], 13));
    /// // A plain lookup would hand out compressed bytes: it refuses.
    /// assert!(store.try_get(&id).is_err());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn get_stored(&self, id: &WorkflowSpecId) -> Result<Option<Stored<'a>>, StoreError> {
        match self.lookup(id)? {
            Some(data) => self.stored(data).map(Some),
            None => Ok(None),
        }
    }

    /// The workflows in file order, as the store holds them.
    pub fn stored_entries(&self) -> StoredEntries<'a> {
        let mut entries = self.entries();
        entries.compressed = false;
        StoredEntries {
            entries,
            view: *self,
        }
    }

    /// An entry's data as the store holds it.
    fn stored(&self, data: &'a [u8]) -> Result<Stored<'a>, StoreError> {
        let Some(info) = &self.zstd else {
            return Ok(Stored::Plain(data));
        };
        let bad = StoreError::BadCompressedEntry {
            offset: self.entry_offset(data),
        };
        let (len, frame) = data.split_first_chunk::<{ layout::RAW_LEN }>().ok_or(bad)?;
        let len = u32::from_le_bytes(*len);
        if u64::from(len) > info.largest {
            return Err(bad);
        }
        let len = usize::try_from(len).map_err(|_| StoreError::TooLarge {
            value: u64::from(len),
        })?;
        Ok(Stored::Zstd(ZstdFrame { frame, len }))
    }

    /// Version 4's part of `verify`: the dictionary's checksum, and every
    /// workflow's recorded length against the store's facts.
    pub(super) fn verify_compression(
        &self,
        info: &ZstdInfo<'a>,
        ix: &BucketIndex,
    ) -> Result<(), StoreError> {
        info.check_dictionary()?;
        let (mut largest, mut total) = (0_u64, 0_u64);
        for entry in self.stored_entries() {
            let (_, stored) = entry?;
            let len = stored.len() as u64;
            largest = largest.max(len);
            total = total.saturating_add(len);
        }
        if largest != info.largest || total != info.total {
            return Err(StoreError::BadTrailer {
                offset: ix.trailer as u64,
                field: "compression facts",
            });
        }
        Ok(())
    }
}

/// The workflows of a store in file order, as the store holds them:
/// `(id, stored)`, or the damage that stopped the scan (after which the
/// iterator ends). Made by [`StoreView::stored_entries`].
#[derive(Clone, Debug)]
pub struct StoredEntries<'a> {
    entries: Entries<'a>,
    view: StoreView<'a>,
}

impl<'a> Iterator for StoredEntries<'a> {
    type Item = Result<(WorkflowSpecId, Stored<'a>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (_, frame) = match self.entries.next_frame()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        let id = WorkflowSpecId::from_bytes(frame.id);
        let stored = self.view.stored(&self.view.bytes[frame.data..frame.next]);
        if stored.is_err() {
            self.entries.failed = true;
        }
        Some(stored.map(|s| (id, s)))
    }
}
