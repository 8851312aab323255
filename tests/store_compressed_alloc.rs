//! Reading compressed workflows makes no heap allocation per lookup in the
//! arena form, and a hostile recorded length costs no memory: counted by
//! knhk's counting allocator over the system one, for the test's own
//! thread only (the harness's other threads allocate as they like).
//!
//! The count sees Rust's heap. libzstd allocates with C's `malloc`, which
//! it does not see: its decompression context is made once per thread (on
//! the thread's first read, which the warm-up does), and a one-shot
//! decompression into the caller's buffer allocates nothing more.

use std::path::{Path, PathBuf};

use knhk_core::arena::Arena;
use knhk_core::store::StoreWriter;
use knhk_core::WorkflowSpecId;
use knhk_tests::counting::ThisThreadCounting;
use knhk_workflow_engine::arena::{ArenaAllocator, GrowingArena};
use knhk_workflow_engine::store::{
    Compression, DecompressError, GrowingIndex, IoSink, MmapWorkflowStore, StorageError,
    WorkflowStoreWriter,
};

#[global_allocator]
static ALLOCATOR: ThisThreadCounting = knhk_tests::counting::allocator();

/// Runs `f`; returns its result and the heap allocations and bytes this
/// thread made meanwhile.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    knhk_tests::counting::counted(&ALLOCATOR, f)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("knhk-zstd-alloc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn id(n: usize) -> WorkflowSpecId {
    let mut bytes = [0x3C; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
    WorkflowSpecId::from_bytes(bytes)
}

/// 50 similar specifications, compressed with or without a dictionary.
fn write_specs(path: &Path, dictionary: bool) -> Vec<WorkflowSpecId> {
    let mut compression = Compression::default();
    compression.dictionary = dictionary;
    compression.dictionary_size = 2048;
    let mut writer = WorkflowStoreWriter::create_compressed(path, compression).unwrap();
    let ids: Vec<_> = (0..50).map(id).collect();
    for (n, id) in ids.iter().enumerate() {
        let mut spec = format!("<urn:knhk:net:{n}> a yawl:Net ; rdfs:label \"flow {n}\" .\n");
        for t in 0..2 + n % 9 {
            spec += &format!(
                "<urn:knhk:task:{n}-{t}> a yawl:Task ; yawl:join yawl:XOR ; yawl:split yawl:AND .\n"
            );
        }
        writer.add(*id, spec.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    ids
}

#[test]
fn a_lookup_into_an_arena_makes_no_heap_allocation() {
    let ((), allocations, _) = counted(|| drop(std::hint::black_box(Box::new(7_u64))));
    assert_eq!(allocations, 1, "the count sees this thread's allocations");
    let dir = scratch("arena");
    for dictionary in [true, false] {
        let path = dir.join("specs.store");
        let ids = write_specs(&path, dictionary);
        let store = MmapWorkflowStore::new(&path).unwrap();
        assert_eq!(
            store.compression().unwrap().dictionary().is_some(),
            dictionary
        );
        let mut growing = GrowingArena::new();
        let allocator = ArenaAllocator::with_capacity(1 << 20).unwrap();
        let mut buffer = vec![std::mem::MaybeUninit::uninit(); 1 << 20];
        let mut fixed = Arena::new(&mut buffer);
        let mut out = Vec::new();
        // Warm-up: the thread's decompression context, the arenas' chunks
        // (a growing arena settles on one after a few batches), the Vec's
        // capacity.
        for _ in 0..3 {
            for id in &ids {
                store.read_in(id, &growing).unwrap().unwrap();
                store.read_into(id, &mut out).unwrap();
            }
            growing.reset();
        }
        let mut bytes = 0;
        let ((), allocations, _) = counted(|| {
            // 1,000 lookups, in batches of 50 with a reset after each.
            for _ in 0..20 {
                for id in &ids {
                    bytes += store.read_in(id, &growing).unwrap().unwrap().len();
                    bytes += store.read_in(id, &allocator).unwrap().unwrap().len();
                    bytes += store.read_in(id, &fixed).unwrap().unwrap().len();
                }
                growing.reset();
                allocator.reset().unwrap();
                fixed.reset();
            }
        });
        assert_eq!(allocations, 0, "with a dictionary: {dictionary}");
        assert!(bytes > 3 * 20 * 50 * 100, "every lookup read a spec");
        // A reused Vec allocates once it has held the longest workflow.
        let ((), allocations, _) = counted(|| {
            for id in ids.iter().cycle().take(1000) {
                assert!(store.read_into(id, &mut out).unwrap());
            }
        });
        assert_eq!(allocations, 0, "read_into, with a dictionary: {dictionary}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A zstd frame of one RLE block: 128 KiB of zeros in 10 bytes
/// (RFC 8878).
const ZEROS: [u8; 10] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3, 0x03, 0x00, 0x10, 0x00];

#[test]
fn hostile_recorded_lengths_cost_no_memory() {
    let dir = scratch("hostile");
    let path = dir.join("hostile.store");
    let mut file = Vec::new();
    let mut writer =
        StoreWriter::new_compressed(IoSink(&mut file), GrowingIndex::new(), None, 3).unwrap();
    // A bomb: 128 KiB recorded as 16 bytes.
    writer.add_compressed(id(1), 16, &ZEROS).unwrap();
    // A claim: 128 KiB recorded as a gigabyte, which 10 bytes of frame
    // cannot reach.
    writer.add_compressed(id(2), 1 << 30, &ZEROS).unwrap();
    writer.finish().unwrap();
    std::fs::write(&path, file).unwrap();
    let store = MmapWorkflowStore::new(&path).unwrap();
    let mut out = Vec::new();
    let growing = GrowingArena::new();
    let refused = |result: Result<(), StorageError>| match result {
        Err(StorageError::Decompress { source, .. }) => source,
        other => panic!("{other:?}"),
    };
    // The errors name the file (a few hundred bytes); no workflow is given
    // more than its recorded length, nor a hopeless one any.
    let bomb = DecompressError::TooLong { recorded: 16 };
    let (results, _, bytes) = counted(|| {
        [
            store.read_into(&id(1), &mut out).map(drop),
            store.read_in(&id(1), &growing).map(drop),
            store.verify(),
        ]
    });
    assert!(results.into_iter().all(|r| refused(r) == bomb));
    assert!(bytes < 64 << 10, "the bomb: {bytes} bytes allocated");
    let (results, _, bytes) = counted(|| {
        [
            store.read_into(&id(2), &mut out).map(drop),
            store.read_in(&id(2), &growing).map(drop),
        ]
    });
    for result in results {
        let source = refused(result);
        assert!(matches!(source, DecompressError::Frame { .. }), "{source}");
    }
    assert!(bytes < 64 << 10, "the claim: {bytes} bytes allocated");
    std::fs::remove_dir_all(&dir).unwrap();
}
