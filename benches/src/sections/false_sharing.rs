//! Section `false_sharing`: threads each incrementing their own counter.
//!
//! `unpadded` puts the counters side by side, so they share a cache line
//! and every increment fights for it; `knhk_padded` gives each its own
//! [`CachePadded`] line; `knhk_sharded` is a [`ShardedCounter`], whose
//! owner-only shards take a plain load and store instead of a locked
//! `fetch_add`. `single_thread` is one thread doing all the increments on
//! one uncontended atomic. `ns_per_op` is wall time over all increments.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use knhk_core::cache::CachePadded;
use knhk_core::counters::ShardedCounter;

use super::{Context, Section};
use crate::harness::{on_threads, timed, SideBySide};
use crate::targets::Target;

/// The false-sharing section.
pub const SECTION: Section = Section {
    name: "false_sharing",
    about: "threads incrementing their own counters: padded, sharded, adjacent",
    run,
    targets: &[
        Target::RatioAtLeast {
            case: "increment/2",
            numerator: "unpadded",
            denominator: "knhk_sharded",
            min: 5.0,
        },
        Target::RatioAtLeast {
            case: "increment/2",
            numerator: "unpadded",
            denominator: "knhk_padded",
            min: 1.3,
        },
    ],
};

/// Shards of the sharded counter: enough for `--threads` up to 256.
const SHARDS: usize = 256;

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let threads = cfg.threads;
    let per_thread: u64 = if cfg.quick { 1_000_000 } else { 10_000_000 };
    let rounds = if cfg.quick { 3 } else { 5 };
    ctx.begin(SECTION.name, 4);
    let case = format!("increment/{threads}");
    let total = per_thread * threads as u64;

    let padded: Vec<CachePadded<AtomicU64>> = (0..threads)
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect();
    let sharded: Box<ShardedCounter<SHARDS>> = Box::new(ShardedCounter::new());
    let adjacent: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let single = AtomicU64::new(0);

    let results = SideBySide::new()
        .sampled("knhk_padded", || {
            on_threads(threads, total, |t| {
                for _ in 0..per_thread {
                    padded[t].fetch_add(1, Relaxed);
                }
            })
        })
        .sampled("knhk_sharded", || {
            on_threads(threads, total, |_| {
                let shard = sharded.claim().expect("a shard per thread");
                for _ in 0..per_thread {
                    shard.add(1);
                }
            })
        })
        .sampled("unpadded", || {
            on_threads(threads, total, |t| {
                for _ in 0..per_thread {
                    adjacent[t].fetch_add(1, Relaxed);
                }
            })
        })
        .sampled("single_thread", || {
            let ((), mut s) = timed(|| {
                for _ in 0..total {
                    single.fetch_add(1, Relaxed);
                }
            });
            s.ops = total;
            s
        })
        .run_rounds(rounds);
    ctx.record_all(&case, results);

    // Every increment landed: the counters are exact, whatever the layout.
    let done = (rounds as u64) * total;
    assert_eq!(padded.iter().map(|c| c.load(Relaxed)).sum::<u64>(), done);
    assert_eq!(sharded.sum(), done);
    assert_eq!(adjacent.iter().map(|c| c.load(Relaxed)).sum::<u64>(), done);
    assert_eq!(black_box(single.load(Relaxed)), done);
}
