//! Shared helpers for knhk's integration tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Heap allocations counted per thread, for the tests that check that a
/// path allocates nothing: each such test binary declares
/// `#[global_allocator] static ALLOCATOR: ThisThreadCounting =
/// knhk_tests::counting::allocator();` and wraps the code it checks in
/// [`counted`](counting::counted). Only the counting thread's allocations
/// are seen, so the harness's other threads allocate as they like.
pub mod counting {
    use std::alloc::System;
    use std::cell::Cell;

    use knhk_core::alloc_stats::{AllocSnapshot, CountingAlloc, Tally};

    /// This thread's counts, while it counts. Const-initialised cells
    /// without `Drop`: reading them allocates nothing and registers no
    /// destructor.
    struct Counts {
        on: Cell<bool>,
        allocations: Cell<u64>,
        bytes: Cell<u64>,
    }

    thread_local! {
        static COUNTS: Counts = const {
            Counts { on: Cell::new(false), allocations: Cell::new(0), bytes: Cell::new(0) }
        };
    }

    /// A tally of the allocations the current thread makes while
    /// [`counted`] runs.
    pub struct ThisThread;

    impl Tally for ThisThread {
        fn record_alloc(&self, size: usize) {
            // `try_with`: the allocator runs during thread teardown too.
            let _ = COUNTS.try_with(|c| {
                if c.on.get() {
                    c.allocations.set(c.allocations.get() + 1);
                    c.bytes.set(c.bytes.get() + size as u64);
                }
            });
        }

        fn record_dealloc(&self, _size: usize) {}

        fn snapshot(&self) -> AllocSnapshot {
            COUNTS
                .try_with(|c| AllocSnapshot {
                    allocations: c.allocations.get(),
                    total_allocated: c.bytes.get(),
                    ..AllocSnapshot::default()
                })
                .unwrap_or_default()
        }

        fn reset_peak(&self) {}
    }

    /// The system allocator, counting per thread.
    pub type ThisThreadCounting = CountingAlloc<System, ThisThread>;

    /// The global allocator of a counting test binary.
    pub const fn allocator() -> ThisThreadCounting {
        CountingAlloc::with_tally(System, ThisThread)
    }

    /// Runs `f`; returns its result and the heap allocations and bytes
    /// this thread made meanwhile (`allocator` must be the binary's global
    /// allocator).
    pub fn counted<R>(allocator: &ThisThreadCounting, f: impl FnOnce() -> R) -> (R, u64, u64) {
        let before = allocator.snapshot();
        COUNTS.with(|c| c.on.set(true));
        let r = f();
        COUNTS.with(|c| c.on.set(false));
        let after = allocator.snapshot();
        (
            r,
            after.allocations - before.allocations,
            after.total_allocated - before.total_allocated,
        )
    }
}

/// A value that counts its drops in a shared counter.
#[derive(Debug)]
pub struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A 64-byte task state, the shape the design document's batches allocate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TaskState {
    /// Task id.
    pub id: u64,
    /// Pattern the task executes.
    pub pattern: u32,
    /// Status code.
    pub status: u32,
    /// Inputs.
    pub inputs: [u64; 4],
    /// Deadline, in ticks.
    pub deadline: u64,
    /// Flags.
    pub flags: u64,
}

/// A task in a batch, as in the design document's Integration Guide.
pub struct Task(pub u64);

impl Task {
    /// The task's initial state.
    pub fn create_state(&self) -> TaskState {
        TaskState {
            id: self.0,
            ..TaskState::default()
        }
    }
}

/// Everything a reader of an untrusted store does: parse, look up, list,
/// verify (and decompress, for a compressed store). Whatever the bytes, it must return (never panic or hang). The
/// fuzz target runs it on generated input; the `store_corpus` test replays
/// the fuzz corpus through it. Returns whether the store came back clean.
pub fn exercise_store(bytes: &[u8]) -> bool {
    use knhk_core::store::StoreView;
    let Ok(store) = StoreView::parse(bytes) else {
        return false;
    };
    // Verified once, up front: then every listed workflow must be found.
    let verified = store.verify().is_ok();
    if let Some(format) = store.archive_format() {
        // An archived store: every archive the index leads to has its
        // alignment prefix, checked by verify; the lookup never panics.
        let _ = format.to_bytes();
        for entry in store.stored_entries().filter_map(Result::ok) {
            let archive = store.get_archived(&entry.0);
            assert!(
                archive.is_ok() || !verified || store.is_compressed(),
                "verified archived store refused {}",
                entry.0
            );
        }
        for probe in PROBES.map(knhk_core::WorkflowSpecId::from_bytes) {
            let _ = store.get_archived(&probe);
        }
    }
    if store.is_compressed() {
        return exercise_compressed(bytes, &store, verified);
    }
    let mut clean = true;
    for entry in store.entries() {
        match entry {
            Ok((id, _)) => {
                let found = store.try_get(&id).ok().flatten().is_some();
                assert!(found || !verified, "verified store lost workflow {id}");
            }
            Err(_) => clean = false,
        }
    }
    // The batched lookups agree with one lookup at a time, on whatever
    // the index says.
    let mut ids: Vec<_> = store
        .entries()
        .filter_map(Result::ok)
        .map(|(id, _)| id)
        .collect();
    ids.extend(PROBES.map(knhk_core::WorkflowSpecId::from_bytes));
    for (id, many) in ids.iter().zip(store.get_many(&ids)) {
        assert_eq!(many, store.try_get(id), "batched lookup of {id}");
    }
    let _ = (store.len(), store.version(), store.index_range());
    verified && clean
}

/// Ids looked up besides the listed ones: likely absent, and a reserved one.
const PROBES: [[u8; 16]; 3] = [[0_u8; 16], [0xFF; 16], *b"knhk.store.indx\x01"];

/// [`exercise_store`] for a compressed store (format version 4): its
/// frames through knhk-core, which must never hand them out as workflows,
/// and its workflows through knhk-std's decompressing reader.
fn exercise_compressed(
    bytes: &[u8],
    store: &knhk_core::store::StoreView<'_>,
    verified: bool,
) -> bool {
    use knhk_core::store::{StoreError, Stored};
    let Some(info) = store.compression().copied() else {
        unreachable!("a compressed store has its compression facts");
    };
    let mut clean = info.check_dictionary().is_ok();
    let mut ids = Vec::new();
    for entry in store.stored_entries() {
        match entry {
            Ok((id, stored)) => {
                assert!(matches!(stored, Stored::Zstd(_)), "{id} handed out plain");
                assert!(
                    stored.len() as u64 <= info.largest(),
                    "{id} is longer than the store's largest workflow"
                );
                let found = store.get_stored(&id);
                assert!(
                    found == Ok(Some(stored)) || !verified,
                    "verified store lost workflow {id}"
                );
                ids.push(id);
            }
            Err(_) => clean = false,
        }
    }
    let listed = ids.len();
    ids.extend(PROBES.map(knhk_core::WorkflowSpecId::from_bytes));
    // The borrowing lookups refuse: they would hand out compressed bytes.
    for (id, many) in ids.iter().zip(store.get_many(&ids)) {
        assert_eq!(many, Err(StoreError::Compressed), "batched lookup of {id}");
        assert_eq!(store.try_get(id), Err(StoreError::Compressed), "{id}");
    }
    assert!(store.entries().all(|e| e == Err(StoreError::Compressed)));
    let read = exercise_decompression(bytes, store, &ids, listed, verified);
    verified && clean && read
}

/// Reads every id of a compressed store through knhk-std (which maps
/// files: the bytes go to a temporary file first). Whatever the bytes, the
/// read forms agree with each other and with the recorded lengths, and a
/// store that verifies reads every listed workflow. (That no frame is
/// decompressed past its recorded length, the fuzzer's memory limit
/// checks.) Returns whether the store opened and verified.
fn exercise_decompression(
    bytes: &[u8],
    store: &knhk_core::store::StoreView<'_>,
    ids: &[knhk_core::WorkflowSpecId],
    listed: usize,
    verified: bool,
) -> bool {
    use knhk_workflow_engine::arena::GrowingArena;
    use knhk_workflow_engine::store::MmapWorkflowStore;
    let path = std::env::temp_dir().join(format!(
        "knhk-exercise-{}-{:?}.store",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, bytes).expect("the temporary directory is writable");
    let opened = MmapWorkflowStore::new(&path);
    // The map outlives the name.
    let _ = std::fs::remove_file(&path);
    let Ok(mapped) = opened else {
        return false;
    };
    let read_verified = mapped.verify().is_ok();
    assert!(
        verified || !read_verified,
        "knhk-std verified a store knhk-core refuses"
    );
    let mut out = Vec::new();
    let mut arena = GrowingArena::new();
    for (n, id) in ids.iter().enumerate() {
        let must_read = read_verified && n < listed;
        let recorded = store.get_stored(id).map(|s| s.map(|s| s.len()));
        let read = mapped.read_into(id, &mut out);
        let in_arena = mapped.read_in(id, &arena).map(|w| w.map(|b| b.to_vec()));
        match (read, in_arena) {
            (Ok(true), Ok(Some(bytes))) => {
                assert_eq!(bytes, out, "{id} read two ways");
                assert_eq!(recorded, Ok(Some(out.len())), "{id} read at its length");
            }
            (Ok(false), Ok(None)) => assert!(!must_read, "verified store lost workflow {id}"),
            (Err(a), Err(b)) => {
                // Of the same kind; not always for the same reason: libzstd
                // decodes the first frame after a dictionary is (re)loaded
                // into a context with its prefetching decoder, whose checks
                // on a corrupt frame run in another order (one read says
                // "corrupt", the next "longer than recorded").
                assert_eq!(
                    std::mem::discriminant(&a),
                    std::mem::discriminant(&b),
                    "{id} refused as {a} and as {b}"
                );
                assert!(!must_read, "verified store cannot read {id}: {a}");
            }
            (read, in_arena) => panic!("{id}: read_into gave {read:?}, read_in {in_arena:?}"),
        }
        arena.reset();
    }
    read_verified
}
