//! Compressed stores (format version 4): the writer's options and its
//! dictionary training, and the reader's decompression.
//!
//! libzstd does the work, through the `zstd` crate: it trains dictionaries
//! (ruzstd cannot), and its decoder with a digested dictionary (`DDict`)
//! and a reused context is the fastest there is. Frames are written
//! without the dictionary id, content size or checksum fields: the store
//! names the dictionary, records each uncompressed length before its frame
//! and checksums the stored bytes, so those fields would only cost bytes.

use std::cell::RefCell;
use std::fmt;
use std::ops::DerefMut;

use knhk_core::arena::Arena;
use knhk_core::store::{StoreError, ZstdFrame, ZstdInfo};
use zstd::zstd_safe::{self, CParameter, DCtx, DDict};

use crate::arena::{ArenaAllocator, ArenaBox, ArenaError, GrowingArena, HeapArena};

/// How [`WorkflowStoreWriter::create_compressed`] compresses a store.
///
/// ```
/// use knhk_std::store::Compression;
///
/// let mut compression = Compression::default();
/// compression.level = 9;
/// compression.dictionary_size = 64 << 10;
/// assert!(compression.dictionary);
/// ```
///
/// [`WorkflowStoreWriter::create_compressed`]: super::WorkflowStoreWriter::create_compressed
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compression {
    /// The zstd level, 1 (fastest) to 22 (smallest); negative levels are
    /// faster still. Default 3, zstd's own.
    pub level: i32,
    /// Whether to train a dictionary on the workflows and compress every
    /// workflow with it (default on): many small, similar documents
    /// compress several times better with one.
    pub dictionary: bool,
    /// The dictionary's size in bytes, at most (default 112,640: zstd's
    /// own default).
    pub dictionary_size: usize,
    /// How many bytes of workflows the writer keeps to train the
    /// dictionary on (default 100 times the dictionary size, as zstd
    /// advises). The dictionary must be written before the first
    /// workflow, so the writer holds the first workflows added, up to this
    /// many bytes, then trains, writes the dictionary and those workflows,
    /// and streams the rest. Memory is bounded by this (and one workflow).
    pub sample_bytes: usize,
}

impl Default for Compression {
    fn default() -> Compression {
        Compression {
            level: zstd_safe::CLEVEL_DEFAULT,
            dictionary: true,
            dictionary_size: DEFAULT_DICTIONARY,
            sample_bytes: 100 * DEFAULT_DICTIONARY,
        }
    }
}

const DEFAULT_DICTIONARY: usize = 112_640;

/// Why a compressed workflow could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecompressError {
    /// zstd refused the frame: it is corrupt, or made with another
    /// dictionary.
    Frame {
        /// zstd's reason.
        reason: &'static str,
    },
    /// The frame decompresses to more than the length the store records:
    /// a decompression bomb, stopped at the recorded length.
    TooLong {
        /// The recorded length.
        recorded: usize,
    },
    /// The frame decompresses to fewer bytes than the store records.
    TooShort {
        /// The recorded length.
        recorded: usize,
        /// What the frame gave.
        actual: usize,
    },
    /// The store's dictionary is not a zstd dictionary.
    Dictionary,
    /// No memory for the workflow's bytes.
    OutOfMemory {
        /// The bytes asked for.
        len: usize,
    },
    /// The arena had no room for the workflow.
    Arena(ArenaError),
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecompressError::Frame { reason } => write!(f, "corrupt zstd frame: {reason}"),
            DecompressError::TooLong { recorded } => write!(
                f,
                "the frame decompresses to more than its recorded {recorded} bytes \
                 (a decompression bomb)"
            ),
            DecompressError::TooShort { recorded, actual } => write!(
                f,
                "the frame decompresses to {actual} bytes, not its recorded {recorded}"
            ),
            DecompressError::Dictionary => f.write_str("the store's dictionary is not usable"),
            DecompressError::OutOfMemory { len } => {
                write!(f, "no memory for a workflow of {len} bytes")
            }
            DecompressError::Arena(e) => write!(f, "no room in the arena: {e}"),
        }
    }
}

impl std::error::Error for DecompressError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecompressError::Arena(e) => Some(e),
            _ => None,
        }
    }
}

/// The decoder of one compressed store: its dictionary, digested once when
/// the store is opened. The decompression context is per thread (one
/// per thread for all stores, made on the thread's first decompression).
pub(super) struct Decoder {
    dictionary: Option<DDict<'static>>,
}

thread_local! {
    static CONTEXT: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

impl Decoder {
    /// Checks and digests the store's dictionary.
    pub(super) fn new(info: &ZstdInfo<'_>) -> Result<Decoder, StoreOrFrame> {
        info.check_dictionary().map_err(StoreOrFrame::Store)?;
        let dictionary = match info.dictionary() {
            Some(bytes) => Some(
                DDict::try_create(bytes)
                    .filter(|d| d.get_dict_id().is_some())
                    .ok_or(StoreOrFrame::Frame(DecompressError::Dictionary))?,
            ),
            None => None,
        };
        Ok(Decoder { dictionary })
    }

    /// Decompresses `frame` into `out`, exactly `frame.len` bytes long.
    pub(super) fn decompress(
        &self,
        frame: &ZstdFrame<'_>,
        out: &mut [u8],
    ) -> Result<(), DecompressError> {
        debug_assert_eq!(out.len(), frame.len);
        let result = CONTEXT.with(|cell| {
            let mut slot = cell.borrow_mut();
            let context = slot.get_or_insert_with(DCtx::create);
            match &self.dictionary {
                Some(dictionary) => {
                    context.decompress_using_ddict(&mut *out, frame.frame, dictionary)
                }
                None => context.decompress(&mut *out, frame.frame),
            }
        });
        match result {
            Ok(actual) if actual == frame.len => Ok(()),
            Ok(actual) => Err(DecompressError::TooShort {
                recorded: frame.len,
                actual,
            }),
            Err(code) if zstd_safe::get_error_name(code) == DST_TOO_SMALL => {
                Err(DecompressError::TooLong {
                    recorded: frame.len,
                })
            }
            Err(code) => Err(DecompressError::Frame {
                reason: zstd_safe::get_error_name(code),
            }),
        }
    }

    /// Refuses a frame too short to decompress to its recorded length,
    /// before any memory is set aside for it. The recorded length is the
    /// file's word (up to 4 GiB): trusted, a few bytes of hostile file
    /// would make every read allocate and zero that much. Every zstd block
    /// takes at least its 3-byte header and gives at most
    /// `ZSTD_BLOCKSIZE_MAX` (128 KiB), so a frame of `n` bytes gives at
    /// most `n / 3` times that (the frames carry no content size to go by).
    pub(super) fn check_len(frame: &ZstdFrame<'_>) -> Result<(), DecompressError> {
        let most = (frame.frame.len() / 3).saturating_mul(zstd_safe::BLOCKSIZE_MAX as usize);
        if frame.len > most {
            return Err(DecompressError::Frame {
                reason: "too short to decompress to its recorded length",
            });
        }
        Ok(())
    }

    /// Decompresses `frame` into `out` (cleared first; its capacity is
    /// reused, grown only with `try_reserve`).
    pub(super) fn decompress_into_vec(
        &self,
        frame: &ZstdFrame<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), DecompressError> {
        out.clear();
        Decoder::check_len(frame)?;
        out.try_reserve_exact(frame.len)
            .map_err(|_| DecompressError::OutOfMemory { len: frame.len })?;
        out.resize(frame.len, 0);
        let result = self.decompress(frame, out);
        if result.is_err() {
            out.clear();
        }
        result
    }
}

/// zstd's name for a frame that needs more room than it was given.
const DST_TOO_SMALL: &str = "Destination buffer is too small";

/// A store error or a decompression error, before the store adds its path.
pub(super) enum StoreOrFrame {
    Store(StoreError),
    Frame(DecompressError),
}

/// A compressor for a store's workflows: one context, the dictionary
/// loaded once, frames without the fields the store makes redundant.
pub(super) struct Encoder {
    compressor: zstd::bulk::Compressor<'static>,
}

impl Encoder {
    pub(super) fn new(level: i32, dictionary: Option<&[u8]>) -> std::io::Result<Encoder> {
        let mut compressor = match dictionary {
            Some(dictionary) => zstd::bulk::Compressor::with_dictionary(level, dictionary)?,
            None => zstd::bulk::Compressor::new(level)?,
        };
        compressor.set_parameter(CParameter::ContentSizeFlag(false))?;
        compressor.set_parameter(CParameter::ChecksumFlag(false))?;
        compressor.set_parameter(CParameter::DictIdFlag(false))?;
        Ok(Encoder { compressor })
    }

    /// One workflow's frame, into `out` (cleared first, its capacity
    /// reused).
    pub(super) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        out.clear();
        out.reserve(zstd_safe::compress_bound(data.len()));
        self.compressor.compress_to_buffer(data, out)?;
        Ok(())
    }
}

/// Trains a dictionary of at most `size` bytes on `samples` (the workflows
/// laid end to end, and their lengths). `None` when zstd cannot train one
/// (too few or too small samples): the store is then compressed without.
pub(super) fn train(samples: &[u8], lengths: &[usize], size: usize) -> Option<Vec<u8>> {
    if lengths.len() < 8 || size < 256 {
        return None;
    }
    zstd::dict::from_continuous(samples, lengths, size).ok()
}

/// Arenas a compressed workflow can be decompressed into, so that a batch
/// of reads makes no heap allocation: knhk-core's [`Arena`] (and
/// [`HeapArena`], which derefs to one), [`GrowingArena`] and
/// [`ArenaAllocator`].
pub trait WorkflowArena<'a> {
    /// The bytes the arena hands out: a slice, or for [`ArenaAllocator`]
    /// an [`ArenaBox`].
    type Bytes: DerefMut<Target = [u8]> + 'a;

    /// `len` zeroed bytes from the arena.
    fn zeroed(self, len: usize) -> Result<Self::Bytes, ArenaError>;
}

impl<'a, 'b> WorkflowArena<'a> for &'a Arena<'b> {
    type Bytes = &'a mut [u8];
    fn zeroed(self, len: usize) -> Result<&'a mut [u8], ArenaError> {
        self.alloc_slice_fill_with(len, |_| 0_u8)
            .map_err(ArenaError::Alloc)
    }
}

impl<'a> WorkflowArena<'a> for &'a HeapArena {
    type Bytes = &'a mut [u8];
    fn zeroed(self, len: usize) -> Result<&'a mut [u8], ArenaError> {
        (**self)
            .alloc_slice_fill_with(len, |_| 0_u8)
            .map_err(ArenaError::Alloc)
    }
}

impl<'a> WorkflowArena<'a> for &'a GrowingArena {
    type Bytes = &'a mut [u8];
    fn zeroed(self, len: usize) -> Result<&'a mut [u8], ArenaError> {
        self.alloc_slice_fill_with(len, |_| 0_u8)
    }
}

impl<'a> WorkflowArena<'a> for &'a ArenaAllocator {
    type Bytes = ArenaBox<'a, [u8]>;
    fn zeroed(self, len: usize) -> Result<ArenaBox<'a, [u8]>, ArenaError> {
        self.alloc_slice_fill_copy(len, 0_u8)
    }
}
