//! Store round trips, every format version, and hostile input.

use super::*;
use crate::WorkflowSpecId;
use proptest::prelude::*;

/// Index storage that grows, as knhk-std's does.
struct Growing(Vec<IndexSlot>);

impl IndexStorage for Growing {
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

/// A `Vec` as a sink.
struct VecSink(Vec<u8>);

impl Sink for VecSink {
    type Error = core::convert::Infallible;
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

fn id(n: u8) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes([n; 16])
}

fn write_v3(entries: &[(WorkflowSpecId, Vec<u8>)]) -> Vec<u8> {
    let mut sink = VecSink(Vec::new());
    let mut writer = StoreWriter::new(&mut sink, Growing(vec![IndexSlot::EMPTY; 2])).unwrap();
    for (id, data) in entries {
        writer.add(*id, data).unwrap();
    }
    let len = writer.finish().unwrap();
    assert_eq!(len as usize, sink.0.len());
    sink.0
}

/// A compressed store, its "frames" the data itself (the core never
/// decompresses): each workflow records three times its length as its
/// uncompressed length.
#[cfg(feature = "store-zstd")]
fn write_v4(entries: &[(WorkflowSpecId, Vec<u8>)], dictionary: Option<&[u8]>) -> Vec<u8> {
    let mut sink = VecSink(Vec::new());
    let mut writer = StoreWriter::new_compressed(
        &mut sink,
        Growing(vec![IndexSlot::EMPTY; 2]),
        dictionary,
        19,
    )
    .unwrap();
    for (id, data) in entries {
        writer.add_compressed(*id, 3 * data.len(), data).unwrap();
    }
    let len = writer.finish().unwrap();
    assert_eq!(len as usize, sink.0.len());
    sink.0
}

/// An archived store, its "archives" the data itself behind the prefix
/// that aligns them in the file.
#[cfg(feature = "store-archive")]
fn write_archived(entries: &[(WorkflowSpecId, Vec<u8>)]) -> Vec<u8> {
    let mut sink = VecSink(Vec::new());
    let mut writer =
        StoreWriter::new_archived(&mut sink, Growing(vec![IndexSlot::EMPTY; 2]), FORMAT).unwrap();
    for (id, data) in entries {
        let k = layout::archive_prefix(writer.offset() + layout::FRAME as u64);
        let mut entry = vec![0_u8; usize::from(k)];
        entry[0] = k;
        entry.extend_from_slice(data);
        writer.add(*id, &entry).unwrap();
    }
    writer.finish().unwrap();
    sink.0
}

#[cfg(feature = "store-archive")]
const FORMAT: layout::ArchiveFormat = layout::ArchiveFormat {
    major: 0,
    minor: 8,
    big_endian: false,
    pointer_width: 4,
    aligned: true,
};

/// How many bytes a damage test moves on at a time: every byte natively;
/// under Miri, `step` for the first file (version 3) and three times that
/// for the others, whose parsing shares most of its code with it.
fn miri_step(file: usize, step: usize) -> usize {
    match (cfg!(miri), file) {
        (false, _) => 1,
        (true, 0) => step,
        (true, _) => 3 * step,
    }
}

/// The files of every version this build reads, for the damage tests.
fn every_version(entries: &[(WorkflowSpecId, Vec<u8>)]) -> Vec<(u32, Vec<u8>)> {
    #[allow(unused_mut)]
    let mut files = vec![(3, write_v3(entries))];
    #[cfg(feature = "store-v2")]
    files.push((2, write_v2(entries)));
    #[cfg(feature = "store-zstd")]
    {
        files.push((4, write_v4(entries, Some(b"a shared dictionary"))));
        files.push((4, write_v4(entries, None)));
    }
    #[cfg(feature = "store-archive")]
    files.push((3, write_archived(entries)));
    files
}

/// Version 2, as knhk wrote it before version 3, written by hand from
/// docs/store-format.md.
#[cfg_attr(not(feature = "store-v2"), allow(dead_code))]
fn write_v2(entries: &[(WorkflowSpecId, Vec<u8>)]) -> Vec<u8> {
    let frame = |out: &mut Vec<u8>, id: &[u8; 16], data: &[u8]| {
        out.extend_from_slice(id);
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(data);
    };
    let mut out = Vec::new();
    let mut header = Vec::new();
    header.extend_from_slice(b"KNHKWF\x00\x02");
    header.extend_from_slice(&2_u32.to_le_bytes());
    header.extend_from_slice(&0_u32.to_le_bytes());
    frame(&mut out, &layout::HEADER_ID, &header);
    let capacity = (entries.len() * 2).next_power_of_two().max(2);
    let mut slots = vec![None::<([u8; 16], u64, u64, u64)>; capacity];
    let mut max_probe = 0;
    for (id, data) in entries {
        let start = layout::slot_hash(id.as_bytes()) as usize & (capacity - 1);
        let step = (0..capacity)
            .find(|s| slots[(start + s) & (capacity - 1)].is_none())
            .unwrap();
        max_probe = max_probe.max(step);
        slots[(start + step) & (capacity - 1)] = Some((
            *id.as_bytes(),
            out.len() as u64,
            data.len() as u64,
            layout::checksum(data),
        ));
        frame(&mut out, id.as_bytes(), data);
    }
    let mut index = Vec::new();
    for slot in &slots {
        let (id, offset, len, sum) = slot.unwrap_or(([0; 16], u64::MAX, 0, 0));
        index.extend_from_slice(&id);
        for v in [offset, len, sum] {
            index.extend_from_slice(&v.to_le_bytes());
        }
    }
    let index_offset = out.len() as u64;
    frame(&mut out, &layout::INDEX_ID, &index);
    let mut t = Vec::new();
    t.extend_from_slice(b"KNHKTAIL");
    t.extend_from_slice(&2_u32.to_le_bytes());
    t.extend_from_slice(&0_u32.to_le_bytes());
    for v in [
        entries.len() as u64,
        index_offset,
        capacity as u64,
        max_probe as u64,
        layout::checksum(&index),
    ] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    let own = layout::checksum(&t);
    t.extend_from_slice(&own.to_le_bytes());
    frame(&mut out, &layout::TRAILER_ID, &t);
    out
}

/// The design document's format, written by hand from its description.
fn write_v1(entries: &[(WorkflowSpecId, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, data) in entries {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// A plain version-1 scanner, knowing nothing of version 2.
fn scan_v1(bytes: &[u8]) -> Vec<([u8; 16], Vec<u8>)> {
    frames(bytes)
        .into_iter()
        .map(|(_, id, data)| (id, data.to_vec()))
        .collect()
}

/// Every frame of `bytes`, walked as a version-1 file: where it starts,
/// its id and its data.
fn frames(bytes: &[u8]) -> Vec<(usize, [u8; 16], &[u8])> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let id: [u8; 16] = bytes[at..at + 16].try_into().unwrap();
        let len = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap()) as usize;
        out.push((at, id, &bytes[at + 24..at + 24 + len]));
        at += 24 + len;
    }
    out
}

fn sample() -> Vec<(WorkflowSpecId, Vec<u8>)> {
    vec![
        (id(1), b"sequence: a then b".to_vec()),
        (id(2), Vec::new()),
        (id(3), vec![0xFF, 0xFE, 0x00, 0x80]),
        (id(4), b"parallel split".repeat(3)),
    ]
}

#[test]
fn version_3_round_trips_and_opens_without_scanning() {
    let file = write_v3(&sample());
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(store.version(), Version::V3);
    assert_eq!(store.len(), 4);
    for (id, data) in sample() {
        assert_eq!(store.get(&id), Some(&data[..]));
    }
    assert_eq!(store.get(&id(9)), None);
    let listed: Vec<_> = store.entries().map(|e| e.unwrap().0).collect();
    assert_eq!(listed, vec![id(1), id(2), id(3), id(4)], "file order");
    store.verify().unwrap();
    let index = store.index_range().unwrap();
    assert_eq!(
        index.start % layout::BUCKET_ALIGN,
        0,
        "buckets on cache lines"
    );
    assert_eq!(index.len(), layout::BUCKET, "four workflows: one bucket");
}

#[test]
#[cfg(not(feature = "store-v2"))]
fn version_2_files_are_refused_by_name_without_the_feature() {
    let err = StoreView::parse(&write_v2(&sample())).unwrap_err();
    assert_eq!(err, StoreError::UnsupportedVersion { version: 2 });
    assert!(err.to_string().contains("store-v2"), "{err}");
}

#[test]
#[cfg(feature = "store-v2")]
fn version_2_files_still_read_and_verify() {
    let file = write_v2(&sample());
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(store.version(), Version::V2);
    assert_eq!(store.len(), 4);
    for (id, data) in sample() {
        assert_eq!(store.get(&id), Some(&data[..]));
    }
    assert_eq!(store.get(&id(9)), None);
    store.verify().unwrap();
    let got: Vec<_> = store.get_many(&[id(4), id(9), id(1)]).collect();
    assert_eq!(
        got,
        vec![
            Ok(Some(&sample()[3].1[..])),
            Ok(None),
            Ok(Some(&sample()[0].1[..]))
        ]
    );
}

/// Ids spread like random v4 UUIDs, reproducibly.
fn spread_id(n: u64) -> WorkflowSpecId {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
    let b = (n ^ 0xC2B2_AE3D_27D4_EB4F).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    WorkflowSpecId::from_bytes(((u128::from(a) << 64) | u128::from(b)).to_le_bytes())
}

#[test]
fn the_compact_index_is_small_and_finds_everything() {
    let n = if cfg!(miri) { 300 } else { 20_000 };
    let entries: Vec<_> = (0..n)
        .map(|i| (spread_id(i), i.to_le_bytes()[..(i % 8) as usize].to_vec()))
        .collect();
    let file = write_v3(&entries);
    let store = StoreView::parse(&file).unwrap();
    let index = store.index_range().unwrap();
    let per_workflow = index.len() as f64 / n as f64;
    assert!(
        per_workflow <= 16.0,
        "{per_workflow} index bytes a workflow"
    );
    for (id, data) in &entries {
        assert_eq!(store.get(id), Some(&data[..]));
    }
    let misses: Vec<_> = (n..2 * n).map(spread_id).collect();
    assert!(misses.iter().all(|id| store.get(id).is_none()));
    // The batched form agrees with one lookup at a time, hits and misses
    // interleaved, for every batch length around the prefetch distances.
    let mixed: Vec<_> = (0..200)
        .map(|i| {
            if i % 3 == 0 {
                misses[i % misses.len()]
            } else {
                entries[i * 7 % entries.len()].0
            }
        })
        .collect();
    // Every length up to past the entry distance, then around the index
    // distance and one and two turns of the ring (64 lookups).
    let ahead = [GetMany::INDEX_AHEAD, 64, 128, 112];
    let lengths = (0..=GetMany::DATA_AHEAD + 2).chain(ahead.iter().flat_map(|&d| d - 1..=d + 1));
    for len in lengths {
        let one: Vec<_> = mixed[..len].iter().map(|id| store.try_get(id)).collect();
        let many: Vec<_> = store.get_many(&mixed[..len]).collect();
        assert_eq!(one, many, "batch of {len}");
    }
    let all: Vec<_> = store.get_many(&mixed).collect();
    assert_eq!(all.len(), mixed.len());
    assert!(all
        .iter()
        .zip(&mixed)
        .all(|(got, id)| *got == store.try_get(id)));
    store.verify().unwrap();
    // A v1 scan sees the same workflows.
    assert_eq!(store.entries().count(), n as usize);
}

#[test]
fn ids_that_share_a_bucket_and_a_tag_are_told_apart_by_their_frames() {
    // spread_id(3577) and spread_id(15664) share their home bucket (of 64,
    // and so of 1) and their 16-bit tag: found by a search over ids.
    let (a, b) = (spread_id(3577), spread_id(15664));
    let hash = |id: WorkflowSpecId| layout::slot_hash(id.as_bytes());
    assert_eq!(layout::tag(hash(a)), layout::tag(hash(b)));
    assert_eq!(layout::home_bucket(hash(a), 64), 0);
    assert_eq!(layout::home_bucket(hash(b), 64), 0);
    let entries = vec![(a, b"first".to_vec()), (b, b"second".to_vec())];
    let file = write_v3(&entries);
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(store.get(&a), Some(&b"first"[..]));
    assert_eq!(store.get(&b), Some(&b"second"[..]));
    let many: Vec<_> = store.get_many(&[b, a, b]).collect();
    assert_eq!(
        many,
        vec![
            Ok(Some(&b"second"[..])),
            Ok(Some(&b"first"[..])),
            Ok(Some(&b"second"[..]))
        ]
    );
    // A third id with the same tag but absent is a miss.
    assert_eq!(
        StoreView::parse(&write_v3(&entries[..1])).unwrap().get(&b),
        None
    );
    store.verify().unwrap();
}

#[test]
fn ids_whose_hash_ends_in_sixteen_zero_bits_are_found_and_missed_exactly() {
    // The slot tag of these ids is 1 (the low 16 bits of their hash are 0,
    // and no tag is 0), and the lookup's common case compares the raw bits,
    // so it meets their tag nowhere and an empty slot's 0 anywhere: the
    // careful lookup must answer them. Found by a search over ids; the
    // last has the tag 1 honestly, and shares it with the first two.
    let zeros = [spread_id(7019), spread_id(169_137), spread_id(324_636)];
    let honest_one = spread_id(32_457);
    let hash = |id: &WorkflowSpecId| layout::slot_hash(id.as_bytes());
    assert!(zeros.iter().all(|id| hash(id) as u16 == 0));
    assert_eq!(layout::tag(hash(&zeros[0])), 1);
    assert_eq!(hash(&honest_one) as u16, 1);
    // Few entries (buckets with empty slots) and many (full ones).
    for filler in [0, 40] {
        let mut entries: Vec<_> = (1_000..1_000 + filler)
            .map(|i| (spread_id(i), vec![i as u8]))
            .collect();
        entries.push((zeros[0], b"zero".to_vec()));
        entries.push((honest_one, b"one".to_vec()));
        let file = write_v3(&entries);
        let store = StoreView::parse(&file).unwrap();
        for (id, data) in &entries {
            assert_eq!(store.try_get(id), Ok(Some(&data[..])));
        }
        for absent in &zeros[1..] {
            assert_eq!(store.try_get(absent), Ok(None));
        }
        let batch = [zeros[1], zeros[0], honest_one, zeros[2], zeros[0]];
        let many: Vec<_> = store.get_many(&batch).collect();
        let one: Vec<_> = batch.iter().map(|id| store.try_get(id)).collect();
        assert_eq!(many, one);
        assert_eq!(many[1], Ok(Some(&b"zero"[..])));
        #[cfg(not(target_os = "none"))]
        for id in zeros.iter().chain([&honest_one]) {
            if let Some(answer) = store.try_get_common(id) {
                assert_eq!(Ok(answer), store.try_get(id));
            }
        }
        store.verify().unwrap();
    }
}

#[test]
fn crowded_buckets_spill_into_the_next_ones() {
    // Ids that all share a home bucket (the top bits of the hash): far more
    // than a bucket holds, so lookups must follow the overflow.
    let mut entries = Vec::new();
    let mut n = 0_u64;
    while entries.len() < 40 {
        let id = spread_id(n);
        n += 1;
        if layout::home_bucket(layout::slot_hash(id.as_bytes()), 64) == 0 {
            entries.push((id, n.to_le_bytes().to_vec()));
        }
    }
    // With 40 entries there are 8 home buckets; ids homed in bucket 0 of 64
    // are all homed in bucket 0 of 8.
    let file = write_v3(&entries);
    let store = StoreView::parse(&file).unwrap();
    for (id, data) in &entries {
        assert_eq!(store.get(id), Some(&data[..]));
    }
    let ids: Vec<_> = entries.iter().map(|(id, _)| *id).collect();
    assert!(store.get_many(&ids).all(|r| r.unwrap().is_some()));
    assert_eq!(store.get(&spread_id(u64::MAX)), None);
    store.verify().unwrap();
}

#[test]
fn version_1_files_are_read_and_verified() {
    let file = write_v1(&sample());
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(store.version(), Version::V1);
    assert_eq!(store.len(), 4);
    assert_eq!(store.get(&id(3)), Some(&[0xFF, 0xFE, 0x00, 0x80][..]));
    assert_eq!(store.get(&id(2)), Some(&[][..]));
    store.verify().unwrap();
}

#[test]
fn a_version_1_scanner_reads_a_version_3_file() {
    let file = write_v3(&sample());
    let seen = scan_v1(&file);
    assert_eq!(seen.first().unwrap().0, layout::HEADER_ID);
    assert_eq!(seen.last().unwrap().0, layout::TRAILER_ID);
    assert_eq!(seen[seen.len() - 2].0, layout::CHECKSUMS_ID);
    assert_eq!(seen[seen.len() - 3].0, layout::INDEX_ID);
    // Between them the workflows, and the padding frames of an aligned
    // store, which a scanner skips as it skips every reserved id.
    let (pads, data): (Vec<_>, Vec<_>) = seen[1..seen.len() - 3]
        .iter()
        .cloned()
        .partition(|(id, _)| *id == layout::PAD_ID);
    assert!(!pads.is_empty(), "the sample needs some padding");
    assert!(pads
        .iter()
        .all(|(_, d)| d.len() < 8 && d.iter().all(|&b| b == 0)));
    let want: Vec<_> = sample()
        .into_iter()
        .map(|(i, d)| (*i.as_bytes(), d))
        .collect();
    assert_eq!(data, want);
}

#[test]
fn empty_stores() {
    let file = write_v3(&[]);
    let store = StoreView::parse(&file).unwrap();
    assert!(store.is_empty());
    assert_eq!(store.entries().count(), 0);
    store.verify().unwrap();
    let v1 = StoreView::parse(&[]).unwrap();
    assert_eq!((v1.version(), v1.len()), (Version::V1, 0));
}

#[test]
fn the_writer_refuses_duplicates_reserved_ids_and_a_full_index() {
    let mut slots = [IndexSlot::EMPTY; 4];
    let mut file = [0_u8; 1024];
    let mut sink = SliceSink::new(&mut file);
    let mut writer = StoreWriter::new(&mut sink, &mut slots[..]).unwrap();
    writer.add(id(1), b"x").unwrap();
    assert_eq!(
        writer.add(id(1), b"y"),
        Err(WriteError::DuplicateId { id: id(1) })
    );
    let reserved = WorkflowSpecId::from_bytes(layout::INDEX_ID);
    assert_eq!(
        writer.add(reserved, b""),
        Err(WriteError::ReservedId { id: reserved })
    );
    writer.add(id(2), b"y").unwrap();
    assert_eq!(
        writer.add(id(3), b"z"),
        Err(WriteError::IndexFull { capacity: 4 })
    );
    let len = writer.finish().unwrap() as usize;
    let store = StoreView::parse(&file[..len]).unwrap();
    assert_eq!(store.len(), 2);
    store.verify().unwrap();

    let mut three = [IndexSlot::EMPTY; 3];
    let mut out = [0_u8; 64];
    assert!(matches!(
        StoreWriter::new(SliceSink::new(&mut out), &mut three[..]),
        Err(WriteError::BadIndexCapacity { capacity: 3 })
    ));
    let mut tiny = [0_u8; 10];
    let mut two = [IndexSlot::EMPTY; 2];
    assert!(matches!(
        StoreWriter::new(SliceSink::new(&mut tiny), &mut two[..]),
        Err(WriteError::Sink(SinkFull { .. }))
    ));
}

#[test]
fn version_1_duplicates_are_reported() {
    let mut entries = sample();
    entries.push((id(2), b"again".to_vec()));
    let file = write_v1(&entries);
    let store = StoreView::parse(&file).unwrap();
    assert!(matches!(
        store.verify(),
        Err(StoreError::DuplicateId { .. })
    ));
}

/// Parses, looks up, lists and verifies; whatever the bytes, no panic.
/// Returns whether everything came back clean.
fn exercise(bytes: &[u8]) -> bool {
    let Ok(store) = StoreView::parse(bytes) else {
        return false;
    };
    let probes: Vec<_> = (0..6).map(id).collect();
    for (n, many) in store.get_many(&probes).enumerate() {
        assert_eq!(many, store.try_get(&probes[n]));
    }
    #[cfg(feature = "store-archive")]
    if store.archive_format().is_some() {
        for probe in &probes {
            if store.get_archived(probe).is_err() {
                return false;
            }
        }
    }
    #[cfg(feature = "store-zstd")]
    if store.is_compressed() {
        let mut found = true;
        for probe in &probes {
            found &= store.get_stored(probe).is_ok();
        }
        let listed = store.stored_entries().all(|e| e.is_ok());
        let dictionary = store
            .compression()
            .is_some_and(|c| c.check_dictionary().is_ok());
        return store.verify().is_ok() && listed && found && dictionary;
    }
    let listed = store.entries().all(|e| e.is_ok());
    let _ = store.len();
    store.verify().is_ok() && listed
}

#[test]
fn every_single_byte_change_is_caught_and_never_panics() {
    for (n, (version, file)) in every_version(&sample()).into_iter().enumerate() {
        assert!(exercise(&file));
        let step = miri_step(n, 11);
        for i in (0..file.len()).step_by(step) {
            for flip in [0x01_u8, 0x80] {
                let mut bad = file.clone();
                bad[i] ^= flip;
                assert!(
                    !exercise(&bad),
                    "version {version}: changing byte {i} by {flip:#x} went unnoticed"
                );
            }
        }
    }
}

#[test]
fn every_truncation_is_an_error_or_a_shorter_valid_v1_list() {
    for (n, (_, file)) in every_version(&sample()).into_iter().enumerate() {
        let step = miri_step(n, 7);
        for len in (0..file.len()).step_by(step) {
            // A cut at a frame boundary is a valid (shorter) version-1 list;
            // anywhere else it is an error. Either way: no panic.
            exercise(&file[..len]);
            if let Ok(store) = StoreView::parse(&file[..len]) {
                assert_eq!(store.version(), Version::V1, "cut at {len}");
            }
        }
    }
}

#[test]
fn unknown_versions_are_refused_by_name() {
    let mut file = write_v3(&sample());
    let t = file.len() - layout::TRAILER_SIZE + layout::FRAME;
    file[t + layout::trailer::VERSION..t + layout::trailer::VERSION + 4]
        .copy_from_slice(&5_u32.to_le_bytes());
    assert_eq!(
        StoreView::parse(&file).unwrap_err(),
        StoreError::UnsupportedVersion { version: 5 }
    );
}

/// A small compressed store as `write_v4` writes it (with the dictionary
/// `b"a shared dictionary"`), kept as bytes so that a build without
/// `store-zstd` (the reader that does not know compression) is tested on
/// it too.
const COMPRESSED_FIXTURE: &[u8] = include_bytes!("fixtures/compressed.v4");

#[test]
#[cfg(not(feature = "store-zstd"))]
fn a_reader_without_compression_refuses_a_compressed_store_by_version() {
    let err = StoreView::parse(COMPRESSED_FIXTURE).unwrap_err();
    assert_eq!(err, StoreError::UnsupportedVersion { version: 4 });
    assert!(err.to_string().contains("store-zstd"), "{err}");
    // A version-1 scanner still walks it: every entry is framed.
    let frames = scan_v1(COMPRESSED_FIXTURE);
    assert_eq!(frames.first().map(|f| f.0), Some(layout::HEADER_ID));
    assert_eq!(frames.last().map(|f| f.0), Some(layout::TRAILER_ID));
}

#[test]
#[cfg(feature = "store-zstd")]
fn the_compressed_fixture_is_what_the_writer_writes() {
    let file = write_v4(&sample(), Some(b"a shared dictionary"));
    if std::env::var_os("KNHK_WRITE_FIXTURES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/store/fixtures/compressed.v4"
        );
        std::fs::write(path, &file).unwrap();
        return;
    }
    assert_eq!(
        file, COMPRESSED_FIXTURE,
        "the format changed: rerun this test with KNHK_WRITE_FIXTURES=1"
    );
}

#[test]
#[cfg(feature = "store-zstd")]
fn version_4_hands_out_frames_and_never_compressed_bytes_as_workflows() {
    for dictionary in [Some(&b"a shared dictionary"[..]), None] {
        let file = write_v4(&sample(), dictionary);
        let store = StoreView::parse(&file).unwrap();
        assert_eq!(store.version(), Version::V4);
        assert!(store.is_compressed());
        assert_eq!(store.len(), 4);
        let info = *store.compression().unwrap();
        assert_eq!(info.dictionary(), dictionary);
        info.check_dictionary().unwrap();
        assert_eq!(info.largest(), 3 * 42);
        assert_eq!(info.total(), 3 * (18 + 4 + 42));
        assert_eq!(info.level(), 19);
        for (id, data) in sample() {
            let expected = Stored::Zstd(ZstdFrame {
                frame: &data,
                len: 3 * data.len(),
            });
            assert_eq!(store.get_stored(&id), Ok(Some(expected)));
            assert_eq!(store.try_get(&id), Err(StoreError::Compressed));
            assert_eq!(store.get(&id), None);
        }
        assert_eq!(store.get_stored(&id(9)), Ok(None));
        let many: Vec<_> = store.get_many(&[id(1), id(9)]).collect();
        assert_eq!(
            many,
            [Err(StoreError::Compressed), Err(StoreError::Compressed)]
        );
        assert_eq!(
            store.entries().collect::<Vec<_>>(),
            [Err(StoreError::Compressed)]
        );
        let listed: Vec<_> = store.stored_entries().map(|e| e.unwrap().0).collect();
        assert_eq!(listed, [id(1), id(2), id(3), id(4)], "file order");
        store.verify().unwrap();
        // Uncompressed stores hand out plain data through the same call.
        let plain = write_v3(&sample());
        let plain = StoreView::parse(&plain).unwrap();
        assert_eq!(
            plain.get_stored(&id(1)),
            Ok(Some(Stored::Plain(b"sequence: a then b")))
        );
        assert!(plain.compression().is_none());
    }
}

#[test]
#[cfg(feature = "store-archive")]
fn archived_stores_align_every_archive_and_record_their_format() {
    let file = write_archived(&sample());
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(store.version(), Version::V3);
    assert_eq!(store.archive_format(), Some(FORMAT));
    assert_eq!(store.len(), 4);
    for (id, data) in sample() {
        let archive = store.get_archived(&id).unwrap().unwrap();
        assert_eq!(archive, &data[..]);
        let at = archive.as_ptr() as usize - file.as_ptr() as usize;
        assert_eq!(at % layout::ARCHIVE_ALIGN, 0, "aligned in the file");
    }
    assert_eq!(store.get_archived(&id(9)), Ok(None));
    store.verify().unwrap();
    // A version-1 scanner still walks it: the format record is an entry.
    assert_eq!(scan_v1(&file)[1].0, layout::ARCHIVE_ID);
    // Plain stores have no format; their entries are not archives.
    let plain = write_v3(&sample());
    assert_eq!(StoreView::parse(&plain).unwrap().archive_format(), None);
    // A record that is not one is refused at open.
    let mut bad = file.clone();
    bad[layout::HEADER_SIZE + layout::FRAME + 9] = 3; // pointer width 3
    assert!(StoreView::parse(&bad).is_err());
    // A damaged prefix is named.
    assert_eq!(layout::archived_payload(&[0, 1, 2]), None);
    assert_eq!(layout::archived_payload(&[3, 0, 1, 9]), None);
    assert_eq!(layout::archived_payload(&[17; 20]), None);
    assert_eq!(layout::archived_payload(&[2, 0, 7]), Some(&[7][..]));
    assert_eq!(layout::archive_prefix(32), 16);
    assert_eq!(layout::archive_prefix(35), 13);
}

#[test]
#[cfg(not(feature = "store-archive"))]
fn archived_stores_are_refused_without_the_feature() {
    // Flip the plain fixture's trailer flags to archived, checksum fixed.
    let mut file = write_v3(&sample());
    let t = file.len() - layout::TRAILER_SIZE + layout::FRAME;
    file[t + layout::trailer::FLAGS] = layout::FLAG_ARCHIVED as u8;
    let sum = layout::checksum(&file[t..t + layout::trailer::TRAILER_CHECKSUM]);
    file[t + layout::trailer::TRAILER_CHECKSUM..t + layout::TRAILER_LEN]
        .copy_from_slice(&sum.to_le_bytes());
    assert!(matches!(
        StoreView::parse(&file),
        Err(StoreError::BadTrailer { field: "flags", .. })
    ));
}

#[test]
#[cfg(feature = "store-zstd")]
fn compressed_writers_refuse_the_wrong_kind_of_entry() {
    let mut sink = VecSink(Vec::new());
    let mut writer =
        StoreWriter::new_compressed(&mut sink, Growing(vec![IndexSlot::EMPTY; 2]), None, 3)
            .unwrap();
    assert_eq!(writer.add(id(1), b"plain"), Err(WriteError::Compressed));
    if let Ok(huge) = usize::try_from(u64::from(u32::MAX) + 1) {
        assert_eq!(
            writer.add_compressed(id(1), huge, b"frame"),
            Err(WriteError::WorkflowTooLarge {
                len: u64::from(u32::MAX) + 1
            })
        );
    }
    assert!(writer.is_empty());
    let mut sink = VecSink(Vec::new());
    let mut plain = StoreWriter::new(&mut sink, Growing(vec![IndexSlot::EMPTY; 2])).unwrap();
    assert_eq!(
        plain.add_compressed(id(1), 5, b"frame"),
        Err(WriteError::Uncompressed)
    );
}

#[test]
#[cfg(feature = "store-zstd")]
fn hostile_compression_facts_are_refused() {
    let file = write_v4(&sample(), Some(b"a shared dictionary"));
    let info = file.len() - layout::TRAILER_SIZE - layout::ZSTD_INFO_SIZE + layout::FRAME;
    // A smaller largest length than a frame records: the frame is refused
    // at lookup, and verify names the facts.
    let mut bad = file.clone();
    bad[info..info + 8].copy_from_slice(&10_u64.to_le_bytes());
    let store = StoreView::parse(&bad).unwrap();
    assert!(matches!(
        store.get_stored(&id(4)),
        Err(StoreError::BadCompressedEntry { .. })
    ));
    assert!(store.verify().is_err());
    // A largest length past what a frame can record: refused at open.
    let mut bad = file.clone();
    bad[info..info + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        StoreView::parse(&bad),
        Err(StoreError::BadTrailer {
            field: "compression facts",
            ..
        })
    ));
    // A damaged dictionary is named.
    let mut bad = file.clone();
    let dict = layout::HEADER_SIZE + layout::FRAME;
    bad[dict] ^= 1;
    let store = StoreView::parse(&bad).unwrap();
    assert!(matches!(
        store.compression().unwrap().check_dictionary(),
        Err(StoreError::DictionaryChecksum { .. })
    ));
    // Flags the version does not define.
    let mut bad = file;
    let t = bad.len() - layout::TRAILER_SIZE + layout::FRAME + layout::trailer::FLAGS;
    bad[t] |= 4;
    assert!(StoreView::parse(&bad).is_err());
}

#[test]
fn hostile_trailers_are_refused() {
    let file = write_v3(&sample());
    let t = file.len() - layout::TRAILER_SIZE + layout::FRAME;
    // Rewrite a field and fix the trailer's own checksum, as a forger would.
    let forge = |field: usize, value: u64| {
        let mut bad = file.clone();
        bad[t + field..t + field + 8].copy_from_slice(&value.to_le_bytes());
        let sum = layout::checksum(&bad[t..t + layout::trailer::TRAILER_CHECKSUM]);
        bad[t + layout::trailer::TRAILER_CHECKSUM..t + layout::TRAILER_LEN]
            .copy_from_slice(&sum.to_le_bytes());
        bad
    };
    use layout::trailer::*;
    for (field, value) in [
        (INDEX_CAPACITY, 3),
        (INDEX_CAPACITY, 0),
        (INDEX_CAPACITY, 1 << 62),
        (INDEX_OFFSET, u64::MAX),
        (INDEX_OFFSET, 1),
        (ENTRY_COUNT, u64::MAX),
        (MAX_PROBE, u64::MAX),
    ] {
        let bad = forge(field, value);
        assert!(
            StoreView::parse(&bad).is_err(),
            "field at {field} = {value}"
        );
    }
    // Opening reads only the trailer and the header, so a forged index
    // offset whose arithmetic works out opens; its lookups stay within the
    // (now empty) data region, and `verify` refuses it; so with a forged
    // entry count.
    for (field, value) in [(INDEX_OFFSET, 40), (ENTRY_COUNT, 0), (ENTRY_COUNT, 3)] {
        let bad = forge(field, value);
        if let Ok(store) = StoreView::parse(&bad) {
            for n in 0..6 {
                let _ = store.try_get(&id(n));
            }
            assert!(store.verify().is_err(), "field at {field} = {value}");
        }
    }
    let text = StoreError::Truncated {
        offset: 5,
        needed: 30,
        available: 2,
    }
    .to_string();
    assert!(text.contains("offset 5") && text.contains("30"), "{text}");
}

fn entries_strategy() -> impl Strategy<Value = Vec<(WorkflowSpecId, Vec<u8>)>> {
    proptest::collection::btree_map(
        any::<[u8; 16]>().prop_filter("not reserved", |b| !layout::RESERVED_IDS.contains(b)),
        proptest::collection::vec(any::<u8>(), 0..64),
        0..40,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (WorkflowSpecId::from_bytes(k), v))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn round_trips(entries in entries_strategy(), probe in any::<[u8; 16]>()) {
        let mut files = vec![write_v3(&entries), write_v1(&entries)];
        if cfg!(feature = "store-v2") {
            files.push(write_v2(&entries));
        }
        #[cfg(feature = "store-zstd")]
        for dictionary in [Some(&b"dictionary"[..]), None] {
            let file = write_v4(&entries, dictionary);
            let store = StoreView::parse(&file).unwrap();
            prop_assert_eq!(store.len(), entries.len());
            for (id, data) in &entries {
                let frame = ZstdFrame { frame: data, len: 3 * data.len() };
                prop_assert_eq!(store.get_stored(id), Ok(Some(Stored::Zstd(frame))));
            }
            let probe = WorkflowSpecId::from_bytes(probe);
            if !entries.iter().any(|(i, _)| *i == probe) {
                prop_assert_eq!(store.get_stored(&probe), Ok(None));
            }
            prop_assert!(store.verify().is_ok());
        }
        for file in files {
            let store = StoreView::parse(&file).unwrap();
            prop_assert_eq!(store.len(), entries.len());
            for (id, data) in &entries {
                prop_assert_eq!(store.get(id), Some(&data[..]));
            }
            let probe = WorkflowSpecId::from_bytes(probe);
            let expected = entries.iter().find(|(i, _)| *i == probe).map(|(_, d)| &d[..]);
            prop_assert_eq!(store.get(&probe), expected);
            let mut ids: Vec<_> = entries.iter().map(|(id, _)| *id).collect();
            ids.push(probe);
            let many: Vec<_> = store.get_many(&ids).collect();
            let one: Vec<_> = ids.iter().map(|id| store.try_get(id)).collect();
            prop_assert_eq!(many, one);
            prop_assert!(store.verify().is_ok());
        }
    }
}

/// Workflows of every length from 0 to 130 bytes: their frames land at
/// every offset within a cache line.
fn every_offset() -> Vec<(WorkflowSpecId, Vec<u8>)> {
    (0..=130_u8)
        .map(|n| (id(n), vec![n; usize::from(n)]))
        .collect()
}

/// The file with its header's and trailer's flags set to `flags` (the
/// trailer's checksum made good again).
fn with_flags(mut file: Vec<u8>, flags: u32) -> Vec<u8> {
    let h = layout::FRAME + 12;
    file[h..h + 4].copy_from_slice(&flags.to_le_bytes());
    let t = file.len() - layout::TRAILER_SIZE + layout::FRAME;
    file[t + layout::trailer::FLAGS..t + layout::trailer::FLAGS + 4]
        .copy_from_slice(&flags.to_le_bytes());
    let sum = layout::checksum(&file[t..t + layout::trailer::TRAILER_CHECKSUM]);
    file[t + layout::trailer::TRAILER_CHECKSUM..t + layout::TRAILER_LEN]
        .copy_from_slice(&sum.to_le_bytes());
    file
}

#[test]
fn aligned_stores_keep_each_frame_and_its_first_bytes_in_one_line() {
    let entries = every_offset();
    let file = write_v3(&entries);
    let store = StoreView::parse(&file).unwrap();
    assert!(store.is_aligned());
    let mut pads = 0;
    for (at, frame_id, _) in frames(&file) {
        if frame_id == layout::PAD_ID {
            pads += 1;
        } else if entries.iter().any(|(i, _)| *i.as_bytes() == frame_id) {
            assert!(
                at % 64 <= 32,
                "a workflow frame {} bytes into its line",
                at % 64
            );
        }
    }
    // Every line offset past 32 came up, and each got its padding.
    assert!(pads > 30, "{pads} padding frames");
    for (id, data) in &entries {
        assert_eq!(store.get(id), Some(&data[..]));
    }
    let ids: Vec<_> = entries.iter().map(|(id, _)| *id).collect();
    let many: Vec<_> = store.get_many(&ids).collect();
    assert!(many
        .iter()
        .zip(&entries)
        .all(|(got, (_, data))| *got == Ok(Some(&data[..]))));
    let walked: Vec<_> = store.entries().map(Result::unwrap).collect();
    assert_eq!(walked.len(), entries.len());
    assert!(walked
        .iter()
        .zip(&entries)
        .all(|(a, b)| a.0 == b.0 && a.1 == &b.1[..]));
    store.verify().unwrap();
}

#[test]
fn unpadded_stores_read_as_before() {
    let entries = every_offset();
    let mut sink = VecSink(Vec::new());
    let mut writer =
        StoreWriter::new_unpadded(&mut sink, Growing(vec![IndexSlot::EMPTY; 2])).unwrap();
    for (id, data) in &entries {
        writer.add(*id, data).unwrap();
    }
    writer.finish().unwrap();
    let file = sink.0;
    let store = StoreView::parse(&file).unwrap();
    assert!(!store.is_aligned());
    assert!(frames(&file).iter().all(|(_, id, _)| *id != layout::PAD_ID));
    for (id, data) in &entries {
        assert_eq!(store.get(id), Some(&data[..]));
    }
    assert_eq!(store.entries().count(), entries.len());
    store.verify().unwrap();
    // Smaller than the aligned store by its padding.
    assert!(file.len() < write_v3(&entries).len());
}

#[test]
fn padding_is_skipped_only_where_the_store_says_it_has_some() {
    let entries = every_offset();
    let file = write_v3(&entries);
    // The same bytes without the flag: the first padding frame is a
    // reserved id where a workflow should be.
    let unflagged = with_flags(file.clone(), 0);
    let store = StoreView::parse(&unflagged).unwrap();
    let first_pad = frames(&file)
        .into_iter()
        .find(|(_, id, _)| *id == layout::PAD_ID)
        .unwrap()
        .0;
    assert_eq!(
        store.entries().find_map(Result::err),
        Some(StoreError::ReservedId {
            offset: first_pad as u64
        })
    );
    assert!(store.verify().is_err());
    // Lookups go through the index, which the padding does not touch.
    for (id, data) in &entries {
        assert_eq!(store.get(id), Some(&data[..]));
    }
}

#[test]
fn a_padding_frame_that_holds_anything_is_an_error() {
    let entries = every_offset();
    let mut file = write_v3(&entries);
    // A padding frame with data (one from a line offset of 33 to 39).
    let (at, len) = frames(&file)
        .into_iter()
        .find(|(_, id, data)| *id == layout::PAD_ID && !data.is_empty())
        .map(|(at, _, data)| (at, data.len()))
        .unwrap();
    assert!(len < 8);
    file[at + layout::FRAME] = 1;
    let store = StoreView::parse(&file).unwrap();
    assert_eq!(
        store.entries().find_map(Result::err),
        Some(StoreError::ReservedId { offset: at as u64 })
    );
    assert!(store.verify().is_err());
}

#[test]
fn the_padding_rule_lands_every_frame_early_in_its_line() {
    for offset in 0..4096_u64 {
        match layout::pad_before(offset) {
            None => assert!(offset % 64 <= layout::ALIGNED_AT_MOST),
            Some(len) => {
                assert!(offset % 64 > layout::ALIGNED_AT_MOST);
                assert!(len < 8);
                let moved = offset + layout::FRAME as u64 + len;
                assert!(moved % 64 <= layout::ALIGNED_AT_MOST, "{offset} -> {moved}");
            }
        }
    }
}
