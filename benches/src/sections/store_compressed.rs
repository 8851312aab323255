//! Section `store_compressed`: stores of generated workflow specifications
//! (`knhk_store::generate`, its default seed: YAWL Turtle, 1 to 32 KiB,
//! skewed small), written three ways: `knhk_dict` (compressed, format
//! version 4, with a dictionary trained on the first workflows: knhk's
//! default), `zstd_plain` (the same level, each workflow compressed on its
//! own) and `uncompressed` (version 3).
//!
//! Cases: `size/100000`, each file's bytes and bytes per workflow (rows
//! with no time); `open/n`, mapping and parsing the store (for compressed
//! stores this includes checking and digesting the dictionary);
//! `get/100000`, a lookup of a random id and reading the workflow into a
//! buffer that is reused (decompressing it, for the compressed stores; a
//! copy for the uncompressed one), per workflow; and `get_arena/100000`,
//! the same into a `GrowingArena` reset every 64 reads, with the heap
//! allocations counted.
//!
//! The files are written once and kept between runs (their names say the
//! writer's format and the generator's seed). `open/1000000` (knhk_dict
//! only: about 6 GB of specifications to generate and compress, once) is
//! measured in full runs, not with `--quick`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use knhk_std::arena::GrowingArena;
use knhk_std::store::{Compression, MmapWorkflowStore, WorkflowStoreWriter};
use knhk_std::WorkflowSpecId;
use knhk_store::generate::{Generator, DEFAULT_SEED};

use super::{Context, Section};
use crate::harness::{timed, SideBySide};
use crate::heap_count;
use crate::row::Field;
use crate::targets::Target;

/// The compressed-store section.
pub const SECTION: Section = Section {
    name: "store_compressed",
    about: "compressed workflow stores: zstd with a shared dictionary vs zstd alone vs uncompressed; size, open, get",
    run,
    targets: &[
        Target::FieldRatioAtMost {
            case: "size/100000",
            numerator: "knhk_dict",
            denominator: "uncompressed",
            field: Field::BytesPerWorkflow,
            max: 0.25,
        },
        Target::FieldRatioAtMost {
            case: "size/100000",
            numerator: "knhk_dict",
            denominator: "zstd_plain",
            field: Field::BytesPerWorkflow,
            max: 1.0 / 1.5,
        },
        Target::ratio_at_most("get/100000", "knhk_dict", "zstd_plain", 1.0),
        Target::Flat {
            subject: "knhk_dict",
            from: "open/1000",
            to: "open/1000000",
            max: 1.5,
        },
        Target::AllocationsAtMost {
            case: "get_arena/100000",
            subject: "knhk_dict",
            max: 0.0,
        },
    ],
};

/// The store the size and read cases use.
const N: u64 = 100_000;
/// Random reads per timed call.
const LOOKUPS: usize = 16_384;
/// Reads between arena resets in `get_arena`.
const BATCH: usize = 64;
/// Opens per sample (an open is microseconds).
const OPENS: usize = 16;

/// The three ways of writing a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dictionary,
    Plain,
    Uncompressed,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Dictionary, Kind::Plain, Kind::Uncompressed];

    fn subject(self) -> &'static str {
        match self {
            Kind::Dictionary => "knhk_dict",
            Kind::Plain => "zstd_plain",
            Kind::Uncompressed => "uncompressed",
        }
    }

    fn writer(self, path: &Path) -> WorkflowStoreWriter {
        let mut compression = Compression::default();
        let made = match self {
            Kind::Dictionary => WorkflowStoreWriter::create_compressed(path, compression),
            Kind::Plain => {
                compression.dictionary = false;
                WorkflowStoreWriter::create_compressed(path, compression)
            }
            Kind::Uncompressed => WorkflowStoreWriter::create(path),
        };
        made.expect("a writable report directory")
    }
}

/// The store of `n` generated specifications written as `kind` (once).
fn file(dir: &Path, n: u64, kind: Kind) -> PathBuf {
    let path = dir.join(format!(
        "specs-{n}-{}.{}.s{DEFAULT_SEED:x}",
        kind.subject(),
        crate::store_layout_tag()
    ));
    if !path.exists() {
        eprintln!(
            "           writing {} ({n} generated specifications, once)",
            path.display()
        );
        let mut writer = kind.writer(&path);
        for spec in Generator::new(DEFAULT_SEED).take(n as usize) {
            writer
                .add(spec.id, spec.text.as_bytes())
                .expect("generated ids are distinct");
        }
        writer.finish().expect("the store is written");
    }
    path
}

/// Random picks from `ids`, reproducibly.
fn picks(ids: &[WorkflowSpecId], count: usize) -> Vec<WorkflowSpecId> {
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ids[(x % ids.len() as u64) as usize]
        })
        .collect()
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    let dir = crate::report_dir().join("store-compressed-bench");
    std::fs::create_dir_all(&dir).expect("a writable report directory");
    let dict_sizes: &[u64] = if cfg.quick {
        &[1000, N]
    } else {
        &[1000, N, 1_000_000]
    };
    ctx.begin(SECTION.name, 3 + 3 + 2 + dict_sizes.len() + 3 + 1);
    let rounds = if cfg.quick { 5 } else { 11 };

    // Sizes.
    let stores: Vec<(Kind, PathBuf)> = Kind::ALL.iter().map(|&k| (k, file(&dir, N, k))).collect();
    for (kind, path) in &stores {
        let bytes = std::fs::metadata(path).expect("written above").len();
        ctx.record_size(&format!("size/{N}"), kind.subject(), bytes, N);
    }

    // Opens: every size of knhk's in the same rounds (their ratio is a
    // target), the baselines at the sizes they are written at.
    let mut opens: Vec<(String, &'static str, PathBuf)> = dict_sizes
        .iter()
        .map(|&n| {
            (
                format!("open/{n}"),
                Kind::Dictionary.subject(),
                file(&dir, n, Kind::Dictionary),
            )
        })
        .collect();
    for n in [1000, N] {
        for kind in [Kind::Plain, Kind::Uncompressed] {
            opens.push((format!("open/{n}"), kind.subject(), file(&dir, n, kind)));
        }
    }
    let mut side = SideBySide::new();
    for (_, subject, path) in &opens {
        side = side.sampled(subject, move || {
            let (stores, mut s) = timed(|| {
                (0..OPENS)
                    .map(|_| MmapWorkflowStore::new(path).expect("a valid store"))
                    .collect::<Vec<_>>()
            });
            black_box(stores.iter().map(|s| s.len()).sum::<usize>());
            s.ops = OPENS as u64;
            s
        });
    }
    for ((case, _, _), (subject, m)) in opens.iter().zip(side.run_rounds(3 * rounds)) {
        ctx.record(case, subject, m);
    }

    // Reads.
    let open: Vec<(Kind, MmapWorkflowStore)> = stores
        .iter()
        .map(|(k, p)| (*k, MmapWorkflowStore::new(p).expect("a valid store")))
        .collect();
    let ids = picks(&open[0].1.list_workflows(), LOOKUPS);
    for (_, store) in &open {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for id in &ids[..64] {
            assert!(store.read_into(id, &mut a).expect("readable"));
            assert!(open[2].1.read_into(id, &mut b).expect("readable"));
            assert_eq!(a, b, "every store holds the same specifications");
        }
    }
    let mut side = SideBySide::new();
    for (kind, store) in &open {
        let ids = &ids;
        let mut buffer = Vec::new();
        side = side.batch(cfg, kind.subject(), LOOKUPS as u64, move || {
            for id in ids {
                store
                    .read_into(black_box(id), &mut buffer)
                    .expect("readable");
                black_box(buffer.first());
            }
        });
    }
    ctx.record_all(&format!("get/{N}"), side.run(cfg));

    let dict = &open[0].1;
    let mut arena = GrowingArena::new();
    let pass = |arena: &mut GrowingArena| {
        for batch in ids.chunks(BATCH) {
            for id in batch {
                let spec = dict.read_in(black_box(id), &*arena).expect("readable");
                black_box(spec.map(|s| s[0]));
            }
            arena.reset();
        }
    };
    pass(&mut arena);
    let case = format!("get_arena/{N}");
    let results = SideBySide::new()
        .batch(cfg, Kind::Dictionary.subject(), LOOKUPS as u64, || {
            pass(&mut arena)
        })
        .run(cfg);
    ctx.record_all(&case, results);
    let mut counted = GrowingArena::new();
    pass(&mut counted);
    let ((), allocations, bytes) = heap_count::count(|| pass(&mut counted));
    ctx.annotate(
        &case,
        Kind::Dictionary.subject(),
        allocations as f64 / LOOKUPS as f64,
        bytes as f64 / LOOKUPS as f64,
    );
}
