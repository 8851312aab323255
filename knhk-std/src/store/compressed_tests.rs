//! Compressed stores (format version 4) over real files: round trips for
//! every option and read form, conversions both ways, older files read
//! through the same calls, hostile frames and dictionaries, and every
//! single-byte change and truncation of a small compressed store.
//!
//! knhk-core's tests check the format over bytes with stand-in frames; these
//! check what only knhk-std does: compress, train, decompress. Hostile
//! stores are built by hand with knhk-core's writer, which records whatever
//! length and frame it is given.

use std::borrow::Cow;
use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use knhk_core::arena::Arena;
use knhk_core::store::{layout, StoreView, StoreWriter};
use knhk_core::WorkflowSpecId;
use proptest::prelude::*;
use zstd::zstd_safe::CParameter;

use super::*;
use crate::arena::{ArenaAllocator, GrowingArena, HeapArena};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("knhk-zstd-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn id(n: u8) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes([n; 16])
}

/// A workflow specification in the shape of the generated YAWL Turtle:
/// similar from one to the next (what a dictionary is for), and never the
/// same twice.
fn spec(n: usize) -> Vec<u8> {
    let mut text = format!(
        "@prefix yawl: <http://www.yawlfoundation.org/yawlschema#> .\n\
         <urn:knhk:net:{n}> a yawl:Net ; rdfs:label \"order flow {n}\" .\n"
    );
    for t in 0..3 + n % 7 {
        text += &format!(
            "<urn:knhk:net:{n}> yawl:hasTask <urn:knhk:task:{n}-{t}> .\n\
             <urn:knhk:task:{n}-{t}> a yawl:Task ; yawl:join yawl:{} ; yawl:split yawl:{} ; \
             rdfs:label \"step {t} of {n}\" .\n",
            ["XOR", "AND", "OR"][t % 3],
            ["AND", "XOR", "OR"][(n + t) % 3],
        );
    }
    text.into_bytes()
}

fn specs(count: usize) -> Vec<(WorkflowSpecId, Vec<u8>)> {
    (0..count)
        .map(|n| {
            let mut bytes = [0x5A; 16];
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
            (WorkflowSpecId::from_bytes(bytes), spec(n))
        })
        .collect()
}

/// Options that train a small dictionary early: after the first few
/// workflows, so that most are compressed mid-stream with it.
fn small_dictionary() -> Compression {
    Compression {
        level: 3,
        dictionary: true,
        dictionary_size: 1024,
        sample_bytes: 8 << 10,
    }
}

/// Writes `workflows` to `path`: uncompressed (version 3) without
/// options, compressed (version 4) with them.
fn write(
    path: &Path,
    workflows: &[(WorkflowSpecId, Vec<u8>)],
    compression: Option<Compression>,
) -> MmapWorkflowStore {
    let mut writer = match compression {
        Some(compression) => WorkflowStoreWriter::create_compressed(path, compression),
        None => WorkflowStoreWriter::create(path),
    }
    .unwrap();
    for (id, data) in workflows {
        writer.add(*id, data).unwrap();
    }
    writer.finish().unwrap();
    MmapWorkflowStore::new(path).unwrap()
}

/// A version-1 file (the design document's entry list), written by hand.
fn write_v1(path: &Path, workflows: &[(WorkflowSpecId, Vec<u8>)]) -> MmapWorkflowStore {
    let mut bytes = Vec::new();
    for (id, data) in workflows {
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
        bytes.extend_from_slice(data);
    }
    fs::write(path, bytes).unwrap();
    MmapWorkflowStore::new(path).unwrap()
}

/// Rewrites every workflow of `from` into a new store at `to`, as
/// `knhk-store upgrade` does.
fn convert(
    from: &MmapWorkflowStore,
    to: &Path,
    compression: Option<Compression>,
) -> MmapWorkflowStore {
    let mut writer = match compression {
        Some(compression) => WorkflowStoreWriter::create_compressed(to, compression),
        None => WorkflowStoreWriter::create(to),
    }
    .unwrap();
    let mut data = Vec::new();
    for id in from.list_workflows() {
        assert!(from.read_into(&id, &mut data).unwrap());
        writer.add(id, &data).unwrap();
    }
    writer.finish().unwrap();
    MmapWorkflowStore::new(to).unwrap()
}

/// An id that is not in `workflows`.
fn absent(workflows: &[(WorkflowSpecId, Vec<u8>)]) -> WorkflowSpecId {
    (0..=u8::MAX)
        .map(|n| WorkflowSpecId::from_bytes([n ^ 0xA5; 16]))
        .find(|probe| workflows.iter().all(|(id, _)| id != probe))
        .unwrap()
}

/// Every read form gives back exactly `workflows`, in file order, and the
/// store verifies.
fn assert_reads_back(store: &MmapWorkflowStore, workflows: &[(WorkflowSpecId, Vec<u8>)]) {
    assert_eq!(store.len(), workflows.len());
    let ids: Vec<_> = workflows.iter().map(|(id, _)| *id).collect();
    assert_eq!(store.list_workflows(), ids, "file order");
    let total: usize = workflows.iter().map(|(_, data)| data.len()).sum();
    let mut out = vec![0xEE; 3]; // cleared by every read
    let growing = GrowingArena::new();
    // The fixed arenas round each allocation up to a word, and the buffer's
    // start to one.
    let room = workflows
        .iter()
        .map(|(_, d)| d.len().next_multiple_of(8))
        .sum::<usize>()
        + 8;
    let mut buffer = vec![MaybeUninit::uninit(); room];
    let core = Arena::new(&mut buffer);
    let allocator = ArenaAllocator::growing(GrowingArena::new());
    let heap = HeapArena::with_capacity(room).unwrap();
    for (id, data) in workflows {
        let data = &data[..];
        assert_eq!(store.get_workflow(id).as_deref(), Some(data));
        let read = store.read(id).unwrap().unwrap();
        assert_eq!(
            matches!(read, Cow::Owned(_)),
            store.is_compressed(),
            "borrowed from the map unless decompressed"
        );
        assert_eq!(&*read, data);
        assert!(store.read_into(id, &mut out).unwrap());
        assert_eq!(out, data);
        assert_eq!(store.read_in(id, &growing).unwrap().as_deref(), Some(data));
        assert_eq!(store.read_in(id, &core).unwrap().as_deref(), Some(data));
        assert_eq!(
            store.read_in(id, &allocator).unwrap().as_deref(),
            Some(data)
        );
        assert_eq!(store.read_in(id, &heap).unwrap().as_deref(), Some(data));
        if let Ok(text) = std::str::from_utf8(data) {
            assert_eq!(store.get_workflow_str(id).as_deref(), Some(text));
        }
    }
    let missing = absent(workflows);
    assert!(store.get_workflow(&missing).is_none());
    assert!(store.read(&missing).unwrap().is_none());
    assert!(!store.read_into(&missing, &mut out).unwrap());
    assert!(out.is_empty());
    assert!(store.read_in(&missing, &growing).unwrap().is_none());
    store.verify().unwrap();
    if let Some(info) = store.compression() {
        let largest = workflows.iter().map(|(_, data)| data.len()).max();
        assert_eq!(info.largest(), largest.unwrap_or(0) as u64);
        assert_eq!(info.total(), total as u64);
    }
}

fn workflow() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..300),
        (0..500_usize).prop_map(spec),
        // Larger and repetitive: a short unit many times over.
        (prop::collection::vec(any::<u8>(), 1..8), 1..1500_usize)
            .prop_map(|(unit, times)| unit.repeat(times)),
    ]
}

fn workflows() -> impl Strategy<Value = Vec<(WorkflowSpecId, Vec<u8>)>> {
    let id =
        any::<[u8; 16]>().prop_filter("not a reserved id", |id| !layout::RESERVED_IDS.contains(id));
    prop::collection::btree_map(id, workflow(), 0..24).prop_map(|map| {
        map.into_iter()
            .map(|(id, data)| (WorkflowSpecId::from_bytes(id), data))
            .collect()
    })
}

/// No compression, or compression with or without a dictionary, at a few
/// levels, with dictionaries trained at the end or mid-stream (a small
/// `sample_bytes`), or not at all (too few workflows to train on).
fn options() -> impl Strategy<Value = Option<Compression>> {
    let compressed = (
        prop::sample::select(vec![-1, 1, 3, 9]),
        any::<bool>(),
        prop::sample::select(vec![256, 1024, 16 << 10]),
        prop::sample::select(vec![0, 600, 4 << 10, 1 << 20]),
    )
        .prop_map(|(level, dictionary, dictionary_size, sample_bytes)| {
            Some(Compression {
                level,
                dictionary,
                dictionary_size,
                sample_bytes,
            })
        });
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Compression::default())),
        4 => compressed,
    ]
}

static CASE: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_option_round_trips_through_every_read_form(
        workflows in workflows(),
        compression in options(),
    ) {
        let dir = temp_dir(&format!("prop-{}", CASE.fetch_add(1, Ordering::Relaxed)));
        let store = write(&dir.join("w.store"), &workflows, compression);
        let version = if compression.is_some() { Version::V4 } else { Version::V3 };
        prop_assert_eq!(store.version(), version);
        prop_assert_eq!(store.is_compressed(), compression.is_some());
        if let (Some(options), Some(info)) = (compression, store.compression()) {
            prop_assert_eq!(info.level(), i64::from(options.level));
            if !options.dictionary || workflows.len() < 8 {
                prop_assert!(info.dictionary().is_none(), "nothing to train on");
            }
            if let Some(dictionary) = info.dictionary() {
                prop_assert!(dictionary.len() <= options.dictionary_size);
            }
        }
        assert_reads_back(&store, &workflows);
        // The same workflows as a version-1 list read back the same way.
        assert_reads_back(&write_v1(&dir.join("w.v1"), &workflows), &workflows);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_dictionary_trained_mid_stream_serves_every_workflow() {
    let dir = temp_dir("mid-stream");
    let workflows = specs(60);
    let store = write(
        &dir.join("dict.store"),
        &workflows,
        Some(small_dictionary()),
    );
    let info = *store.compression().unwrap();
    let dictionary = info.dictionary().expect("trained on the first workflows");
    assert!(!dictionary.is_empty() && dictionary.len() <= 1024);
    assert_reads_back(&store, &workflows);
    // The dictionary earns its place: similar specs compress better with it.
    let mut plain = small_dictionary();
    plain.dictionary = false;
    let without = write(&dir.join("plain.store"), &workflows, Some(plain));
    assert!(without.compression().unwrap().dictionary().is_none());
    assert_reads_back(&without, &workflows);
    assert!(
        store.size() < without.size(),
        "{} bytes with a dictionary, {} without",
        store.size(),
        without.size()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn too_few_workflows_to_train_on_are_compressed_without_a_dictionary() {
    let dir = temp_dir("few");
    for count in [0, 1, 7] {
        let workflows = specs(count);
        let store = write(&dir.join("few.store"), &workflows, Some(small_dictionary()));
        assert_eq!(store.version(), Version::V4);
        assert!(store.compression().unwrap().dictionary().is_none());
        assert_reads_back(&store, &workflows);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn conversions_both_ways_keep_every_workflow() {
    let dir = temp_dir("convert");
    let mut workflows = specs(40);
    workflows.push((id(1), Vec::new()));
    workflows.push((id(2), vec![0xFF, 0x00, 0x7F]));
    workflows.push((id(3), b"approve ".repeat(4000)));
    let v3 = write(&dir.join("a.v3"), &workflows, None);
    let v4 = convert(&v3, &dir.join("b.v4"), Some(small_dictionary()));
    assert!(v4.compression().unwrap().dictionary().is_some());
    assert_reads_back(&v4, &workflows);
    let back = convert(&v4, &dir.join("c.v3"), None);
    assert_eq!(back.version(), Version::V3);
    assert_reads_back(&back, &workflows);
    assert_eq!(
        fs::read(dir.join("a.v3")).unwrap(),
        fs::read(dir.join("c.v3")).unwrap(),
        "the same workflows in the same order: the same file"
    );
    let mut no_dictionary = small_dictionary();
    no_dictionary.dictionary = false;
    let again = convert(&v4, &dir.join("d.v4"), Some(no_dictionary));
    assert!(again.compression().unwrap().dictionary().is_none());
    assert_reads_back(&again, &workflows);
    // Older files convert the same way.
    let v1 = write_v1(&dir.join("e.v1"), &workflows);
    assert_reads_back(
        &convert(&v1, &dir.join("f.v4"), Some(Compression::default())),
        &workflows,
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_2_files_still_read_through_every_form() {
    // The fuzz corpus's version-2 seed, as knhk wrote them before the
    // compact index (four workflows).
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/store/v2-four");
    let store = MmapWorkflowStore::new(&seed).unwrap();
    assert_eq!(store.version(), Version::V2);
    let workflows: Vec<_> = store
        .list_workflows()
        .into_iter()
        .map(|id| (id, store.get(&id).unwrap().to_vec()))
        .collect();
    assert_eq!(workflows.len(), 4);
    assert_reads_back(&store, &workflows);
    let dir = temp_dir("v2");
    assert_reads_back(
        &convert(
            &store,
            &dir.join("from-v2.v4"),
            Some(Compression::default()),
        ),
        &workflows,
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn borrowing_lookups_refuse_a_compressed_store() {
    let dir = temp_dir("refuse");
    let workflows = specs(12);
    let store = write(&dir.join("w.store"), &workflows, Some(small_dictionary()));
    let ids: Vec<_> = workflows.iter().map(|(id, _)| *id).collect();
    for id in &ids {
        assert_eq!(store.try_get(id), Err(StoreError::Compressed));
        assert_eq!(store.get(id), None);
        assert!(matches!(store.get_stored(id), Ok(Some(Stored::Zstd(_)))));
    }
    let mut batch = ids.clone();
    batch.push(absent(&workflows));
    let many: Vec<_> = store.get_many(&batch).collect();
    assert_eq!(many, vec![Err(StoreError::Compressed); batch.len()]);
    let entries: Vec<_> = store.entries().collect();
    assert_eq!(entries, [Err(StoreError::Compressed)]);
    let stored: Vec<_> = store
        .stored_entries()
        .map(|entry| {
            let (id, stored) = entry.unwrap();
            assert!(matches!(stored, Stored::Zstd(_)));
            (id, stored.len())
        })
        .collect();
    let expected: Vec<_> = workflows.iter().map(|(id, d)| (*id, d.len())).collect();
    assert_eq!(stored, expected);
    fs::remove_dir_all(&dir).unwrap();
}

/// A zstd frame as the store's writer makes one: no content size, no
/// checksum, no dictionary id.
fn frame(data: &[u8], dictionary: Option<&[u8]>) -> Vec<u8> {
    let mut compressor = match dictionary {
        Some(dictionary) => zstd::bulk::Compressor::with_dictionary(3, dictionary),
        None => zstd::bulk::Compressor::new(3),
    }
    .unwrap();
    compressor
        .set_parameter(CParameter::ContentSizeFlag(false))
        .unwrap();
    compressor
        .set_parameter(CParameter::ChecksumFlag(false))
        .unwrap();
    compressor
        .set_parameter(CParameter::DictIdFlag(false))
        .unwrap();
    compressor.compress(data).unwrap()
}

/// A compressed store built by hand: each workflow's recorded length and
/// frame as given (knhk-core's writer does not check that they agree).
fn hand_built(dictionary: Option<&[u8]>, entries: &[(WorkflowSpecId, usize, &[u8])]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut writer =
        StoreWriter::new_compressed(IoSink(&mut file), GrowingIndex::new(), dictionary, 3).unwrap();
    for &(id, len, frame) in entries {
        writer.add_compressed(id, len, frame).unwrap();
    }
    writer.finish().unwrap();
    file
}

/// What a failed read of `id` says about the frame, checking that it
/// names the workflow.
fn decompress_error<T: std::fmt::Debug>(
    id: &WorkflowSpecId,
    result: Result<T, StorageError>,
) -> DecompressError {
    match result {
        Err(StorageError::Decompress {
            id: Some(named),
            source,
            ..
        }) if named == *id => source,
        other => panic!("expected a decompression error for {id}, got {other:?}"),
    }
}

/// Every read form refuses `id` with `expected`, and the lookups that
/// hide errors find nothing.
fn assert_refused(store: &MmapWorkflowStore, id: &WorkflowSpecId, expected: &DecompressError) {
    let mut out = b"left over".to_vec();
    assert_eq!(
        &decompress_error(id, store.read_into(id, &mut out)),
        expected
    );
    assert!(out.is_empty(), "a failed read leaves no partial workflow");
    assert_eq!(&decompress_error(id, store.read(id)), expected);
    let growing = GrowingArena::new();
    assert_eq!(&decompress_error(id, store.read_in(id, &growing)), expected);
    let allocator = ArenaAllocator::growing(GrowingArena::new());
    assert_eq!(
        &decompress_error(id, store.read_in(id, &allocator)),
        expected
    );
    assert!(store.get_workflow(id).is_none());
    assert!(store.get_workflow_str(id).is_none());
}

#[test]
fn frames_that_disagree_with_their_recorded_length_are_typed_errors() {
    let dir = temp_dir("hostile-frames");
    let path = dir.join("hostile.store");
    let data = spec(3);
    let good = frame(&data, None);
    // `bulk::compress` records the content size in the frame: zstd refuses
    // a frame that says it is longer than the room it is given up front.
    let sized = zstd::bulk::compress(&data, 3).unwrap();
    let file = hand_built(
        None,
        &[
            (id(1), 100, &good),
            (id(2), data.len() + 10, &good),
            (id(3), 24, b"this is not a zstd frame"),
            (id(4), data.len(), &good),
            (id(5), data.len() - 1, &sized),
            (id(6), 5, b""),
            (id(7), 0, &good),
        ],
    );
    fs::write(&path, file).unwrap();
    let store = MmapWorkflowStore::new(&path).unwrap();
    assert_refused(&store, &id(1), &DecompressError::TooLong { recorded: 100 });
    let too_short = DecompressError::TooShort {
        recorded: data.len() + 10,
        actual: data.len(),
    };
    assert_refused(&store, &id(2), &too_short);
    // Not a frame; no frame at all (too short for any length but 0).
    for garbage in [id(3), id(6)] {
        let mut out = Vec::new();
        let error = decompress_error(&garbage, store.read_into(&garbage, &mut out));
        assert!(matches!(error, DecompressError::Frame { .. }), "{error:?}");
        assert_refused(&store, &garbage, &error);
    }
    let recorded = data.len() - 1;
    assert_refused(&store, &id(5), &DecompressError::TooLong { recorded });
    assert_refused(&store, &id(7), &DecompressError::TooLong { recorded: 0 });
    // The one honest frame still reads, and verify names the first bad one.
    assert_eq!(store.get_workflow(&id(4)).as_deref(), Some(&data[..]));
    let error = decompress_error(&id(1), store.verify());
    assert_eq!(error, DecompressError::TooLong { recorded: 100 });
    assert!(error.to_string().contains("decompression bomb"), "{error}");
    fs::remove_dir_all(&dir).unwrap();
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros each: 4 bytes
/// a block, so a 32 KiB frame claims 1 GiB. Written by hand from RFC 8878
/// (compressing a gigabyte would take the test longer than decompressing
/// it should).
fn zeros_frame(blocks: usize) -> Vec<u8> {
    const BLOCK: u32 = 128 << 10;
    // Magic; a descriptor with no content size, checksum or dictionary id;
    // a 128 KiB window (exponent 7: 2^(10+7)).
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3];
    for n in 0..blocks {
        let last = u32::from(n + 1 == blocks);
        let header = (BLOCK << 3) | (1 << 1) | last; // RLE, 128 KiB
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0); // the byte repeated
    }
    frame
}

#[test]
fn a_decompression_bomb_stops_at_the_recorded_length() {
    // The hand-made frame is what it claims to be.
    let small = zeros_frame(4);
    assert_eq!(
        zstd::bulk::decompress(&small, 1 << 20).unwrap(),
        vec![0; 4 << 17]
    );
    let bomb = zeros_frame(8192); // 1 GiB of zeros
    assert_eq!(bomb.len(), 6 + 4 * 8192);
    let dir = temp_dir("bomb");
    let path = dir.join("bomb.store");
    let file = hand_built(None, &[(id(1), 4096, &bomb), (id(2), 4 << 17, &small)]);
    fs::write(&path, file).unwrap();
    let store = MmapWorkflowStore::new(&path).unwrap();
    let expected = DecompressError::TooLong { recorded: 4096 };
    assert_refused(&store, &id(1), &expected);
    // No more memory than the recorded length: the Vec was sized to it,
    // and an arena with exactly that much room is enough to be refused by
    // the frame rather than by the arena.
    let mut out = Vec::new();
    assert_eq!(
        decompress_error(&id(1), store.read_into(&id(1), &mut out)),
        expected
    );
    assert!(
        out.capacity() < 1 << 20,
        "{} bytes set aside",
        out.capacity()
    );
    let mut buffer = vec![MaybeUninit::uninit(); 4096];
    let exact = Arena::new(&mut buffer);
    assert_eq!(
        decompress_error(&id(1), store.read_in(&id(1), &exact)),
        expected
    );
    assert!(matches!(
        store.verify(),
        Err(StorageError::Decompress {
            source: DecompressError::TooLong { recorded: 4096 },
            ..
        })
    ));
    // The same frames, honestly recorded, read back.
    assert_eq!(
        store.get_workflow(&id(2)).as_deref(),
        Some(&vec![0; 4 << 17][..])
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_recorded_length_the_frame_cannot_reach_is_refused_before_any_memory_is_set_aside() {
    // A tiny frame that claims a gigabyte: a reader that trusted the
    // recorded length would set a gigabyte aside (and zero it) per read.
    let dir = temp_dir("claim");
    let path = dir.join("claim.store");
    let small = frame(b"approve", None);
    let claim = 1 << 30;
    fs::write(&path, hand_built(None, &[(id(1), claim, &small)])).unwrap();
    let store = MmapWorkflowStore::new(&path).unwrap();
    let mut out = Vec::new();
    let error = decompress_error(&id(1), store.read_into(&id(1), &mut out));
    assert!(matches!(error, DecompressError::Frame { .. }), "{error:?}");
    assert!(
        out.capacity() < 1 << 20,
        "{} bytes set aside",
        out.capacity()
    );
    assert_refused(&store, &id(1), &error);
    // An arena far smaller than the claim is not asked for it.
    let mut buffer = vec![MaybeUninit::uninit(); 64];
    let core = Arena::new(&mut buffer);
    assert_eq!(
        decompress_error(&id(1), store.read_in(&id(1), &core)),
        error
    );
    assert!(store.verify().is_err());
    fs::remove_dir_all(&dir).unwrap();
}

/// A dictionary trained on generated specs; `seed` varies the specs.
fn trained_dictionary(seed: usize) -> Vec<u8> {
    let samples: Vec<_> = (0..64).map(|n| spec(seed * 1000 + n)).collect();
    zstd::dict::from_samples(&samples, 1024).unwrap()
}

#[test]
fn frames_made_with_another_dictionary_are_never_read_as_the_workflow() {
    let dir = temp_dir("other-dictionary");
    let path = dir.join("w.store");
    let (ours, theirs) = (trained_dictionary(1), trained_dictionary(2));
    assert_ne!(ours, theirs);
    let data = spec(1005);
    let with_ours = frame(&data, Some(&ours));
    let with_theirs = frame(&data, Some(&theirs));
    let without = frame(&data, None);
    // Per store: each frame, and whether it must read back as `data`
    // (`Some(false)`: an error or other bytes, never `data`).
    type Frames<'a> = [(&'a [u8], Option<bool>); 3];
    let stores: [(Option<&[u8]>, Frames<'_>); 2] = [
        (
            Some(&ours),
            [
                (&with_ours, Some(true)),
                (&with_theirs, Some(false)),
                // Valid, but decoded with the dictionary's starting state:
                // no promise either way.
                (&without, None),
            ],
        ),
        (
            None,
            [
                (&without, Some(true)),
                (&with_ours, Some(false)),
                (&with_theirs, Some(false)),
            ],
        ),
    ];
    for (dictionary, frames) in stores {
        let entries: Vec<_> = (0..frames.len())
            .map(|n| (id(n as u8 + 1), data.len(), frames[n].0))
            .collect();
        fs::write(&path, hand_built(dictionary, &entries)).unwrap();
        let store = MmapWorkflowStore::new(&path).unwrap();
        for ((id, _, _), (_, honest)) in entries.iter().zip(frames) {
            let mut out = Vec::new();
            let read = match store.read_into(id, &mut out) {
                Ok(found) => found.then_some(out),
                Err(StorageError::Decompress {
                    id: Some(named), ..
                }) if named == *id => None,
                Err(other) => panic!("{id}: {other}"),
            };
            if let Some(honest) = honest {
                assert_eq!(read.as_deref() == Some(&data[..]), honest, "{id}");
            }
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_dictionary_is_refused_at_open() {
    let dir = temp_dir("dictionary");
    let path = dir.join("w.store");
    let store = write(&path, &specs(40), Some(small_dictionary()));
    let dictionary = store.compression().unwrap().dictionary().unwrap().to_vec();
    drop(store);
    let file = fs::read(&path).unwrap();
    // The dictionary's data comes right after the header entry's and its
    // own frame.
    let start = layout::HEADER_SIZE + layout::FRAME;
    assert_eq!(&file[start..start + dictionary.len()], &dictionary[..]);
    for at in [0, 7, dictionary.len() / 2, dictionary.len() - 1] {
        let mut bad = file.clone();
        bad[start + at] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        assert!(
            matches!(
                MmapWorkflowStore::new(&path),
                Err(StorageError::Corrupt {
                    source: StoreError::DictionaryChecksum { .. },
                    ..
                })
            ),
            "byte {at} of the dictionary"
        );
    }
    // Bytes whose checksum matches but that zstd cannot use: plain text
    // (no dictionary magic), and a real dictionary cut after its header.
    let good = frame(b"approve", None);
    let not_zstd = b"plain text in the dictionary's place".to_vec();
    for dictionary in [not_zstd, dictionary[..12].to_vec()] {
        fs::write(&path, hand_built(Some(&dictionary), &[(id(1), 7, &good)])).unwrap();
        match MmapWorkflowStore::new(&path) {
            Err(StorageError::Decompress {
                id: None,
                source: DecompressError::Dictionary,
                ..
            }) => {}
            other => panic!("{} dictionary bytes: {other:?}", dictionary.len()),
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Opens `path` and reads everything every way; whether all of it came
/// back as `workflows` and verified. Never panics on a damaged file.
fn exercise(path: &Path, workflows: &[(WorkflowSpecId, Vec<u8>)]) -> Option<Version> {
    let Ok(store) = MmapWorkflowStore::new(path) else {
        return None;
    };
    let mut all_read = true;
    let mut out = Vec::new();
    let mut growing = GrowingArena::new();
    for (id, data) in workflows {
        let read = store.read_into(id, &mut out);
        all_read &= matches!(read, Ok(true)) && out == *data;
        let arena = store.read_in(id, &growing).map(|o| o.map(|b| b.to_vec()));
        // Both forms agree on what they found.
        match (&read, arena) {
            (Ok(true), Ok(Some(bytes))) => assert_eq!(bytes, out),
            (Ok(false), Ok(None)) | (Err(_), Err(_)) => {}
            (read, arena) => panic!("read_into {read:?}, read_in {arena:?}"),
        }
        growing.reset();
    }
    let _ = (store.list_workflows(), store.stored_entries().count());
    let verified = store.verify().is_ok();
    (all_read && verified && store.len() == workflows.len()).then(|| store.version())
}

/// Every single-byte change (two ways) and every truncation of `file`:
/// never a panic, no change unnoticed, no truncation read as the store.
/// Dictionary bytes are stepped through with `stride`.
fn damage(dir: &Path, file: &[u8], workflows: &[(WorkflowSpecId, Vec<u8>)], stride: usize) {
    let path = dir.join("damaged.store");
    fs::write(&path, file).unwrap();
    assert_eq!(exercise(&path, workflows), Some(Version::V4), "intact");
    let view = StoreView::parse(file).unwrap();
    let dictionary = view.compression().unwrap().dictionary().map_or(0..0, |d| {
        let start = d.as_ptr() as usize - file.as_ptr() as usize;
        start..start + d.len()
    });
    let mut at = 0;
    while at < file.len() {
        for mask in [0x01, 0x80] {
            let mut bad = file.to_vec();
            bad[at] ^= mask;
            fs::write(&path, &bad).unwrap();
            assert_eq!(
                exercise(&path, workflows),
                None,
                "byte {at} ^ {mask:#04x} went unnoticed"
            );
        }
        at += if dictionary.contains(&at) { stride } else { 1 };
    }
    for len in 0..file.len() {
        fs::write(&path, &file[..len]).unwrap();
        // A cut at a frame boundary is a valid version-1 list of the
        // frames before it; never the compressed store.
        assert_eq!(exercise(&path, workflows), None, "cut at {len}");
        if let Ok(store) = MmapWorkflowStore::new(&path) {
            assert_eq!(store.version(), Version::V1, "cut at {len}");
        }
    }
}

#[test]
fn every_byte_change_and_truncation_of_a_small_compressed_store_is_caught() {
    let dir = temp_dir("damage");
    let mut workflows: Vec<_> = (0..5_u8)
        .map(|n| {
            (
                id(n + 1),
                format!("task {n}: approve the order").into_bytes(),
            )
        })
        .collect();
    workflows.push((id(9), Vec::new()));
    let plain = Compression {
        dictionary: false,
        ..Compression::default()
    };
    write(&dir.join("small.store"), &workflows, Some(plain));
    let file = fs::read(dir.join("small.store")).unwrap();
    assert!(file.len() < 1024, "{} bytes", file.len());
    damage(&dir, &file, &workflows, 1);

    // With a (small) dictionary: its bytes are stepped through.
    let workflows: Vec<_> = (0..8_u8)
        .map(|n| {
            (
                id(n + 1),
                format!("<urn:knhk:task:{n}> a yawl:Task ; yawl:join yawl:XOR .").into_bytes(),
            )
        })
        .collect();
    let mut tiny = small_dictionary();
    tiny.dictionary_size = 256;
    let store = write(&dir.join("dict.store"), &workflows, Some(tiny));
    assert!(store.compression().unwrap().dictionary().is_some());
    drop(store);
    let file = fs::read(dir.join("dict.store")).unwrap();
    damage(&dir, &file, &workflows, 7);
    fs::remove_dir_all(&dir).unwrap();
}
