//! Arena behaviour across knhk-core and knhk-std.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use knhk_core::arena::{Arena as CoreArena, ArenaError};
use knhk_tests::{DropCounter, TaskState};
use knhk_workflow_engine::memory::{Arena, ArenaAllocator};
use proptest::prelude::*;

#[test]
fn std_arena_is_the_core_arena_over_a_heap_buffer() {
    let mut arena = Arena::with_capacity(64 * 1024).unwrap();
    let core_view: &CoreArena<'_> = &arena;
    assert_eq!(core_view.capacity(), 64 * 1024);
    let states = arena
        .alloc_slice_fill_with(100, |i| TaskState {
            id: i as u64,
            ..TaskState::default()
        })
        .unwrap();
    assert_eq!(states[99].id, 99);
    assert_eq!(arena.used(), 100 * 64);
    arena.reset();
    assert_eq!(arena.used(), 0);
}

#[test]
fn drops_happen_once_across_reset_scope_rewind_and_drop() {
    let drops = Arc::new(AtomicUsize::new(0));
    let count = || drops.load(Ordering::Relaxed);
    let mut arena = Arena::with_capacity(64 * 1024).unwrap();
    for _ in 0..10 {
        arena.alloc(DropCounter(drops.clone())).unwrap();
    }
    arena.reset();
    assert_eq!(count(), 10);

    arena.scope(|s| {
        for _ in 0..5 {
            s.alloc(DropCounter(drops.clone())).unwrap();
        }
    });
    assert_eq!(count(), 15);

    let mark = arena.checkpoint();
    arena.alloc(DropCounter(drops.clone())).unwrap();
    arena.rewind(mark).unwrap();
    assert_eq!(count(), 16);

    arena.alloc(DropCounter(drops.clone())).unwrap();
    drop(arena);
    assert_eq!(count(), 17);
}

#[test]
fn allocator_api2_collections_live_in_the_arena() {
    let arena = Arena::with_capacity(64 * 1024).unwrap();
    let before = arena.used();
    let mut names = allocator_api2::vec::Vec::new_in(&*arena);
    for i in 0..50 {
        names.push(i * 2);
    }
    assert_eq!(names[49], 98);
    assert!(arena.used() > before);
}

#[test]
fn errors_box_into_dyn_error() {
    fn batch(arena: &ArenaAllocator) -> Result<u64, Box<dyn std::error::Error>> {
        let mut total = 0;
        let mut held = Vec::new();
        for i in 0..10_000_u64 {
            let v = arena.alloc(i)?;
            total += *v;
            held.push(v);
        }
        Ok(total)
    }
    let arena = ArenaAllocator::with_capacity(1024).unwrap();
    let err = batch(&arena).unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
    let typed = err
        .downcast_ref::<knhk_workflow_engine::arena::ArenaError>()
        .unwrap();
    assert!(matches!(
        typed,
        knhk_workflow_engine::arena::ArenaError::Alloc(ArenaError::Exhausted {
            size: 8,
            align: 8,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever is allocated reads back intact until the reset.
    #[test]
    fn allocations_never_alias(values in proptest::collection::vec(any::<u64>(), 0..500)) {
        let mut arena = Arena::with_capacity(4096).unwrap();
        for _ in 0..2 {
            let mut held = Vec::new();
            for &v in &values {
                match arena.alloc(v) {
                    Ok(r) => held.push((r, v)),
                    Err(e) => {
                        prop_assert!(matches!(e, ArenaError::Exhausted { .. }), "{e:?}");
                        break;
                    }
                }
            }
            for (r, v) in &held {
                prop_assert_eq!(**r, *v);
            }
            drop(held);
            arena.reset();
        }
    }
}
