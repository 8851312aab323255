//! The design document's snippets, as written there, against the std crate
//! under the name `knhk-workflow-engine`. Where a snippet had to change, the
//! change is marked and README.md says why.

use knhk_tests::Task;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Section 2, "Arena Allocator", Usage.
#[test]
fn arena_usage() -> Result<()> {
    use knhk_workflow_engine::memory::{Arena, ArenaAllocator};

    // Direct arena usage
    let mut arena = Arena::with_capacity(1024 * 1024)?; // changed: `mut` (reset needs &mut)
    for i in 0..1000 {
        let val = arena.alloc(i)?;
        // Use val...
        assert_eq!(*val, i);
    }
    assert!(arena.used() >= 1000 * 4);
    arena.reset(); // Reuse without deallocation
    assert_eq!(arena.used(), 0);

    // Thread-local allocator
    let allocator = ArenaAllocator::new()?;
    let val = allocator.alloc(42)?;
    assert_eq!(*val, 42);
    drop(val); // changed: a live value makes reset refuse instead of dangling
    allocator.reset()?; // changed: reset returns a Result
    Ok(())
}

/// Integration Guide, step 2: "Use Arena for Batch Operations".
#[test]
fn integration_guide_batch() -> Result<()> {
    use knhk_workflow_engine::memory::ArenaAllocator;

    let batch: Vec<Task> = (0..1000).map(Task).collect();

    let allocator = ArenaAllocator::with_capacity(1024 * 1024)?;

    // Process batch
    for task in batch {
        let state = allocator.alloc(task.create_state())?;
        // Process with state...
        assert_eq!(state.id, task.0);
    }

    // Reset for next batch
    allocator.reset()?; // changed: a returned Result handled
    assert_eq!(allocator.used(), 0);
    Ok(())
}

/// The same snippet with the Result left unhandled, exactly as the seed
/// wrote it, still compiles (with an `unused_must_use` warning).
#[test]
#[allow(unused_must_use)]
fn integration_guide_batch_verbatim_reset() -> Result<()> {
    use knhk_workflow_engine::memory::ArenaAllocator;

    let allocator = ArenaAllocator::with_capacity(1024 * 1024)?;
    for task in (0..10).map(Task) {
        let state = allocator.alloc(task.create_state())?;
        assert_eq!(state.id, task.0);
    }
    allocator.reset();
    assert_eq!(allocator.used(), 0);
    Ok(())
}

/// The ids the document uses are at the crate root of both crates.
#[test]
fn ids_are_reexported() {
    use knhk_workflow_engine::{PatternId, WorkflowSpecId};
    let p = PatternId(1);
    let w = WorkflowSpecId(uuid::Uuid::from_bytes([7; 16]));
    assert_eq!(p, knhk_core::PatternId(1));
    assert_eq!(w, knhk_core::WorkflowSpecId::from_bytes([7; 16]));
}
