//! A bounded soak of knhk-std's concurrent parts, with fixed seeds:
//!
//! 1. a writer replaces a store file atomically hundreds of times while
//!    reader threads load it through `MmapWorkflowReader` and check every
//!    payload they get against what that version of the store holds (no
//!    torn read, no error);
//! 2. thousands of short-lived threads churn through the counting
//!    allocator, an arena pool and the per-thread sharded statistics (so
//!    thread slots are handed on again and again), and every total is
//!    checked exactly at the end;
//! 3. sixteen threads share a pool of two arenas, checking that no arena is
//!    ever held by two threads at once.
//!
//! Not part of `cargo test`: run it with
//! `cargo run --release -p knhk-tests --bin soak [SECONDS]` (CI bounds it).
//! It prints what it did; its last line is `N passed, N failed`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use knhk_workflow_engine::initialization::ResourcePool;
use knhk_workflow_engine::memory::{CountingAlloc, ThreadShardedStats, ThreadTally};
use knhk_workflow_engine::storage::{MmapWorkflowReader, WorkflowStoreWriter};
use knhk_workflow_engine::WorkflowSpecId;

/// Workflows in each version of the store.
const WORKFLOWS: u64 = 64;

fn spec_id(n: u64) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes(((u128::from(n) << 64) | 0x50A4).to_le_bytes())
}

/// What version `version` of the store holds for workflow `n`: the two
/// numbers and filler whose length depends on both.
fn payload(version: u64, n: u64) -> Vec<u8> {
    let mut p = format!("v{version} n{n} ").into_bytes();
    p.resize(16 + ((version * 7 + n * 13) % 200) as usize, b'.');
    p
}

/// Parses a payload back to its version, checking every byte.
fn check_payload(data: &[u8], n: u64) -> Result<u64, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not text: {e}"))?;
    let version: u64 = text
        .strip_prefix('v')
        .and_then(|t| t.split(' ').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no version in {text:?}"))?;
    if data != payload(version, n) {
        return Err(format!("torn or wrong payload for workflow {n}: {text:?}"));
    }
    Ok(version)
}

fn write_version(path: &Path, version: u64) -> Result<(), String> {
    let mut writer = WorkflowStoreWriter::create(path).map_err(|e| e.to_string())?;
    for n in 0..WORKFLOWS {
        writer
            .add(spec_id(n), &payload(version, n))
            .map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// One part of the soak: runs until its deadline, says what it did.
type Part = fn(Instant) -> Result<String, String>;

struct Outcome {
    name: &'static str,
    result: Result<String, String>,
}

/// 1. Replacements under readers.
fn store_replacements(deadline: Instant) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("knhk-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("workflows.knhk");
    write_version(&path, 0)?;
    let written = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    let reloads = AtomicU64::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for reader in 0..2_u64 {
            let (path, written, done, lookups, reloads, failures) =
                (&path, &written, &done, &lookups, &reloads, &failures);
            s.spawn(move || {
                let cache = MmapWorkflowReader::new();
                let mut rng = 0x9E37_79B9_u64 + reader;
                let mut last_version = 0;
                let fail = |what: String| failures.lock().unwrap().push(what);
                while !done.load(Relaxed) {
                    let store = match cache.load(path) {
                        Ok(store) => store,
                        Err(e) => {
                            fail(format!("reader {reader}: load failed: {e}"));
                            return;
                        }
                    };
                    reloads.fetch_add(1, Relaxed);
                    let mut version = None;
                    for _ in 0..32 {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let n = rng % WORKFLOWS;
                        match store.try_get(&spec_id(n)) {
                            Ok(Some(data)) => match check_payload(data, n) {
                                // One mapping is one version, throughout.
                                Ok(v) if version.is_none_or(|seen| seen == v) => version = Some(v),
                                Ok(v) => fail(format!(
                                    "reader {reader}: versions {version:?} and {v} in one mapping"
                                )),
                                Err(e) => fail(format!("reader {reader}: {e}")),
                            },
                            Ok(None) => fail(format!("reader {reader}: workflow {n} is missing")),
                            Err(e) => fail(format!("reader {reader}: workflow {n}: {e}")),
                        }
                        lookups.fetch_add(1, Relaxed);
                    }
                    if let Some(v) = version {
                        if v < last_version || v > written.load(Relaxed) + 1 {
                            fail(format!("reader {reader}: version {v} after {last_version}"));
                        }
                        last_version = v;
                    }
                }
            });
        }
        let mut version = 0;
        while version < 300 && Instant::now() < deadline {
            version += 1;
            if let Err(e) = write_version(&path, version) {
                failures.lock().unwrap().push(format!("writer: {e}"));
                break;
            }
            written.store(version, Relaxed);
        }
        done.store(true, Relaxed);
    });
    let _ = std::fs::remove_dir_all(&dir);
    let failures = failures.into_inner().unwrap();
    let replaced = written.load(Relaxed);
    if let Some(first) = failures.first() {
        return Err(format!("{} failures, the first: {first}", failures.len()));
    }
    if replaced < 100 {
        return Err(format!("only {replaced} replacements before the deadline"));
    }
    Ok(format!(
        "{replaced} atomic replacements, {} loads and {} checked lookups by 2 readers",
        reloads.load(Relaxed),
        lookups.load(Relaxed)
    ))
}

static COUNTED: CountingAlloc<System, ThreadTally> =
    CountingAlloc::with_tally(System, ThreadTally::new());

/// 2. Short-lived threads through the counting allocator, a pool and the
///    sharded statistics.
fn thread_churn(deadline: Instant) -> Result<String, String> {
    const PER_THREAD: u64 = 50;
    let stats = ThreadShardedStats::new();
    let pool = ResourcePool::new(16 * 1024, 2, 4).map_err(|e| e.to_string())?;
    let before = COUNTED.snapshot();
    let mut threads = 0_u64;
    let layout = Layout::from_size_align(48, 8).expect("a valid layout");
    // Waves of 8 threads at once; each thread is gone before the next
    // wave, so their slots are handed on (more threads than slots in all).
    while threads < 3000 && Instant::now() < deadline {
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (stats, pool) = (&stats, &pool);
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        stats.inc_active();
                        // SAFETY: the layout is non-zero; the block is freed
                        // once, with the same layout.
                        unsafe {
                            let block = COUNTED.alloc(layout);
                            assert!(!block.is_null(), "out of memory");
                            block.write_bytes(i as u8, layout.size());
                            COUNTED.dealloc(block, layout);
                        }
                        let arena = pool.checkout().expect("an arena");
                        arena.alloc(i).expect("room in the arena");
                        drop(arena);
                        stats.inc_completed();
                    }
                });
            }
        });
        threads += 8;
    }
    let after = COUNTED.snapshot();
    let expected = threads * PER_THREAD;
    let allocations = after.allocations - before.allocations;
    let frees = after.deallocations - before.deallocations;
    if allocations != expected || frees != expected || after.current != before.current {
        return Err(format!(
            "counting allocator: {allocations} allocations and {frees} frees, expected {expected} each; {} bytes live",
            after.current
        ));
    }
    if stats.snapshot() != (0, expected, 0) {
        return Err(format!(
            "sharded statistics {:?}, expected (0, {expected}, 0)",
            stats.snapshot()
        ));
    }
    if pool.live() > 4 {
        return Err(format!(
            "the pool made {} arenas, at most 4 allowed",
            pool.live()
        ));
    }
    Ok(format!(
        "{threads} short-lived threads, {expected} counted allocations, checkouts and tasks, all exact"
    ))
}

/// 3. Sixteen threads on a pool of two arenas.
fn pool_exclusivity(deadline: Instant) -> Result<String, String> {
    let pool = ResourcePool::new(4096, 2, 2).map_err(|e| e.to_string())?;
    let held: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    let checkouts = AtomicU64::new(0);
    let clash = AtomicBool::new(false);
    let start = std::sync::Barrier::new(16);
    std::thread::scope(|s| {
        for t in 0..16_u64 {
            let (pool, held, checkouts, clash, start) = (&pool, &held, &checkouts, &clash, &start);
            s.spawn(move || {
                // All sixteen start together, so they really contend.
                start.wait();
                let mut i = 0;
                while i < 20_000 && Instant::now() < deadline && !clash.load(Relaxed) {
                    let arena = pool.checkout().expect("an arena");
                    // A fresh arena hands out its top word first: its address
                    // names the arena.
                    let mark = arena.alloc(t).expect("room");
                    let id = std::ptr::from_mut(mark).addr();
                    if !held.lock().unwrap().insert(id) {
                        clash.store(true, Relaxed);
                    }
                    std::hint::black_box(arena.alloc([t; 4]).expect("room"));
                    if i % 64 == 0 {
                        // Hand the core over while holding the arena.
                        std::thread::yield_now();
                    }
                    if *mark != t {
                        clash.store(true, Relaxed);
                    }
                    held.lock().unwrap().remove(&id);
                    drop(arena);
                    checkouts.fetch_add(1, Relaxed);
                    i += 1;
                }
            });
        }
    });
    if clash.load(Relaxed) {
        return Err("an arena was held by two threads at once".into());
    }
    if pool.live() != 2 {
        return Err(format!("the pool made {} arenas, not 2", pool.live()));
    }
    Ok(format!(
        "16 threads, 2 arenas, {} checkouts, never two holders",
        checkouts.load(Relaxed)
    ))
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    // Each part gets a third of the time.
    let part = Duration::from_secs(seconds.max(3)) / 3;
    let parts: [(&'static str, Part); 3] = [
        ("store replacements under readers", store_replacements),
        ("thread churn", thread_churn),
        ("pool exclusivity", pool_exclusivity),
    ];
    let mut outcomes = Vec::new();
    for (name, run) in parts {
        let started = Instant::now();
        let result = run(started + part);
        println!(
            "soak: {name}: {} ({:.1} s)",
            match &result {
                Ok(what) => format!("ok: {what}"),
                Err(why) => format!("FAILED: {why}"),
            },
            started.elapsed().as_secs_f64()
        );
        outcomes.push(Outcome { name, result });
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    for o in outcomes.iter().filter(|o| o.result.is_err()) {
        eprintln!("soak: {} failed", o.name);
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
