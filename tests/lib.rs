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
