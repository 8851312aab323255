//! Shared helpers for knhk's integration tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
/// verify. Whatever the bytes, it must return (never panic or hang). The
/// fuzz target runs it on generated input; the `store_corpus` test replays
/// the fuzz corpus through it. Returns whether the store came back clean.
pub fn exercise_store(bytes: &[u8]) -> bool {
    use knhk_core::store::StoreView;
    let Ok(store) = StoreView::parse(bytes) else {
        return false;
    };
    // Verified once, up front: then every listed workflow must be found.
    let verified = store.verify().is_ok();
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
    for probe in [[0_u8; 16], [0xFF; 16], *b"knhk.store.indx\x01"] {
        ids.push(knhk_core::WorkflowSpecId::from_bytes(probe));
    }
    for (id, many) in ids.iter().zip(store.get_many(&ids)) {
        assert_eq!(many, store.try_get(id), "batched lookup of {id}");
    }
    let _ = (store.len(), store.version(), store.index_range());
    verified && clean
}
