//! Section `engine`: the headline measurement. A workflow engine's hot loop
//! ([`crate::engine`]) over 100,000 workflow specs of 200 to 4000 bytes
//! (210 MB), in batches of 1000 tasks, on knhk and on the best stack a user
//! could assemble by hand, with the same driver code:
//!
//! - `knhk`: knhk's best API (batched, prefetching lookups);
//! - `knhk_per_task`: the same, one lookup per task;
//! - `hand_plain`: bumpalo, memmap2 + `HashMap` (SipHash), shared
//!   `CachePadded` counters, `OnceLock` registry, iterator statistics;
//! - `hand_tuned`: the same with foldhash and counters per worker.
//!
//! Cases `batch/1` and `batch/2` (worker threads; ns per task) and
//! `open/100000` (ns per open: knhk maps and parses its store, the hand
//! stacks map their file and build their index).

use std::hint::black_box;

use super::{Context, Section};
use crate::engine::{
    self, batch_ids, run_batches, HandPlain, HandTuned, KnhkStack, Lookups, Stack, TASKS_PER_BATCH,
};
use crate::harness::{on_threads, timed, Sample, SideBySide};
use crate::heap_count;
use crate::targets::Target;

/// The engine section.
pub const SECTION: Section = Section {
    name: "engine",
    about: "an engine's hot loop end to end: knhk vs bumpalo + memmap2/HashMap + CachePadded + OnceLock",
    run,
    targets: &[
        Target::ratio_at_most("batch/1", "knhk", "hand_tuned", 0.5),
        Target::ratio_at_most("batch/2", "knhk", "hand_tuned", 0.5),
        Target::ratio_at_most("batch/1", "knhk_per_task", "hand_tuned", 1.0),
        Target::ratio_at_most("batch/2", "knhk_per_task", "hand_tuned", 1.0),
        Target::AllocationsAtMost {
            case: "batch/1",
            subject: "knhk",
            max: 0.0,
        },
    ],
};

/// Batches per worker in one sample.
const BATCHES: usize = 64;
/// knhk opens per sample.
const OPENS: usize = 16;

/// One sample of `stack` on `threads` workers, each over its own ids.
fn sample<S: Stack>(stack: &S, ids: &[Vec<knhk_core::WorkflowSpecId>]) -> Sample {
    if ids.len() == 1 {
        let (sum, mut s) = timed(|| run_batches(stack, &ids[0]));
        black_box(sum);
        s.ops = ids[0].len() as u64;
        s
    } else {
        let tasks = ids.iter().map(Vec::len).sum::<usize>() as u64;
        on_threads(ids.len(), tasks, |t| {
            black_box(run_batches(stack, &ids[t]));
        })
    }
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    ctx.begin(SECTION.name, 11);
    let dir = crate::report_dir().join("engine-bench");
    let (knhk_path, plain_path) = engine::files(&dir);
    let rounds = if cfg.quick { 7 } else { 21 };

    let knhk = KnhkStack::open(&knhk_path, Lookups::Batched);
    let per_task = KnhkStack::open(&knhk_path, Lookups::PerTask);
    let plain = HandPlain::open(&plain_path, false);
    let tuned = HandTuned::open(&plain_path, true);
    assert_eq!(plain.len(), engine::SPECS as usize);

    for threads in [1, 2] {
        let ids: Vec<_> = (0..threads as u64)
            .map(|w| batch_ids(w, BATCHES, engine::SPECS))
            .collect();
        // Warm up: fault every stack's mapping in and check they agree.
        let warm: Vec<_> = (0..3)
            .map(|w| batch_ids(100 + w, 100, engine::SPECS))
            .collect();
        for ids in &warm {
            let expected = run_batches(&knhk, ids);
            assert_eq!(run_batches(&per_task, ids), expected);
            assert_eq!(run_batches(&plain, ids), expected);
            assert_eq!(run_batches(&tuned, ids), expected);
        }
        let results = SideBySide::new()
            .sampled("knhk", || sample(&knhk, &ids))
            .sampled("knhk_per_task", || sample(&per_task, &ids))
            .sampled("hand_plain", || sample(&plain, &ids))
            .sampled("hand_tuned", || sample(&tuned, &ids))
            .run_rounds(rounds);
        let case = format!("batch/{threads}");
        ctx.record_all(&case, results);
        if threads == 1 {
            // Heap allocations of a run of batches, on a worker that already
            // exists (a worker's arena is made once, when it starts).
            for (subject, (a, b)) in [
                ("knhk", allocations(&knhk, &ids[0])),
                ("knhk_per_task", allocations(&per_task, &ids[0])),
                ("hand_plain", allocations(&plain, &ids[0])),
                ("hand_tuned", allocations(&tuned, &ids[0])),
            ] {
                ctx.annotate(&case, subject, a, b);
            }
        }
    }

    let opens = SideBySide::new()
        .sampled("knhk", || {
            let (stores, mut s) = timed(|| {
                (0..OPENS)
                    .map(|_| KnhkStack::open(&knhk_path, Lookups::Batched))
                    .collect::<Vec<_>>()
            });
            black_box(stores.len());
            s.ops = OPENS as u64;
            s
        })
        .sampled("hand_plain", || {
            let (stack, mut s) = timed(|| HandPlain::open(&plain_path, false));
            black_box(stack.len());
            s.ops = 1;
            s
        })
        .sampled("hand_tuned", || {
            let (stack, mut s) = timed(|| HandTuned::open(&plain_path, true));
            black_box(stack.len());
            s.ops = 1;
            s
        })
        .run_rounds(if cfg.quick { 5 } else { 11 });
    ctx.record_all(&format!("open/{}", engine::SPECS), opens);
}

/// Heap allocations and bytes per task of running `ids` on a worker made
/// beforehand (outside what is counted).
fn allocations<S: Stack>(stack: &S, ids: &[knhk_core::WorkflowSpecId]) -> (f64, f64) {
    let mut worker = stack.worker();
    let mut scratch = engine::Scratch::default();
    let (sum, allocations, bytes) = heap_count::count(|| {
        ids.chunks(TASKS_PER_BATCH)
            .map(|batch| engine::run_batch(stack, &mut worker, &mut scratch, batch))
            .fold(0, u64::wrapping_add)
    });
    black_box(sum);
    let tasks = ids.len() as f64;
    (allocations as f64 / tasks, bytes as f64 / tasks)
}
