//! ALLOCATOR_STATS with knhk's counting allocator installed over the system
//! allocator, as a binary would do without the jemalloc/mimalloc features.
//! One test function: the counts are process-wide.

knhk_workflow_engine::count_allocations!(std::alloc::System);

use knhk_workflow_engine::memory::ALLOCATOR_STATS;

#[test]
fn counts_every_heap_allocation_of_the_program() {
    assert!(ALLOCATOR_STATS.is_counting());
    assert_eq!(ALLOCATOR_STATS.backend(), Some("std::alloc::System"));

    let before = ALLOCATOR_STATS.snapshot();
    let boxes: Vec<Box<[u8; 1000]>> = (0..10).map(|_| Box::new([7; 1000])).collect();
    let during = ALLOCATOR_STATS.snapshot();
    // Other test-harness threads may allocate too, so bounds, not equalities.
    assert!(
        during.allocations >= before.allocations + 11,
        "10 boxes and the Vec"
    );
    assert!(during.total_allocated >= before.total_allocated + 10 * 1000);
    assert!(during.current >= 10 * 1000);
    assert!(during.peak >= during.current);
    drop(boxes);
    let after = ALLOCATOR_STATS.snapshot();
    assert!(after.deallocations >= during.deallocations + 11);
    assert!(after.current < during.current);

    // Threads each get their own tally line; the totals still add up.
    let start = ALLOCATOR_STATS.allocation_count();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..1000_u32 {
                    std::hint::black_box(Box::new(i));
                }
            });
        }
    });
    assert!(ALLOCATOR_STATS.allocation_count() >= start + 4000);
}
