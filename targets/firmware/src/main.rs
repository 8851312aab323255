//! knhk-core's conformance checks on a Cortex-M, under QEMU with
//! semihosting: the arena, the kernels against a scalar oracle, the
//! counters, the registry, the store reader over a version-3 store made
//! by knhk-std's writer at build time, and (feature `heapless`) a store
//! written on the device into `heapless::Vec`s and the filter into one.
//! Prints each capability's result and exits 0 only if every check passed.
#![no_std]
#![no_main]

use portable_atomic::{AtomicU32, Ordering};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

/// Checks that failed, across all capabilities.
static FAILED: AtomicU32 = AtomicU32::new(0);
/// Checks that ran.
static RAN: AtomicU32 = AtomicU32::new(0);

/// Writes text to the host's stdout. No `core::fmt`: the firmware's size
/// then measures knhk-core, not the formatting machinery.
fn out(text: &str) {
    if let Ok(mut stdout) = hio::hstdout() {
        let _ = stdout.write_all(text.as_bytes());
    }
}

/// Writes a number in decimal.
fn out_number(mut n: u32) {
    let mut digits = [0_u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out(core::str::from_utf8(&digits[at..]).unwrap_or("?"));
}

fn check(what: &str, ok: bool) {
    RAN.fetch_add(1, Ordering::Relaxed);
    if !ok {
        FAILED.fetch_add(1, Ordering::Relaxed);
        out("FAIL: ");
        out(what);
        out("\n");
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    out("PANIC\n");
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}

#[cfg(feature = "arena")]
fn arena() {
    use core::mem::MaybeUninit;
    use knhk_core::arena::{Arena, ArenaError};

    #[repr(align(64))]
    struct Line(u8);

    static DROPS: AtomicU32 = AtomicU32::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    let mut buf = [MaybeUninit::<u8>::uninit(); 512];
    let mut arena = Arena::new(&mut buf[3..]);
    let line = arena.alloc(Line(7));
    check(
        "arena: 64-byte alignment",
        matches!(&line, Ok(l) if (&**l as *const Line as usize) % 64 == 0 && l.0 == 7),
    );
    let words = arena.alloc_slice_fill_with(10, |i| i as u32 * 3);
    check("arena: slices", matches!(words, Ok(w) if w[9] == 27));
    for _ in 0..3 {
        let _ = arena.alloc(Counted);
    }
    check(
        "arena: exhaustion is an error",
        matches!(arena.alloc([0_u8; 600]), Err(ArenaError::TooLarge { .. })),
    );
    arena.reset();
    check(
        "arena: reset drops each value once",
        DROPS.load(Ordering::Relaxed) == 3,
    );
    check("arena: reset frees everything", arena.used() == 0);
    let mark = arena.checkpoint();
    let _ = arena.alloc_str("scratch");
    check(
        "arena: rewind",
        arena.rewind(mark).is_ok() && arena.used() == 0,
    );
}

#[cfg(feature = "kernels")]
fn kernels() {
    use knhk_core::kernels;

    let mut ids = [0_u32; 203];
    let mut seed = 12345_u32;
    for id in ids.iter_mut() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *id = (seed >> 16) % 7 + 1;
    }
    let scalar_count = ids.iter().filter(|&&x| x == 3).count();
    check("kernels: count", kernels::count(&ids, 3) == scalar_count);
    check(
        "kernels: any",
        kernels::any(&ids, 5) && !kernels::any(&ids, 9),
    );
    let mut out = [0_usize; 203];
    let n = kernels::filter_into(&ids, 3, &mut out);
    check(
        "kernels: filter",
        n == scalar_count && out[..n].iter().all(|&i| ids[i] == 3),
    );
    let values: [u64; 9] = [5, u64::MAX, 0, 1 << 53, (1 << 63) + 1, 7, 7, 42, 1 << 60];
    let sum: u128 = values.iter().map(|&v| v as u128).sum();
    check("kernels: exact sum", kernels::sum_u64(&values) == sum);
    check("kernels: max", kernels::max_u64(&values) == Some(u64::MAX));
    check("kernels: min", kernels::min_u64(&values) == Some(0));
    check(
        "kernels: exact variance",
        kernels::variance_u64(&[1 << 60, (1 << 60) + 2]) == Some(1.0),
    );
}

#[cfg(feature = "counters")]
fn counters() {
    use knhk_core::counters::{ExecutorStats, ShardedCounter};

    let executor = ExecutorStats::new();
    executor.inc_active();
    executor.inc_completed();
    executor.inc_failed();
    check(
        "counters: seed snippet gives (0, 1, 1)",
        executor.snapshot() == (0, 1, 1),
    );
    let counter = ShardedCounter::<2>::new();
    if let Some(shard) = counter.claim() {
        shard.add(40);
    }
    counter.add_shared(2);
    check("counters: sharded sum", counter.sum() == 42);
}

#[cfg(feature = "registry")]
fn registry() {
    use knhk_core::patterns::PatternId;
    use knhk_core::registry::{PatternTable, RegistryError};

    static TABLE: PatternTable<u32> = PatternTable::new();
    check(
        "registry: register",
        TABLE.register(PatternId(2), 20).is_ok(),
    );
    check("registry: get", TABLE.get(PatternId(2)) == Some(&20));
    check(
        "registry: set once",
        TABLE.register(PatternId(2), 21).is_err(),
    );
    check(
        "registry: unknown ids refused",
        TABLE.register(PatternId(44), 1)
            == Err(RegistryError::UnknownPattern { id: PatternId(44) }),
    );
    check(
        "registry: names",
        PatternId(43).name() == Some("Explicit Termination"),
    );
}

#[cfg(feature = "store")]
fn store() {
    use knhk_core::store::{StoreView, Version};
    use knhk_core::WorkflowSpecId;

    static STORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/store.bin"));
    let Ok(store) = StoreView::parse(STORE) else {
        check("store: parses", false);
        return;
    };
    check(
        "store: version 3",
        store.version() == Version::V3 && store.len() == 20,
    );

    let all_found = (1..=20_u8).all(|n| {
        let data = store.get(&WorkflowSpecId::from_bytes([n; 16]));
        matches!(data, Some(d) if d.len() == n as usize * 3 && d.iter().enumerate().all(|(i, &b)| b == (i as u8) ^ n))
    });
    check("store: every workflow found", all_found);
    check(
        "store: misses",
        store.get(&WorkflowSpecId::from_bytes([99; 16])).is_none(),
    );
    check("store: verify", store.verify().is_ok());
    // Damage without a copy of the store: every truncation is caught
    // (a copy to flip a byte in would cost the firmware a 2 KiB buffer
    // and the code to clear and fill it).
    let caught = (1..STORE.len()).step_by(97).all(|cut| {
        StoreView::parse(&STORE[..STORE.len() - cut]).map_or(true, |s| s.verify().is_err())
    });
    check("store: damage caught", caught);
}

#[cfg(feature = "heapless")]
fn heapless_vecs() {
    use heapless::Vec;
    use knhk_core::kernels;
    use knhk_core::store::{IndexSlot, SinkFull, StoreView, StoreWriter, WriteError};
    use knhk_core::WorkflowSpecId;

    // Written here, with no allocator: the store and the writer's index
    // in buffers whose capacity is in their type.
    let id = |n: u8| WorkflowSpecId::from_bytes([n; 16]);
    // 528 bytes: header 40, four 34-byte workflows with the padding that
    // aligns their frames (24 to 30 bytes each), index, checksums, trailer.
    let mut file = Vec::<u8, 640>::new();
    let written = StoreWriter::new(&mut file, Vec::<IndexSlot, 8>::new()).and_then(|mut writer| {
        for n in 1..=4 {
            writer.add(id(n), &[n; 10])?;
        }
        writer.finish()
    });
    check(
        "heapless: store written into a Vec",
        matches!(written, Ok(len) if len as usize == file.len()),
    );
    let read_back = StoreView::parse(&file).is_ok_and(|store| {
        store.len() == 4
            && store.get(&id(3)) == Some(&[3; 10][..])
            && store.get(&id(5)).is_none()
            && store.verify().is_ok()
    });
    check("heapless: store parses, finds, verifies", read_back);

    let mut tiny = Vec::<u8, 32>::new();
    check(
        "heapless: a full Vec is an error",
        StoreWriter::new(&mut tiny, Vec::<IndexSlot, 2>::new()).err()
            == Some(WriteError::Sink(SinkFull {
                needed: 16,
                available: 8,
            })),
    );
    let mut file = Vec::<u8, 512>::new();
    let third = StoreWriter::new(&mut file, Vec::<IndexSlot, 4>::new()).and_then(|mut writer| {
        writer.add(id(1), b"one")?;
        writer.add(id(2), b"two")?;
        writer.add(id(3), b"three")
    });
    check(
        "heapless: a full index is an error",
        third == Err(WriteError::IndexFull { capacity: 4 }),
    );

    let ids: [u32; 150] = core::array::from_fn(|i| (i as u32).wrapping_mul(2_654_435_761) >> 29);
    let scalar_count = ids.iter().filter(|&&x| x == 3).count();
    let mut found = Vec::<usize, 150>::new();
    check(
        "heapless: filter into a Vec",
        kernels::filter_into_vec(&ids, 3, &mut found) == Ok(())
            && found.len() == scalar_count
            && found.iter().all(|&i| ids[i] == 3),
    );
    let mut few = Vec::<usize, 4>::new();
    check(
        "heapless: filter into a full Vec",
        scalar_count > 4
            && kernels::filter_into_vec(&ids, 3, &mut few) == Err(scalar_count)
            && few[..] == found[..4],
    );
}

#[entry]
fn main() -> ! {
    #[cfg(feature = "arena")]
    arena();
    #[cfg(feature = "kernels")]
    kernels();
    #[cfg(feature = "counters")]
    counters();
    #[cfg(feature = "registry")]
    registry();
    #[cfg(feature = "store")]
    store();
    #[cfg(feature = "heapless")]
    heapless_vecs();

    let (ran, failed) = (RAN.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed));
    out("knhk firmware: ");
    out_number(ran - failed);
    out(" passed, ");
    out_number(failed);
    out(" failed\n");
    debug::exit(if failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {}
}
