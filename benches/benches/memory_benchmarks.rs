//! Criterion benches for the arena cases of the report (section `arena`)
//! and the engine's hot loop (section `engine`, one worker), over the same
//! workload functions and driver:
//!
//! ```text
//! cargo bench -p knhk-benches --bench memory_benchmarks
//! ```

use std::hint::black_box;
use std::mem::MaybeUninit;

use bumpalo::Bump;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use knhk_benches::workloads::{
    batch_bytes, box_batch, bumpalo_batch, knhk_batch, make_u64, TaskState,
};
use knhk_core::arena::Arena;

fn alloc_batches<T: Copy, F: Fn(u64) -> T + Copy>(
    c: &mut Criterion,
    operation: &str,
    sizes: &[usize],
    make: F,
) {
    let mut group = c.benchmark_group(format!("arena/{operation}"));
    for &n in sizes {
        group.throughput(Throughput::Elements(n as u64));
        let mut buf = vec![MaybeUninit::<u8>::uninit(); batch_bytes::<T>(n)];
        let mut arena = Arena::new(&mut buf);
        group.bench_function(BenchmarkId::new("knhk", n), |b| {
            b.iter(|| knhk_batch(&mut arena, n, make))
        });
        let mut bump = Bump::with_capacity(batch_bytes::<T>(n));
        group.bench_function(BenchmarkId::new("bumpalo", n), |b| {
            b.iter(|| bumpalo_batch(&mut bump, n, make))
        });
        let mut held = Vec::with_capacity(n);
        group.bench_function(BenchmarkId::new("box", n), |b| {
            b.iter(|| box_batch(&mut held, n, make))
        });
    }
    group.finish();
}

fn alloc(c: &mut Criterion) {
    alloc_batches(c, "alloc_u64", &[100, 1000, 10_000], make_u64);
    alloc_batches(c, "alloc_task_state", &[1000], TaskState::new);
}

/// The reset alone: criterion builds batches of filled arenas untimed
/// (knhk-std's owned `Arena` is the core arena over a heap buffer) and times
/// only the resets.
fn reset(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena/reset");
    for n in [100_usize, 10_000] {
        group.bench_function(BenchmarkId::new("knhk", n), |b| {
            b.iter_batched_ref(
                || {
                    let arena = knhk_std::memory::Arena::with_capacity(batch_bytes::<u64>(n))
                        .expect("the system has memory for the batch");
                    for i in 0..n as u64 {
                        black_box(arena.alloc(i).expect("sized for the batch"));
                    }
                    arena
                },
                |arena| arena.reset(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("bumpalo", n), |b| {
            b.iter_batched_ref(
                || {
                    let bump = Bump::with_capacity(batch_bytes::<u64>(n));
                    for i in 0..n as u64 {
                        black_box(bump.alloc(i));
                    }
                    bump
                },
                |bump| bump.reset(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("box", n), |b| {
            b.iter_batched_ref(
                || (0..n as u64).map(Box::new).collect::<Vec<_>>(),
                |held| held.clear(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The engine's loop, one batch of 1000 tasks on one worker, per stack
/// (the report's `engine/batch/1`).
fn engine(c: &mut Criterion) {
    use knhk_benches::engine::{
        self, batch_ids, run_batch, HandPlain, HandTuned, KnhkStack, Lookups, Scratch, Stack,
        TASKS_PER_BATCH,
    };
    fn bench<S: Stack>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        stack: &S,
        ids: &[knhk_core::WorkflowSpecId],
    ) {
        let mut worker = stack.worker();
        let mut scratch = Scratch::default();
        let mut batches = ids.chunks(TASKS_PER_BATCH).cycle();
        group.bench_function(BenchmarkId::new(name, 1), |b| {
            b.iter(|| {
                let batch = batches.next().expect("cycled");
                run_batch(stack, &mut worker, &mut scratch, batch)
            })
        });
    }
    let dir = knhk_benches::report_dir().join("engine-bench");
    let (knhk_path, plain_path) = engine::files(&dir);
    let ids = batch_ids(0, 256, engine::SPECS);
    let mut group = c.benchmark_group("engine/batch");
    group.throughput(Throughput::Elements(TASKS_PER_BATCH as u64));
    bench(
        &mut group,
        "knhk",
        &KnhkStack::open(&knhk_path, Lookups::Batched),
        &ids,
    );
    bench(
        &mut group,
        "knhk_per_task",
        &KnhkStack::open(&knhk_path, Lookups::PerTask),
        &ids,
    );
    bench(
        &mut group,
        "hand_plain",
        &HandPlain::open(&plain_path, false),
        &ids,
    );
    bench(
        &mut group,
        "hand_tuned",
        &HandTuned::open(&plain_path, true),
        &ids,
    );
    group.finish();
}

criterion_group!(benches, alloc, reset, engine);
criterion_main!(benches);
