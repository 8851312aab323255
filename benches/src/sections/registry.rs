//! Section `registry`: looking up every one of the 43 patterns once, in
//! knhk-core's spin-based `PatternTable`, in knhk-std's `PatternRegistry`,
//! in a plain `OnceLock<HashMap>` and in a `Mutex<HashMap>`. `ns_per_op` is
//! per lookup.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};

use knhk_core::patterns::PatternId;
use knhk_core::registry::PatternTable;
use knhk_std::initialization::{
    ExecutionError, PatternExecutor, PatternMap, PatternRegistry, TaskContext,
};

use super::{Context, Section};
use crate::harness::SideBySide;
use crate::targets::Target;

/// The registry section.
pub const SECTION: Section = Section {
    name: "registry",
    about: "43 pattern lookups: spin slots, PatternRegistry, OnceLock<HashMap>, Mutex<HashMap>",
    run,
    targets: &[
        Target::NsAtMost {
            case: "get/43",
            subject: "knhk_core",
            max: 2.0,
        },
        Target::TicksAtMost {
            case: "get/43",
            subject: "knhk_core",
            max: 8.0,
        },
        Target::RatioAtMost {
            case: "get/43",
            numerator: "knhk_core",
            denominator: "oncelock_hashmap",
            max: 1.0,
        },
        Target::RatioAtLeast {
            case: "get/43",
            numerator: "mutex_hashmap",
            denominator: "knhk_core",
            min: 10.0,
        },
    ],
};

struct Noop(PatternId);

impl PatternExecutor for Noop {
    fn pattern_id(&self) -> PatternId {
        self.0
    }
    fn execute(&self, _: &mut TaskContext<'_, '_>) -> Result<(), ExecutionError> {
        Ok(())
    }
}

type Executor = Arc<dyn PatternExecutor>;

static CORE_TABLE: PatternTable<Executor> = PatternTable::new();
static STD_REGISTRY: PatternRegistry = PatternRegistry::new();
static ONCE_MAP: OnceLock<HashMap<PatternId, Executor>> = OnceLock::new();

fn run(ctx: &mut Context) {
    let cfg = ctx.cfg;
    ctx.begin(SECTION.name, 4);
    let executors: PatternMap = PatternId::all()
        .map(|id| (id, Arc::new(Noop(id)) as Executor))
        .collect();
    for (&id, executor) in &executors {
        let _ = CORE_TABLE.register(id, Arc::clone(executor));
    }
    STD_REGISTRY.get_or_init(|| executors.clone());
    ONCE_MAP.get_or_init(|| executors.clone());
    let locked = Mutex::new(executors.clone());
    let ids: Vec<PatternId> = PatternId::all().collect();

    let results = SideBySide::new()
        .batch(cfg, "knhk_core", 43, || {
            for id in black_box(&ids) {
                black_box(CORE_TABLE.get(*id));
            }
        })
        .batch(cfg, "knhk_std", 43, || {
            for id in black_box(&ids) {
                black_box(STD_REGISTRY.get(id));
            }
        })
        .batch(cfg, "oncelock_hashmap", 43, || {
            for id in black_box(&ids) {
                black_box(ONCE_MAP.get().and_then(|m| m.get(id)));
            }
        })
        .batch(cfg, "mutex_hashmap", 43, || {
            for id in black_box(&ids) {
                let map = locked.lock().unwrap_or_else(|e| e.into_inner());
                black_box(map.get(id));
            }
        })
        .run(cfg);
    ctx.record_all("get/43", results);
}
