//! Typed workflows straight from the mapped file: 10,000 workflow specs
//! written as rkyv archives, then a batch executor that looks each one up
//! by id and walks its tasks and flows in place: no parsing, no
//! allocation per load.
//!
//! ```text
//! cargo run --release -p knhk-std --features rkyv --example typed_workflows [SPECS]
//! ```

use std::error::Error;
use std::time::Instant;

use knhk_std::initialization::CATALOGUE;
use knhk_std::store::rkyv::{Archive, Deserialize, Serialize};
use knhk_std::store::{MmapWorkflowStore, WorkflowStoreWriter};
use knhk_std::WorkflowSpecId;

/// A workflow specification as an engine holds it.
#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct WorkflowSpec {
    name: String,
    tasks: Vec<Task>,
    flows: Vec<Flow>,
    variables: Vec<Variable>,
}

#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct Task {
    name: String,
    /// The control-flow pattern it follows, 1 to 43.
    pattern: u8,
    split: Gate,
    join: Gate,
    documentation: Option<String>,
}

#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv, derive(PartialEq))]
enum Gate {
    And,
    Xor,
    Or,
}

#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct Flow {
    from: u16,
    to: u16,
    predicate: Option<String>,
}

#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(crate = knhk_std::store::rkyv)]
struct Variable {
    name: String,
    kind: String,
}

/// A reproducible spec: 5 to 40 tasks in a chain with some shortcuts.
fn spec(n: u64) -> WorkflowSpec {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    let gate = |g: u64| match g {
        0 => Gate::And,
        1 => Gate::Xor,
        _ => Gate::Or,
    };
    let count = 5 + next(36) as u16;
    let tasks = (0..count)
        .map(|t| {
            let pattern = &CATALOGUE[next(43) as usize];
            Task {
                name: format!("{} step {t}", pattern.name),
                pattern: pattern.id.0 as u8,
                split: gate(next(3)),
                join: gate(next(3)),
                documentation: (next(4) == 0)
                    .then(|| format!("Task {t} of workflow {n}: see the runbook.")),
            }
        })
        .collect();
    let mut flows: Vec<Flow> = (1..count)
        .map(|t| Flow {
            from: t - 1,
            to: t,
            predicate: None,
        })
        .collect();
    for _ in 0..count / 4 {
        let from = next(u64::from(count - 1)) as u16;
        flows.push(Flow {
            from,
            to: from + 1 + next(u64::from(count - from - 1)) as u16,
            predicate: Some(format!("/net/amount > {}", next(10_000))),
        });
    }
    WorkflowSpec {
        name: format!("workflow {n}"),
        tasks,
        flows,
        variables: (0..3)
            .map(|v| Variable {
                name: format!("var{v}"),
                kind: ["xs:string", "xs:decimal", "xs:boolean"][v].into(),
            })
            .collect(),
    }
}

fn id(n: u64) -> WorkflowSpecId {
    WorkflowSpecId::from_bytes(
        (u128::from(n) * 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835).to_le_bytes(),
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    let specs: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 10_000,
    };
    let dir = std::env::temp_dir().join(format!("knhk-typed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("typed.store");

    // Write: each spec an archive, aligned in the file.
    let mut writer = WorkflowStoreWriter::create(&path)?;
    for n in 0..specs {
        writer.add_archived(id(n), &spec(n))?;
    }
    let bytes = writer.finish()?;
    println!("wrote {specs} typed specs ({bytes} bytes)");

    // Validate every archive once; from then on a load is a lookup.
    let store = MmapWorkflowStore::new(&path)?;
    let typed = store.verify_archived::<WorkflowSpec>()?;

    // The batch executor: batches of 1000 ids, each spec walked in place.
    let started = Instant::now();
    let (mut tasks, mut gated, mut guarded) = (0_u64, 0_u64, 0_u64);
    for batch in (0..specs).collect::<Vec<_>>().chunks(1000) {
        for &n in batch {
            let spec = typed.get(&id(n)).ok_or("every spec was written")?;
            for task in spec.tasks.iter() {
                tasks += 1;
                if task.split == ArchivedGate::Xor && task.pattern <= 43 {
                    gated += 1;
                }
            }
            guarded += spec.flows.iter().filter(|f| f.predicate.is_some()).count() as u64;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "walked {specs} specs: {tasks} tasks ({gated} with an XOR split), {guarded} guarded flows \
         in {:.2} ms ({:.0} ns per spec)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / specs.max(1) as f64
    );

    // A checked load, as an engine that does not verify up front makes.
    let checked = store
        .get_archived::<WorkflowSpec>(&id(7))?
        .ok_or("spec 7")?;
    assert_eq!(checked.name, "workflow 7");
    assert_eq!(checked.tasks.len(), spec(7).tasks.len());

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
