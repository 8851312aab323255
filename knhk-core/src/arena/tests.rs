use super::*;
use core::cell::Cell;
use proptest::prelude::*;

/// Counts how often values of this type were dropped.
#[derive(Debug)]
struct Counted<'c>(&'c Cell<usize>);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Test memory that starts on a word boundary (a `Vec<u8>` need not, and
/// under Miri often does not), so a length that is a multiple of `WORD` is
/// also the arena's capacity.
struct Buffer {
    words: Vec<MaybeUninit<usize>>,
    len: usize,
}

fn buffer(len: usize) -> Buffer {
    Buffer {
        words: vec![MaybeUninit::uninit(); len.div_ceil(WORD)],
        len,
    }
}

impl core::ops::Deref for Buffer {
    type Target = [MaybeUninit<u8>];
    fn deref(&self) -> &[MaybeUninit<u8>] {
        // SAFETY: `words` holds at least `len` bytes, any byte may be
        // uninitialised, and `u8` has no alignment requirement.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }
}

impl core::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: as in `deref`, through a unique borrow.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }
}

/// `len` bytes of `buf` that start and end on a word boundary.
fn aligned_window(buf: &mut [MaybeUninit<u8>], len: usize) -> &mut [MaybeUninit<u8>] {
    let skip = buf.as_ptr().align_offset(WORD);
    &mut buf[skip..skip + len]
}

#[test]
fn capacity_ends_at_the_last_word_boundary() {
    let mut buf = buffer(64 + 2 * WORD);
    let window = aligned_window(&mut buf, 64 + WORD);
    assert_eq!(Arena::new(&mut window[..64]).capacity(), 64);
    assert_eq!(Arena::new(&mut window[..64 + WORD - 1]).capacity(), 64);
    // A misaligned start is rounded up: the bytes before the first word
    // boundary could never be handed out, so they are not counted.
    assert_eq!(Arena::new(&mut window[1..64]).capacity(), 64 - WORD);
    assert_eq!(Arena::new(&mut window[1..2 * WORD + 3]).capacity(), WORD);
    assert_eq!(Arena::new(&mut window[1..WORD + 3]).capacity(), 0);
    assert_eq!(Arena::new(&mut window[1..WORD - 1]).capacity(), 0);
}

/// Over a buffer at any misalignment, what `remaining` counts can be
/// allocated, and a refusal's numbers explain it.
#[test]
fn every_counted_byte_is_usable_whatever_the_buffer_alignment() {
    let mut buf = buffer(256 + 2 * WORD);
    let window = aligned_window(&mut buf, 256 + WORD);
    for offset in 0..WORD {
        for len in [0, 1, WORD - 1, WORD, 3 * WORD + 5, 200] {
            let arena = Arena::new(&mut window[offset..offset + len]);
            assert_eq!(arena.remaining(), arena.capacity());
            assert_eq!(arena.capacity() % WORD, 0);
            assert!(arena.capacity() <= len && len - arena.capacity() < 2 * WORD);
            let rest = arena.remaining();
            let too_much = Layout::from_size_align(rest + 1, 1).unwrap();
            assert_eq!(
                arena.alloc_layout(too_much),
                Err(ArenaError::TooLarge {
                    size: rest + 1,
                    align: 1,
                    capacity: rest
                }),
                "offset {offset}, len {len}"
            );
            if rest > 0 {
                let all = Layout::from_size_align(rest, 1).unwrap();
                assert!(
                    arena.alloc_layout(all).is_ok(),
                    "offset {offset}, len {len}"
                );
                assert_eq!(arena.remaining(), 0);
                match arena.alloc(1_u8) {
                    Err(ArenaError::Exhausted {
                        size, remaining, ..
                    }) => {
                        assert!(size > remaining, "{size} > {remaining}")
                    }
                    other => panic!("expected Exhausted, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn alloc_with_reserves_before_building_whatever_the_type() {
    let log = core::cell::RefCell::new(Vec::new());
    struct Noisy<'l>(&'l core::cell::RefCell<Vec<&'static str>>, &'static str);
    impl Drop for Noisy<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }
    let mut buf = buffer(64);
    let arena = Arena::new(&mut buf);
    let mut built = 0;
    // Too big for the arena: `make` must not run (it would build and drop).
    let big = arena.alloc_with(|| {
        built += 1;
        ([0_u64; 16], Noisy(&log, "big"))
    });
    assert!(matches!(big, Err(ArenaError::TooLarge { .. })));
    assert_eq!((built, log.borrow().len()), (0, 0));
    drop(arena);

    // `make` that allocates in the arena: the outer value is dropped first,
    // then what `make` allocated (newest first, as always), and a rewind to
    // a point before both drops both, exactly once.
    let mut buf = buffer(1024);
    let mut arena = Arena::new(&mut buf);
    let before = arena.checkpoint();
    let outer = arena
        .alloc_with(|| {
            arena.alloc(Noisy(&log, "inner")).unwrap();
            Noisy(&log, "outer")
        })
        .unwrap();
    assert_eq!(outer.1, "outer");
    let plain = arena.alloc_with(|| Noisy(&log, "plain")).unwrap();
    assert_eq!(plain.1, "plain");
    arena.reset();
    assert_eq!(*log.borrow(), ["plain", "outer", "inner"]);
    log.borrow_mut().clear();
    arena
        .alloc_with(|| {
            arena.alloc(Noisy(&log, "inner")).unwrap();
            Noisy(&log, "outer")
        })
        .unwrap();
    arena.rewind(before).unwrap();
    assert_eq!(*log.borrow(), ["outer", "inner"]);
    drop(arena);
    assert_eq!(log.borrow().len(), 2, "nothing dropped twice");
}

#[test]
fn empty_slices_take_no_space() {
    struct Droppy;
    impl Drop for Droppy {
        fn drop(&mut self) {}
    }
    let mut buf = buffer(64);
    let arena = Arena::new(&mut buf);
    let empty = arena.alloc_slice_fill_with(0, |_| Droppy).unwrap();
    assert!(empty.is_empty());
    let empty = arena.alloc_slice_fill_with(0, |i| i as u64).unwrap();
    assert!(empty.is_empty());
    assert_eq!(arena.used(), 0);
}

#[test]
fn small_values_take_a_word_and_stay_aligned() {
    let mut buf = buffer(256);
    let arena = Arena::new(&mut buf[3..]);
    let a = arena.alloc(1_u8).unwrap();
    assert_eq!(arena.used(), WORD);
    let s = arena.alloc_str("abc").unwrap();
    let b = arena.alloc(2_u64).unwrap();
    assert_eq!((b as *const u64).addr() % core::mem::align_of::<u64>(), 0);
    assert_eq!((*a, &*s, *b), (1, "abc", 2));
}

macro_rules! aligned_types {
    ($($name:ident = $align:literal),* $(,)?) => {
        $(
            #[derive(Clone, Copy, Debug, PartialEq)]
            #[repr(align($align))]
            struct $name(u8);
        )*

        /// Allocates one value of each alignment and checks where it landed.
        fn alloc_each_alignment(arena: &Arena<'_>) {
            $(
                let tag = ($align as usize).trailing_zeros() as u8;
                let v = arena.alloc($name(tag)).unwrap();
                assert!((v as *const $name).addr().is_multiple_of($align), "align {}", $align);
                assert_eq!(v.0, tag);
            )*
        }
    };
}

aligned_types!(
    A1 = 1,
    A2 = 2,
    A4 = 4,
    A8 = 8,
    A16 = 16,
    A32 = 32,
    A64 = 64,
    A128 = 128,
    A256 = 256,
    A512 = 512,
    A1024 = 1024,
    A2048 = 2048,
    A4096 = 4096,
);

#[test]
fn every_alignment_from_1_to_4096_whatever_the_buffer_alignment() {
    let mut buf = buffer(3 * 8192 + 64);
    for offset in [0, 1, 3, 7, 33] {
        let arena = Arena::new(&mut buf[offset..]);
        alloc_each_alignment(&arena);
    }
}

#[test]
fn alloc_layout_honours_size_and_alignment() {
    let mut buf = buffer(16 * 1024 + 7);
    let arena = Arena::new(&mut buf[7..]);
    let mut blocks = Vec::new();
    for shift in 0..=12 {
        let align = 1usize << shift;
        let size = 3 * shift + 1;
        let layout = Layout::from_size_align(size, align).unwrap();
        let p = arena.alloc_layout(layout).unwrap();
        assert_eq!(p.as_ptr().addr() % align, 0);
        blocks.push((p.as_ptr().addr(), size));
    }
    blocks.sort();
    for pair in blocks.windows(2) {
        assert!(
            pair[0].0 + pair[0].1 <= pair[1].0,
            "blocks overlap: {pair:?}"
        );
    }
}

#[test]
fn zero_sized_values_take_no_space_even_in_an_empty_arena() {
    #[derive(Debug, PartialEq)]
    #[repr(align(4096))]
    struct BigAlignZst;

    let mut empty: [MaybeUninit<u8>; 0] = [];
    let arena = Arena::new(&mut empty);
    assert_eq!(*arena.alloc(()).unwrap(), ());
    let z = arena.alloc(BigAlignZst).unwrap();
    assert_eq!((z as *const BigAlignZst).addr() % 4096, 0);
    assert_eq!(arena.alloc_slice_copy::<u32>(&[]).unwrap(), &[] as &[u32]);
    assert_eq!(arena.alloc_str("").unwrap(), "");
    let l = Layout::from_size_align(0, 64).unwrap();
    assert_eq!(arena.alloc_layout(l).unwrap().as_ptr().addr() % 64, 0);
    assert_eq!(arena.used(), 0);
}

#[test]
fn zero_sized_values_with_drop_are_dropped() {
    struct ZstDrop<'c>(&'c Cell<usize>, [u8; 0]);
    impl Drop for ZstDrop<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Cell::new(0);
    let mut buf = buffer(256);
    let mut arena = Arena::new(&mut buf);
    for _ in 0..3 {
        arena.alloc(ZstDrop(&drops, [])).unwrap();
    }
    arena.reset();
    assert_eq!(drops.get(), 3);
}

#[test]
fn zero_capacity_arena_reports_too_large() {
    let mut empty: [MaybeUninit<u8>; 0] = [];
    let arena = Arena::new(&mut empty);
    assert_eq!(arena.capacity(), 0);
    assert_eq!(
        arena.alloc(1_u8),
        Err(ArenaError::TooLarge {
            size: 1,
            align: 1,
            capacity: 0
        })
    );
}

#[test]
fn exhaustion_reports_request_and_remaining_and_reset_recovers() {
    let mut buf = buffer(64 + WORD);
    let mut arena = Arena::new(aligned_window(&mut buf, 64));
    let mut n = 0;
    while arena.alloc_copy([0_u8; 20]).is_ok() {
        n += 1;
    }
    // 20 bytes round up to 24: two fit in 64 bytes, leaving 16.
    assert_eq!(n, 2);
    assert_eq!(arena.remaining(), 16);
    let err = arena.alloc_copy([0_u8; 20]).unwrap_err();
    assert_eq!(
        err,
        ArenaError::Exhausted {
            size: 20,
            align: 1,
            remaining: 16
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("20 bytes") && text.contains("16 bytes remain"),
        "{text}"
    );
    arena.reset();
    assert_eq!(arena.remaining(), 64);
    assert!(arena.alloc_copy([0_u8; 10]).is_ok());
}

#[test]
fn oversized_and_overflowing_requests_are_errors_not_panics() {
    let mut buf = buffer(100);
    let arena = Arena::new(&mut buf);
    assert!(matches!(
        arena.alloc([0_u64; 20]),
        Err(ArenaError::TooLarge { size: 160, .. })
    ));
    assert_eq!(
        arena.alloc_slice_fill_with(usize::MAX, |_| 0_u32),
        Err(ArenaError::SizeOverflow {
            elem_size: 4,
            len: usize::MAX
        })
    );
    let huge = Layout::from_size_align(isize::MAX as usize, 1).unwrap();
    assert!(matches!(
        arena.alloc_layout(huge),
        Err(ArenaError::TooLarge { .. })
    ));
    // An alignment larger than the whole buffer.
    let wide = Layout::from_size_align(1, 1 << 20).unwrap();
    assert!(matches!(
        arena.alloc_layout(wide),
        Err(ArenaError::TooLarge { align, .. }) if align == 1 << 20
    ));
    assert_eq!(arena.used(), 0, "failed requests must not consume memory");
}

#[test]
fn alloc_or_return_hands_the_value_back() {
    let drops = Cell::new(0);
    let mut buf = buffer(4);
    let arena = Arena::new(&mut buf);
    let rejected = arena.alloc_or_return(Counted(&drops)).unwrap_err();
    assert!(matches!(
        rejected.error,
        ArenaError::Exhausted { .. } | ArenaError::TooLarge { .. }
    ));
    assert_eq!(drops.get(), 0, "the value must come back undropped");
    drop(rejected.into_value());
    assert_eq!(drops.get(), 1);
}

#[test]
fn errors_work_with_question_mark_into_box_dyn_error() {
    fn run() -> Result<u64, Box<dyn std::error::Error>> {
        let mut buf = buffer(8);
        let arena = Arena::new(&mut buf);
        let a = arena.alloc(1_u64)?;
        let b = arena.alloc(2_u64)?;
        Ok(*a + *b)
    }
    let err = run().unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
}

#[test]
fn values_are_dropped_exactly_once_on_reset_and_on_drop() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    {
        let mut arena = Arena::new(&mut buf);
        for _ in 0..10 {
            arena.alloc(Counted(&drops)).unwrap();
        }
        assert_eq!(drops.get(), 0);
        arena.reset();
        assert_eq!(drops.get(), 10);
        arena.reset();
        assert_eq!(drops.get(), 10, "a second reset must not drop again");
        for _ in 0..5 {
            arena.alloc(Counted(&drops)).unwrap();
        }
    }
    assert_eq!(drops.get(), 15, "dropping the arena drops what is left");
}

#[test]
fn values_are_dropped_newest_first() {
    struct Ordered<'l>(&'l core::cell::RefCell<Vec<u32>>, u32);
    impl Drop for Ordered<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }
    let log = core::cell::RefCell::new(Vec::new());
    let mut buf = buffer(1024);
    let mut arena = Arena::new(&mut buf);
    for i in 0..4 {
        arena.alloc(Ordered(&log, i)).unwrap();
    }
    arena.reset();
    assert_eq!(*log.borrow(), vec![3, 2, 1, 0]);
}

#[test]
fn replaced_values_are_dropped_once_each() {
    let drops = Cell::new(0);
    let mut buf = buffer(1024);
    let mut arena = Arena::new(&mut buf);
    let slot = arena.alloc(Counted(&drops)).unwrap();
    let old = core::mem::replace(slot, Counted(&drops));
    drop(old);
    assert_eq!(drops.get(), 1);
    arena.reset();
    assert_eq!(drops.get(), 2);
}

#[test]
fn copy_types_need_no_drop_records() {
    let mut buf = buffer(1024);
    let arena = Arena::new(&mut buf);
    arena.alloc(1_u64).unwrap();
    assert_eq!(arena.used(), 8, "a u64 costs exactly its own bytes");
    let s = arena.alloc(Vec::<u8>::new()).unwrap();
    s.push(1);
    assert!(
        arena.used() > 8 + core::mem::size_of::<Vec<u8>>(),
        "Vec carries a record"
    );
}

#[test]
fn owned_heap_values_are_freed() {
    // Under Miri, a leak here fails the test run.
    let mut buf = buffer(4096);
    let mut arena = Arena::new(&mut buf);
    for i in 0..8 {
        let v = arena.alloc(vec![i; 16]).unwrap();
        v.push(i);
        arena
            .alloc(std::string::String::from("task-state"))
            .unwrap();
    }
    arena.reset();
    let boxed = arena.alloc_slice_fill_with(4, Box::new).unwrap();
    assert_eq!(*boxed[3], 3);
}

#[test]
fn slice_fill_with_drops_built_prefix_when_fill_panics() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let arena = Arena::new(&mut buf);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena
            .alloc_slice_fill_with(10, |i| {
                assert!(i < 4, "fill fails at 4");
                Counted(&drops)
            })
            .map(|_| ())
    }));
    assert!(result.is_err());
    assert_eq!(
        drops.get(),
        0,
        "nothing is dropped until the memory is freed"
    );
    drop(arena);
    assert_eq!(drops.get(), 4, "exactly the four built values are dropped");
}

#[test]
fn nested_fill_keeps_drop_order_consistent() {
    let drops = Cell::new(0);
    let mut buf = buffer(8192);
    let mut arena = Arena::new(&mut buf);
    let mark = arena.checkpoint();
    {
        let arena = &arena;
        let outer = arena
            .alloc_slice_fill_with(3, |_| {
                arena.alloc(Counted(&drops)).unwrap();
                Counted(&drops)
            })
            .unwrap();
        assert_eq!(outer.len(), 3);
    }
    arena.rewind(mark).unwrap();
    assert_eq!(drops.get(), 6);
    assert_eq!(arena.used(), 0);
}

#[test]
fn checkpoints_free_and_drop_what_came_after() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let mut arena = Arena::new(&mut buf);
    arena.alloc(Counted(&drops)).unwrap();
    let kept = arena.used();
    let mark = arena.checkpoint();
    for _ in 0..3 {
        arena.alloc(Counted(&drops)).unwrap();
        arena.alloc_str("scratch").unwrap();
    }
    arena.rewind(mark).unwrap();
    assert_eq!(drops.get(), 3);
    assert_eq!(arena.used(), kept);
    arena.reset();
    assert_eq!(drops.get(), 4);
}

#[test]
fn rewinding_ahead_is_an_error_and_stale_checkpoints_are_harmless() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let mut arena = Arena::new(&mut buf);
    for _ in 0..4 {
        arena.alloc(Counted(&drops)).unwrap();
    }
    let late = arena.checkpoint();
    arena.reset();
    assert_eq!(drops.get(), 4);
    assert_eq!(
        arena.rewind(late),
        Err(ArenaError::CheckpointAhead {
            checkpoint: late.used(),
            used: 0
        })
    );
    // Reach past the stale position with new values, then rewind to it:
    // only values newer than the position are dropped, each once.
    for _ in 0..8 {
        arena.alloc(Counted(&drops)).unwrap();
    }
    arena.rewind(late).unwrap();
    assert_eq!(drops.get(), 8);
    arena.reset();
    assert_eq!(drops.get(), 12);
}

#[test]
fn scopes_free_their_allocations_and_keep_earlier_ones() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let arena = Arena::new(&mut buf);
    let before = arena.alloc(7_u32).unwrap();
    let used = arena.used();
    let sum = arena.scope(|inner| {
        inner.alloc(Counted(&drops)).unwrap();
        let xs = inner.alloc_slice_fill_with(16, |i| i as u32).unwrap();
        assert_eq!(arena.alloc(1_u8), Err(ArenaError::ScopeActive));
        *before += 1; // earlier references stay usable
        xs.iter().sum::<u32>()
    });
    assert_eq!(sum, 120);
    assert_eq!(drops.get(), 1);
    assert_eq!(arena.used(), used);
    assert_eq!(*before, 8);
    assert!(arena.high_water() >= used + 64);
    assert!(arena.alloc(1_u8).is_ok(), "memory is back after the scope");
}

#[test]
fn scopes_nest() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let arena = Arena::new(&mut buf);
    arena.scope(|a| {
        a.alloc(Counted(&drops)).unwrap();
        a.scope(|b| {
            b.alloc(Counted(&drops)).unwrap();
            b.scope(|c| {
                c.alloc(Counted(&drops)).unwrap();
            });
            assert_eq!(drops.get(), 1);
        });
        assert_eq!(drops.get(), 2);
    });
    assert_eq!(drops.get(), 3);
    assert_eq!(arena.used(), 0);
    assert_eq!(arena.remaining(), 4096);
}

#[test]
fn a_panicking_scope_still_gives_memory_back_and_drops() {
    let drops = Cell::new(0);
    let mut buf = buffer(4096);
    let arena = Arena::new(&mut buf);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.scope(|inner| {
            inner.alloc(Counted(&drops)).unwrap();
            panic!("task failed");
        })
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 1);
    assert_eq!(arena.remaining(), 4096);
}

#[test]
fn high_water_tracks_the_peak_across_resets() {
    let mut buf = buffer(1024);
    let mut arena = Arena::new(&mut buf);
    arena.alloc([0_u8; 304]).unwrap();
    arena.reset();
    arena.alloc([0_u8; 104]).unwrap();
    assert_eq!(arena.used(), 104);
    assert_eq!(arena.high_water(), 304);
}

#[test]
fn slices_and_strings_round_trip() {
    let mut buf = buffer(256);
    let arena = Arena::new(&mut buf);
    let xs = arena.alloc_slice_copy(&[1_u64, 2, 3]).unwrap();
    let s = arena.alloc_str("héllo").unwrap();
    xs[0] = 10;
    assert_eq!(xs, &[10, 2, 3]);
    assert_eq!(s, "héllo");
    let ys = arena.alloc_with(|| [5_u16; 4]).unwrap();
    assert_eq!(ys, &[5; 4]);
}

#[test]
fn debug_shows_the_numbers() {
    let mut buf = buffer(64 + WORD);
    let arena = Arena::new(aligned_window(&mut buf, 64));
    arena.alloc(1_u64).unwrap();
    let text = format!("{arena:?}");
    assert!(
        text.contains("capacity: 64") && text.contains("used: 8"),
        "{text}"
    );
}

#[cfg(feature = "allocator-api2")]
#[test]
fn allocator_api2_vec_grows_in_the_arena() {
    let mut buf = buffer(4096);
    let arena = Arena::new(&mut buf);
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    for i in 0..100_u32 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u32>(), 4950);
    assert!(arena.used() >= 400);
    v.shrink_to_fit();
    drop(v);
}

#[cfg(feature = "allocator-api2")]
#[test]
fn a_block_from_before_a_replace_is_not_reclaimed_into_the_new_buffer() {
    use allocator_api2::alloc::Allocator;
    // Two adjacent halves: the new buffer ends where the old one's block
    // starts, so that block's address is the new arena's bump pointer.
    let mut buf = buffer(128);
    let (lower, upper) = buf.split_at_mut(64);
    let arena = Arena::new(upper);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let block = (&arena).allocate(layout).unwrap();
    // SAFETY: no scope is active; `old` is dropped after `arena`.
    let old = unsafe { arena.replace(Arena::new(lower)) };
    assert_eq!(block.cast::<u8>().as_ptr(), arena.ptr.get());
    // SAFETY: the block came from this allocator (before the swap).
    unsafe { (&arena).deallocate(block.cast(), layout) };
    assert_eq!((arena.used(), arena.remaining()), (0, 64));
    assert!(arena.alloc([0_u64; 8]).is_ok());
    assert!(arena.alloc(0_u64).is_err(), "the new buffer is full");
    drop(arena);
    drop(old);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align_shift: u32 },
    AllocDropped,
    Checkpoint,
    Rewind(usize),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..48, 0u32..7).prop_map(|(size, align_shift)| Op::Alloc { size, align_shift }),
        2 => Just(Op::AllocDropped),
        1 => Just(Op::Checkpoint),
        1 => (0usize..8).prop_map(Op::Rewind),
        1 => Just(Op::Reset),
    ]
}

/// The model: a downward bump pointer over `[0, capacity)` in plain integer
/// arithmetic, live blocks with the byte each was filled with, and the number
/// of droppable values that must have been dropped.
struct Model {
    capacity: usize,
    base: usize,
    used: usize,
    blocks: Vec<(usize, usize, u8)>,
    /// Values that need dropping, by `used()` just after their allocation.
    dropped_values: Vec<usize>,
    expected_drops: usize,
    checkpoints: Vec<usize>,
}

impl Model {
    /// Where a request would land, as an offset from the buffer start.
    fn place(&self, size: usize, align: usize) -> Option<usize> {
        let top = self.base + self.capacity - self.used;
        let size = size.div_ceil(WORD) * WORD;
        let start = top.checked_sub(size)? / align * align;
        (start >= self.base).then_some(start)
    }

    fn free_above(&mut self, used: usize) {
        let mark = self.base + self.capacity - used;
        self.blocks.retain(|b| b.0 >= mark);
        let before = self.dropped_values.len();
        // A value is dropped once any of its memory (its drop record, which
        // lies lowest) is freed: never later than its bytes are reused.
        self.dropped_values.retain(|&used_after| used_after <= used);
        self.expected_drops += before - self.dropped_values.len();
        self.used = used;
    }
}

fn run_ops(ops: &[Op], capacity: usize, offset: usize) -> Result<(), TestCaseError> {
    let drops = Cell::new(0);
    let mut buf = buffer(capacity + offset);
    let start = buf[offset..].as_ptr().addr();
    let mut arena = Arena::new(&mut buf[offset..]);
    let base = arena.base.get().addr();
    // The usable region runs from the buffer's first word boundary (the
    // arena's base) to its last; none if the buffer holds no whole word.
    let lead = start.wrapping_neg() % WORD;
    let capacity = if lead >= capacity {
        0
    } else {
        (capacity - lead) / WORD * WORD
    };
    prop_assert_eq!(arena.capacity(), capacity);
    let mut model = Model {
        capacity,
        base,
        used: 0,
        blocks: Vec::new(),
        dropped_values: Vec::new(),
        expected_drops: 0,
        checkpoints: Vec::new(),
    };
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { size, align_shift } => {
                let align = 1 << align_shift;
                let layout = Layout::from_size_align(size, align).unwrap();
                let expected = if size == 0 {
                    Some(0)
                } else {
                    model.place(size, align)
                };
                match (arena.alloc_layout(layout), expected) {
                    (Ok(p), Some(_)) if size == 0 => {
                        prop_assert_eq!(p.as_ptr().addr() % align, 0);
                    }
                    (Ok(p), Some(start)) => {
                        prop_assert_eq!(p.as_ptr().addr(), start);
                        let fill = step as u8;
                        // SAFETY: the block is ours and `size` bytes long.
                        unsafe { p.as_ptr().write_bytes(fill, size) };
                        model.used = base + capacity - start;
                        model.blocks.push((start, size, fill));
                    }
                    (Err(e), None) => prop_assert!(
                        matches!(
                            e,
                            ArenaError::Exhausted { .. } | ArenaError::TooLarge { .. }
                        ),
                        "unexpected error {e:?}"
                    ),
                    (got, want) => prop_assert!(false, "step {step}: got {got:?}, model {want:?}"),
                }
            }
            Op::AllocDropped => {
                let before = arena.used();
                if arena.alloc(Counted(&drops)).is_ok() {
                    model.used = arena.used();
                    model.dropped_values.push(model.used);
                    prop_assert!(model.used > before);
                } else {
                    prop_assert_eq!(arena.used(), before, "a failed alloc must not consume");
                    model.expected_drops += 1; // `alloc` drops what it could not take
                }
            }
            Op::Checkpoint => model.checkpoints.push(arena.checkpoint().used()),
            Op::Rewind(i) => {
                if let Some(&used) = model.checkpoints.get(i) {
                    let cp = Checkpoint { used };
                    if used <= model.used {
                        arena.rewind(cp).unwrap();
                        model.free_above(used);
                    } else {
                        let is_ahead =
                            matches!(arena.rewind(cp), Err(ArenaError::CheckpointAhead { .. }));
                        prop_assert!(is_ahead);
                    }
                }
            }
            Op::Reset => {
                arena.reset();
                model.free_above(0);
            }
        }
        prop_assert_eq!(arena.used(), model.used);
        prop_assert_eq!(arena.remaining(), capacity - model.used);
        prop_assert!(arena.high_water() >= arena.used());
        prop_assert_eq!(drops.get(), model.expected_drops);
        for &(start, size, fill) in &model.blocks {
            let p = arena.base.get().with_addr(start);
            // SAFETY: `p` is within the buffer and the block was initialised.
            let bytes = unsafe { core::slice::from_raw_parts(p, size) };
            prop_assert!(
                bytes.iter().all(|&b| b == fill),
                "block at {start:#x} was overwritten"
            );
        }
    }
    let live = model.dropped_values.len();
    drop(arena);
    prop_assert_eq!(drops.get(), model.expected_drops + live);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 6 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arena_matches_the_model(
        ops in proptest::collection::vec(op(), 0..64),
        capacity in 0usize..512,
        offset in 0usize..8,
    ) {
        run_ops(&ops, capacity, offset)?;
    }
}

#[test]
fn the_empty_arena_refuses_everything_that_takes_space() {
    let drops = Cell::new(0);
    let mut arena = Arena::empty();
    assert_eq!(
        (arena.capacity(), arena.used(), arena.remaining()),
        (0, 0, 0)
    );
    assert!(matches!(
        arena.alloc(1_u8),
        Err(ArenaError::TooLarge { capacity: 0, .. })
    ));
    assert!(arena.alloc_slice_copy(&[1_u32, 2]).is_err());
    assert!(arena.alloc(Counted(&drops)).is_err());
    assert_eq!(drops.get(), 1, "the refused value is dropped");
    // Zero-sized requests take no space, even here.
    assert!(arena.alloc(()).is_ok());
    assert!(arena.alloc_slice_copy::<u8>(&[]).is_ok());
    arena.reset();
    assert_eq!(arena.used(), 0);
}

#[test]
fn replace_hands_back_the_full_arena_with_its_values() {
    let drops = Cell::new(0);
    let mut first = buffer(64);
    let mut second = buffer(64);
    let arena = Arena::new(&mut first);
    let a = arena.alloc(Counted(&drops)).unwrap();
    let n = arena.alloc(7_u64).unwrap();
    let first_used = arena.used();
    // SAFETY: no scope is active, and `full` is dropped after the last use
    // of `a` and `n`.
    let full = unsafe { arena.replace(Arena::new(&mut second)) };
    assert_eq!((full.used(), arena.used()), (first_used, 0));
    assert_eq!(arena.capacity(), 64);
    let m = arena.alloc(8_u64).unwrap();
    let b = arena.alloc(Counted(&drops)).unwrap();
    assert_eq!((*n, *m), (7, 8));
    let _ = (a, b);
    // Each arena drops its own values, once.
    drop(full);
    assert_eq!(drops.get(), 1);
    drop(arena);
    assert_eq!(drops.get(), 2);
}

#[test]
fn replace_while_a_closure_allocates_keeps_the_outer_value() {
    // The growing arena's case: a closure given to `alloc_with` swaps the
    // arena it allocates in; the outer call's value lands in the slot it
    // reserved before.
    let mut first = buffer(64);
    let mut second = buffer(64);
    let arena = Arena::new(&mut first);
    let mut next = Some(Arena::new(&mut second));
    let mut full = None;
    let outer = arena
        .alloc_with(|| {
            // SAFETY: no scope is active; `full` outlives every use below.
            full = Some(unsafe { arena.replace(next.take().unwrap()) });
            *arena.alloc(2_u64).unwrap() + 1
        })
        .unwrap();
    assert_eq!(*outer, 3);
    let full = full.unwrap();
    assert_eq!((full.used(), arena.used()), (8, 8));
    drop(full);
}
