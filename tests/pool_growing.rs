//! A pool of growing arenas settles: once its arenas have seen a workload,
//! a checkout, a batch and a return make no heap call at all; after a
//! spike and calm batches, an arena gives the spike's memory back; and a
//! growing arena whose spikes recur makes no heap call once it has seen
//! one. Counted by knhk's counting allocator, for the test's own thread.

use knhk_tests::counting::ThisThreadCounting;
use knhk_tests::TaskState;
use knhk_workflow_engine::arena::{ArenaError, GrowingArena, RESET_HISTORY};
use knhk_workflow_engine::pool::{GrowingArenas, ResourcePool};

#[global_allocator]
static ALLOCATOR: ThisThreadCounting = knhk_tests::counting::allocator();

/// One batch of `n` task states in an arena of `pool`; the arena's chunks
/// and held bytes before the batch and after it (before its return).
fn batch(pool: &ResourcePool<GrowingArenas>, n: u64) -> ((usize, usize), (usize, usize)) {
    let arena = pool.checkout().unwrap();
    let before = (arena.chunks(), arena.held_bytes());
    fill(&arena, n);
    (before, (arena.chunks(), arena.held_bytes()))
}

/// `n` task states in `arena`, each read back.
fn fill(arena: &GrowingArena, n: u64) {
    for id in 0..n {
        let state = arena
            .alloc(TaskState {
                id,
                ..TaskState::default()
            })
            .unwrap();
        assert_eq!(state.id, id);
    }
}

#[test]
fn a_repeating_workload_makes_no_heap_calls_once_settled() {
    let pool = ResourcePool::growing(4096, 1, 2).unwrap();
    // 5000 states of 64 bytes: far past the first 4 KiB chunk.
    let (_, (grown, _)) = batch(&pool, 5000);
    assert!(grown > 1, "the first batch grew into {grown} chunks");
    for _ in 0..3 {
        batch(&pool, 5000);
    }
    for _ in 0..10 {
        let (((before, _), (after, _)), allocations, bytes) =
            knhk_tests::counting::counted(&ALLOCATOR, || batch(&pool, 5000));
        assert_eq!((before, after), (1, 1), "one chunk, never replaced");
        assert_eq!((allocations, bytes), (0, 0), "no heap call per batch");
    }
    assert_eq!(pool.live(), 1, "one thread, one arena");
}

#[test]
fn after_a_spike_and_calm_batches_an_arena_gives_the_memory_back() {
    let pool = ResourcePool::growing(4096, 1, 1).unwrap();
    for _ in 0..4 {
        batch(&pool, 500);
    }
    let ((_, calm), _) = batch(&pool, 500);
    batch(&pool, 50_000);
    let ((_, spiked), _) = batch(&pool, 500);
    assert!(spiked > 50 * calm, "{calm} -> {spiked}");
    for _ in 0..RESET_HISTORY {
        batch(&pool, 500);
    }
    let ((chunks, after), _) = batch(&pool, 500);
    assert_eq!(chunks, 1);
    assert!(
        after <= 2 * calm,
        "held {after} after the calm, {calm} before the spike"
    );
}

#[test]
fn the_arena_limit_refuses_with_what_was_asked_and_the_arena_goes_on() {
    let limit = 64 * 1024;
    let pool = ResourcePool::growing(4096, 1, 1)
        .unwrap()
        .with_arena_limit(limit);
    assert_eq!((pool.first_chunk(), pool.arena_limit()), (4096, limit));
    {
        let mut arena = pool.checkout().unwrap();
        let mut stored = 0_u64;
        let error = loop {
            match arena.alloc(TaskState::default()) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(stored * 64 <= limit as u64 && stored > 500, "{stored}");
        match error {
            ArenaError::LimitExceeded {
                requested,
                held,
                limit: l,
            } => {
                assert_eq!(l, limit);
                assert!(held <= limit && requested > 0, "{error}");
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
        assert!(arena.held_bytes() <= limit);
        // The arena is still usable: a reset makes room again.
        arena.reset();
        assert_eq!(arena.used(), 0);
        arena.alloc_str("after the error").unwrap();
    }
    // Back from its return, the arena takes a batch again.
    let ((chunks, held), _) = batch(&pool, 100);
    assert_eq!(chunks, 1);
    assert!(held <= limit);
    // A first chunk larger than the limit is cut to it.
    let small = ResourcePool::growing(1 << 20, 1, 1)
        .unwrap()
        .with_arena_limit(limit);
    assert_eq!(small.first_chunk(), limit);
    assert!(small.checkout().unwrap().held_bytes() <= limit);
    assert_eq!(
        ResourcePool::growing(0, 1, 1).unwrap_err(),
        ArenaError::ZeroCapacity
    );
}

/// `n` task states in `arena`, then its reset.
fn fill_and_reset(arena: &mut GrowingArena, n: u64) {
    fill(arena, n);
    arena.reset();
}

#[test]
fn a_recurring_spike_makes_no_heap_calls_once_seen() {
    // A spike of 3.2 MB (mapped chunks, kept mapped after the calm), then
    // calm batches until the spike has left the reset's history.
    let spike_and_calm = |arena: &mut GrowingArena| {
        fill_and_reset(arena, 50_000);
        for _ in 0..RESET_HISTORY {
            fill_and_reset(arena, 500);
        }
    };
    let mut arena = GrowingArena::new();
    for _ in 0..4 {
        fill_and_reset(&mut arena, 500);
    }
    spike_and_calm(&mut arena);
    if arena.retained_bytes() == 0 {
        // Chunks of 2 MiB and more are mapped, and a mapped one is what
        // the arena retains, on Linux; elsewhere they are heap memory and
        // the spike's chunk is freed and allocated again each time.
        if cfg!(target_os = "linux") {
            panic!("on Linux the spike's mapped chunk is retained");
        }
        return;
    }
    spike_and_calm(&mut arena);
    let calm_chunk = arena.held_bytes();
    for round in 0..3 {
        let ((), allocations, bytes) =
            knhk_tests::counting::counted(&ALLOCATOR, || spike_and_calm(&mut arena));
        assert_eq!(
            (allocations, bytes),
            (0, 0),
            "round {round}: no heap call for the spike or the calm after it"
        );
        assert_eq!((arena.chunks(), arena.held_bytes()), (1, calm_chunk));
    }
}
