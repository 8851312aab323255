//! Section `typed`: loading a workflow spec by id into something an engine
//! can walk. 10,000 specs (about 4 KiB each: 10 to 70 tasks with their
//! pattern, gates and documentation, flows with predicates, variables),
//! stored three ways and loaded by random id:
//!
//! - `knhk_archived`: rkyv archives in a knhk store; lookup, validation
//!   (bytecheck) and access in place (`get_archived`);
//! - `knhk_archived_verified`: the same after `verify_archived`: a lookup;
//! - `serde_json`: JSON in a knhk store; lookup and `serde_json::from_slice`;
//! - `postcard`: postcard in a knhk store; lookup and `postcard::from_bytes`.
//!
//! Cases: `load/10000`, ns and heap allocations per load (each subject
//! reads the task count, so the load is used); `walk/10000`, a load plus
//! the sum of every task's pattern number (the access is real, and the
//! deserializers' owned values are dropped after it, as an engine's are).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use knhk_std::store::rkyv;
use knhk_std::store::{MmapWorkflowStore, WorkflowStoreWriter};
use knhk_std::WorkflowSpecId;
use serde::{Deserialize, Serialize};

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::heap_count;
use crate::targets::Target;

/// The typed-workflow section.
pub const SECTION: Section = Section {
    name: "typed",
    about:
        "typed workflow specs: rkyv archives in the store vs serde_json and postcard, load and walk",
    run,
    targets: &[
        Target::RatioAtLeast {
            case: "load/10000",
            numerator: "postcard",
            denominator: "knhk_archived_verified",
            min: 20.0,
        },
        Target::RatioAtLeast {
            case: "load/10000",
            numerator: "serde_json",
            denominator: "knhk_archived_verified",
            min: 20.0,
        },
        Target::RatioAtLeast {
            case: "load/10000",
            numerator: "postcard",
            denominator: "knhk_archived",
            min: 3.0,
        },
        Target::RatioAtLeast {
            case: "load/10000",
            numerator: "serde_json",
            denominator: "knhk_archived",
            min: 3.0,
        },
        Target::AllocationsAtMost {
            case: "load/10000",
            subject: "knhk_archived_verified",
            max: 0.0,
        },
    ],
};

const SPECS: u64 = 10_000;
/// Loads per timed call, of random ids.
const LOADS: usize = 4096;

/// A workflow specification, archivable and serde-serializable.
#[derive(rkyv::Archive, rkyv::Serialize, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
pub struct Spec {
    name: String,
    tasks: Vec<Task>,
    flows: Vec<Flow>,
    variables: Vec<(String, String)>,
}

#[derive(rkyv::Archive, rkyv::Serialize, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct Task {
    name: String,
    pattern: u8,
    split: u8,
    join: u8,
    documentation: Option<String>,
}

#[derive(rkyv::Archive, rkyv::Serialize, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct Flow {
    from: u16,
    to: u16,
    predicate: Option<String>,
}

/// Spec `n`, reproducibly.
fn spec(n: u64) -> Spec {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    let count = 10 + next(61) as u16;
    let tasks = (0..count)
        .map(|t| Task {
            name: format!("Review and approve step {t}"),
            pattern: 1 + next(43) as u8,
            split: next(3) as u8,
            join: next(3) as u8,
            documentation: (next(3) == 0).then(|| {
                format!("Step {t} of workflow {n}: check the order against the customer's limit.")
            }),
        })
        .collect();
    let flows = (1..count)
        .map(|t| Flow {
            from: t - 1,
            to: t,
            predicate: (next(4) == 0).then(|| format!("/net/amount > {}", next(10_000))),
        })
        .collect();
    Spec {
        name: format!("workflow {n}"),
        tasks,
        flows,
        variables: (0..4)
            .map(|v| (format!("var{v}"), "xs:decimal".to_string()))
            .collect(),
    }
}

/// A subject's load of one id (walking the tasks, or not).
type Load<'a> = dyn Fn(&WorkflowSpecId, bool) -> u64 + 'a;

fn spec_id(n: u64) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes((u128::from(n) ^ 0x7ED5_5EED).to_le_bytes())
}

/// The three stores (written once).
fn files(dir: &Path) -> [PathBuf; 3] {
    let name = |kind: &str| {
        dir.join(format!(
            "typed-{SPECS}-{kind}.{}",
            crate::store_layout_tag()
        ))
    };
    let [archived, json, post] = [name("rkyv"), name("json"), name("postcard")];
    if !archived.exists() || !json.exists() || !post.exists() {
        let mut a = WorkflowStoreWriter::create(&archived).expect("a writable report directory");
        let mut j = WorkflowStoreWriter::create(&json).expect("a writable report directory");
        let mut p = WorkflowStoreWriter::create(&post).expect("a writable report directory");
        for n in 0..SPECS {
            let s = spec(n);
            a.add_archived(spec_id(n), &s).expect("archivable");
            j.add(spec_id(n), &serde_json::to_vec(&s).expect("serializable"))
                .expect("distinct ids");
            p.add(
                spec_id(n),
                &postcard::to_allocvec(&s).expect("serializable"),
            )
            .expect("distinct ids");
        }
        for w in [a, j, p] {
            w.finish().expect("the store is written");
        }
    }
    [archived, json, post]
}

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    ctx.begin(SECTION.name, 8);
    let dir = crate::report_dir().join("typed-bench");
    std::fs::create_dir_all(&dir).expect("a writable report directory");
    let [archived, json, post] = files(&dir);
    let archived = MmapWorkflowStore::new(&archived).expect("a valid store");
    let json = MmapWorkflowStore::new(&json).expect("a valid store");
    let post = MmapWorkflowStore::new(&post).expect("a valid store");
    let typed = archived
        .verify_archived::<Spec>()
        .expect("every archive validates");
    let mut x = 0x0005_DEEC_E66D_u64;
    let ids: Vec<WorkflowSpecId> = (0..LOADS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            spec_id(x % SPECS)
        })
        .collect();
    let sizes: [f64; 3] = [&archived, &json, &post].map(|s| s.size() as f64 / SPECS as f64);
    eprintln!(
        "           bytes per spec: rkyv {:.0}, JSON {:.0}, postcard {:.0}",
        sizes[0], sizes[1], sizes[2]
    );

    // Each subject's load, handing back the task count (and, walking, the
    // sum of the tasks' patterns).
    let archived_load = |id: &WorkflowSpecId, walk: bool| -> u64 {
        let spec = archived
            .get_archived::<Spec>(id)
            .expect("valid")
            .expect("present");
        if walk {
            spec.tasks.iter().map(|t| u64::from(t.pattern)).sum()
        } else {
            spec.tasks.len() as u64
        }
    };
    let verified_load = |id: &WorkflowSpecId, walk: bool| -> u64 {
        let spec = typed.get(id).expect("present");
        if walk {
            spec.tasks.iter().map(|t| u64::from(t.pattern)).sum()
        } else {
            spec.tasks.len() as u64
        }
    };
    let json_load = |id: &WorkflowSpecId, walk: bool| -> u64 {
        let spec: Spec = serde_json::from_slice(json.get(id).expect("present")).expect("valid");
        if walk {
            spec.tasks.iter().map(|t| u64::from(t.pattern)).sum()
        } else {
            spec.tasks.len() as u64
        }
    };
    let postcard_load = |id: &WorkflowSpecId, walk: bool| -> u64 {
        let spec: Spec = postcard::from_bytes(post.get(id).expect("present")).expect("valid");
        if walk {
            spec.tasks.iter().map(|t| u64::from(t.pattern)).sum()
        } else {
            spec.tasks.len() as u64
        }
    };
    let loads: [(&'static str, &Load); 4] = [
        ("knhk_archived", &archived_load),
        ("knhk_archived_verified", &verified_load),
        ("serde_json", &json_load),
        ("postcard", &postcard_load),
    ];
    for (_, load) in &loads {
        assert_eq!(load(&ids[0], true), archived_load(&ids[0], true));
    }

    for (case, walk) in [("load/10000", false), ("walk/10000", true)] {
        let mut side = SideBySide::new();
        for (name, load) in &loads {
            let ids = &ids;
            side = side.batch(cfg, name, LOADS as u64, move || {
                for id in ids {
                    black_box(load(black_box(id), walk));
                }
            });
        }
        ctx.record_all(case, side.run(cfg));
    }
    for (name, load) in &loads {
        let ((), allocations, bytes) = heap_count::count(|| {
            for id in &ids {
                black_box(load(id, false));
            }
        });
        ctx.annotate(
            "load/10000",
            name,
            allocations as f64 / LOADS as f64,
            bytes as f64 / LOADS as f64,
        );
    }
}
