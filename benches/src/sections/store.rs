//! Section `store`: stores of n workflows of about 1 KiB. Opening one
//! (`knhk_v2`: map and parse; `v1_scan`: map a version-1 file and build a
//! `HashMap` index, as the design document did; `read_scan`: `fs::read` it
//! and build the index), then looking workflows up, hits and misses,
//! against a `HashMap<Uuid, (offset, len)>` over the same bytes.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};

use knhk_core::store::layout::FRAME;
use knhk_core::WorkflowSpecId;
use knhk_std::storage::{MmapWorkflowStore, WorkflowStoreWriter};

use super::{Context, Section};
use crate::harness::{timed, SideBySide};
use crate::targets::Target;

/// The store section.
pub const SECTION: Section = Section {
    name: "store",
    about: "workflow store: open (knhk v2 vs v1 scan vs read+scan) and lookups vs HashMap",
    run,
    targets: &[
        Target::RatioAtLeast {
            case: "open/100000",
            numerator: "v1_scan",
            denominator: "knhk_v2",
            min: 1000.0,
        },
        Target::Flat {
            subject: "knhk_v2",
            from: "open/1000",
            to: "open/1000000",
            max: 1.5,
        },
        Target::RatioAtMost {
            case: "get_hit/100000",
            numerator: "knhk_v2",
            denominator: "hashmap",
            max: 1.5,
        },
    ],
};

const PAYLOAD: usize = 1000;
const LOOKUPS: usize = 1024;
/// knhk opens per sample (an open is microseconds; the baselines' are
/// milliseconds and take one per sample).
const OPENS: usize = 16;

fn spec_id(n: u64) -> WorkflowSpecId {
    // Spread like random v4 UUIDs, reproducibly.
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
    let b = (n ^ 0xC2B2_AE3D_27D4_EB4F).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    WorkflowSpecId::from_bytes(((u128::from(a) << 64) | u128::from(b)).to_le_bytes())
}

fn payload(n: u64) -> Vec<u8> {
    let mut p = format!("workflow {n}: ").into_bytes();
    p.resize(PAYLOAD, b'.');
    p
}

/// Writes the version-2 and version-1 files for `n` workflows (once).
fn files(dir: &Path, n: u64) -> (PathBuf, PathBuf) {
    let v2 = dir.join(format!("store-{n}.v2"));
    let v1 = dir.join(format!("store-{n}.v1"));
    if !v2.exists() {
        let mut writer = WorkflowStoreWriter::create(&v2).expect("a writable report directory");
        for i in 0..n {
            writer.add(spec_id(i), &payload(i)).expect("distinct ids");
        }
        writer.finish().expect("the store is written");
    }
    if !v1.exists() {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&v1).expect("writable"));
        for i in 0..n {
            let data = payload(i);
            out.write_all(spec_id(i).as_bytes()).expect("writable");
            out.write_all(&(data.len() as u64).to_le_bytes())
                .expect("writable");
            out.write_all(&data).expect("writable");
        }
        out.flush().expect("writable");
    }
    (v2, v1)
}

/// The design document's index: every entry's place, by id.
fn scan(bytes: &[u8]) -> HashMap<WorkflowSpecId, (usize, usize)> {
    let mut index = HashMap::new();
    let mut at = 0;
    while at + FRAME <= bytes.len() {
        let id = WorkflowSpecId::from_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
        let len = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().expect("8 bytes")) as usize;
        index.insert(id, (at + FRAME, len));
        at += FRAME + len;
    }
    index
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let sizes: &[u64] = if cfg.quick {
        &[1000, 100_000]
    } else {
        &[1000, 100_000, 1_000_000]
    };
    ctx.begin(SECTION.name, sizes.len() * 7);
    let dir = crate::report_dir().join("store-bench");
    std::fs::create_dir_all(&dir).expect("a writable report directory");
    let rounds = if cfg.quick { 5 } else { 11 };

    let paths: Vec<(u64, PathBuf, PathBuf)> = sizes
        .iter()
        .map(|&n| {
            let (v2, v1) = files(&dir, n);
            (n, v2, v1)
        })
        .collect();
    // knhk's opens take microseconds and the baselines' take up to
    // seconds, tearing down gigabytes of mappings and buffers as they go:
    // timed in the same rounds, that teardown lands on knhk's samples. So
    // knhk's opens are measured first, before any baseline has run, and
    // every size in the same rounds, so that the machine's drift lands on
    // all sizes alike (the open/1000 to open/1000000 ratio is a target).
    let mut opens = SideBySide::new();
    for (_, v2, _) in &paths {
        opens = opens.sampled("knhk_v2", move || {
            // Several opens per sample; the stores are closed after the
            // timed part.
            let (stores, mut s) = timed(|| {
                (0..OPENS)
                    .map(|_| MmapWorkflowStore::new(v2).expect("valid store"))
                    .collect::<Vec<_>>()
            });
            black_box(stores.iter().map(|s| s.len()).sum::<usize>());
            s.ops = OPENS as u64;
            s
        });
    }
    let opens = opens.run_rounds(3 * rounds);

    for ((n, v2, v1), knhk) in paths.iter().zip(opens) {
        let n = *n;
        let mut results = vec![knhk];
        results.extend(
            SideBySide::new()
                .sampled("v1_scan", || {
                    let (store, mut s) = timed(|| MmapWorkflowStore::new(v1).expect("valid store"));
                    black_box(store.len());
                    s.ops = 1;
                    s
                })
                .sampled("read_scan", || {
                    let (index, mut s) = timed(|| {
                        let bytes = std::fs::read(v1).expect("readable");
                        let index = scan(&bytes);
                        (bytes, index)
                    });
                    black_box(index.1.len());
                    s.ops = 1;
                    s
                })
                .run_rounds(rounds),
        );
        ctx.record_all(&format!("open/{n}"), results);

        let store = MmapWorkflowStore::new(v2).expect("valid store");
        let bytes = std::fs::read(v1).expect("readable");
        let index = scan(&bytes);
        let mut rng = 0x1234_5678_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let hits: Vec<WorkflowSpecId> = (0..LOOKUPS).map(|_| spec_id(next() % n)).collect();
        let misses: Vec<WorkflowSpecId> = (0..LOOKUPS).map(|_| spec_id(n + next() % n)).collect();
        assert!(hits
            .iter()
            .all(|id| store.get_workflow(id) == index.get(id).map(|&(s, l)| &bytes[s..s + l])));
        for (case, ids) in [("get_hit", &hits), ("get_miss", &misses)] {
            let results = SideBySide::new()
                .batch(cfg, "knhk_v2", LOOKUPS as u64, || {
                    for id in ids {
                        black_box(store.get_workflow(black_box(id)));
                    }
                })
                .batch(cfg, "hashmap", LOOKUPS as u64, || {
                    for id in ids {
                        black_box(index.get(black_box(id)).map(|&(s, l)| &bytes[s..s + l]));
                    }
                })
                .run(cfg);
            ctx.record_all(&format!("{case}/{n}"), results);
        }
    }
}
