//! Realistic workflow specifications, for trying and measuring stores
//! without data of one's own: Turtle (RDF) text in the YAWL vocabulary.
//!
//! Each specification is a net of tasks between an input and an output
//! condition. Every task uses one of the 43 workflow control-flow patterns
//! of knhk's catalogue (by number and name), with the split and join types
//! the pattern implies, flows to later tasks (some with a predicate), and a
//! few documentation strings; the net declares typed variables. Sizes run
//! from 1 KiB to 32 KiB, skewed towards small: the target size is
//! `1 KiB · 2^(5u²)` for `u` uniform in `[0, 1)`, so half the specs are
//! under about 2.2 KiB and one in ten over about 16 KiB.
//!
//! The output depends only on the seed (xorshift64*): the same seed gives
//! the same ids and the same bytes on every machine.
//!
//! ```
//! use knhk_store::generate::{Generator, MAX_SPEC, MIN_SPEC};
//!
//! let specs: Vec<_> = Generator::new(7).take(20).collect();
//! assert!(specs.iter().all(|s| (MIN_SPEC..=MAX_SPEC).contains(&s.text.len())));
//! assert!(specs[0].text.starts_with("@prefix yawl:"));
//! let again: Vec<_> = Generator::new(7).take(20).collect();
//! assert_eq!(specs, again);
//! ```

use std::fmt::Write as _;

use knhk_std::initialization::{PatternInfo, CATALOGUE};
use knhk_std::WorkflowSpecId;

/// The seed `knhk-store generate` uses unless given one.
pub const DEFAULT_SEED: u64 = 0x4B4E_484B_5354_4F52;
/// The smallest specification, in bytes.
pub const MIN_SPEC: usize = 1024;
/// The largest specification, in bytes.
pub const MAX_SPEC: usize = 32 * 1024;

/// One generated specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Its id (a version-4 UUID drawn from the seed).
    pub id: WorkflowSpecId,
    /// Its Turtle text, `MIN_SPEC` to `MAX_SPEC` bytes of ASCII.
    pub text: String,
}

/// An endless, deterministic sequence of specifications.
#[derive(Clone, Debug)]
pub struct Generator {
    state: u64,
    made: u64,
}

const VERBS: [&str; 16] = [
    "Review",
    "Approve",
    "Check",
    "Ship",
    "Invoice",
    "Notify",
    "Validate",
    "Archive",
    "Escalate",
    "Schedule",
    "Assess",
    "Dispatch",
    "Reconcile",
    "Record",
    "Register",
    "Close",
];
const NOUNS: [&str; 16] = [
    "order", "claim", "invoice", "shipment", "payment", "contract", "request", "ticket", "account",
    "report", "refund", "quote", "delivery", "customer", "supplier", "audit",
];
const TYPES: [(&str, &str); 5] = [
    ("xsd:decimal", "0"),
    ("xsd:string", "\"pending\""),
    ("xsd:boolean", "false"),
    ("xsd:integer", "0"),
    ("xsd:dateTime", "\"1970-01-01T00:00:00Z\""),
];
const PHRASES: [&str; 12] = [
    "is checked against the current policy before it moves on",
    "waits for the responsible team to confirm",
    "is escalated when the deadline passes",
    "records its outcome for the audit trail",
    "runs only for the customers flagged above",
    "may be retried up to three times",
    "hands its result to every branch that follows",
    "is skipped when the amount is below the threshold",
    "notifies the requester by mail",
    "merges the results of the parallel branches",
    "cancels the remaining work of the region",
    "starts one instance per line item",
];

impl Generator {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator {
            // xorshift needs a non-zero state.
            state: seed ^ 0x9E37_79B9_7F4A_7C15 | 1,
            made: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }

    fn id(&mut self) -> WorkflowSpecId {
        let mut bytes = [0_u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        // A version-4, variant-1 UUID, as a real system would make.
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        WorkflowSpecId::from_bytes(bytes)
    }

    /// The next specification.
    pub fn spec(&mut self) -> Spec {
        let id = self.id();
        let u = self.unit();
        let target = ((MIN_SPEC as f64) * 2_f64.powf(5.0 * u * u)) as usize;
        let target = target.clamp(MIN_SPEC, MAX_SPEC);
        let base = format!("urn:uuid:{}", uuid_text(&id));
        let mut text = String::with_capacity(target + 512);
        let noun = self.pick(&NOUNS);
        let phrase = self.pick(&PHRASES);
        let made = self.made;
        let _ = write!(
            text,
            "@prefix yawl: <http://www.yawlfoundation.org/yawlschema#> .\n\
             @prefix knhk: <urn:knhk:> .\n\
             @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n\
             @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n\n\
             <{base}> a yawl:Specification ;\n    \
             rdfs:label \"{} process {}\" ;\n    \
             yawl:documentation \"The {noun} process: each {noun} {}.\" ;\n    \
             yawl:hasDecomposition <{base}#net> .\n\n",
            capitalised(noun),
            made,
            phrase,
        );
        let variables = 2 + self.below(5);
        let _ = write!(
            text,
            "<{base}#net> a yawl:Net ;\n    yawl:isRootNet true ;\n    \
             yawl:hasInputCondition <{base}#start> ;\n    \
             yawl:hasOutputCondition <{base}#end>"
        );
        for v in 0..variables {
            let _ = write!(text, " ;\n    yawl:hasLocalVariable <{base}#var-{v}>");
        }
        text.push_str(" .\n\n");
        for v in 0..variables {
            let (kind, initial) = TYPES[self.below(TYPES.len())];
            let _ = writeln!(
                text,
                "<{base}#var-{v}> a yawl:Variable ; yawl:name \"{}{}\" ; \
                 yawl:type {kind} ; yawl:initialValue {initial} .",
                self.pick(&NOUNS),
                capitalised(self.pick(&VERBS)),
            );
        }
        let _ = write!(
            text,
            "\n<{base}#start> a yawl:InputCondition ; yawl:flowsInto <{base}#task-0> .\n\
             <{base}#end> a yawl:OutputCondition .\n"
        );
        // Tasks until the target size, never past the largest size.
        let mut task = 0;
        loop {
            let block = self.task(&base, task, variables);
            let closing = format!("<{base}#task-{}> a yawl:Task ; rdfs:label \"Close\" ; yawl:flowsInto <{base}#end> .\n", task + 1);
            if task > 0 && text.len() + block.len() + closing.len() > target.max(MIN_SPEC) {
                if text.len() + closing.len() < MIN_SPEC {
                    // Too small yet: pad with documentation, not tasks.
                    let pad = MIN_SPEC - text.len() - closing.len();
                    let _ = writeln!(text, "# {}", "-".repeat(pad.saturating_sub(3)));
                }
                text.push_str(&closing);
                break;
            }
            text.push_str(&block);
            task += 1;
        }
        self.made += 1;
        Spec { id, text }
    }

    /// One task's triples, flowing to the next task (and some back to an
    /// earlier one).
    fn task(&mut self, base: &str, task: usize, variables: usize) -> String {
        let info: &PatternInfo = &CATALOGUE[self.below(CATALOGUE.len())];
        let (join, split) = control_types(info.id.0);
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "\n<{base}#task-{task}> a yawl:Task ;\n    \
             rdfs:label \"{} {} {task}\" ;\n    \
             knhk:pattern {} ; knhk:patternName \"{}\" ;\n    \
             yawl:hasJoin yawl:ControlType{join} ; yawl:hasSplit yawl:ControlType{split} ;\n    \
             yawl:flowsInto <{base}#flow-{task}-{}>",
            self.pick(&VERBS),
            self.pick(&NOUNS),
            info.id.0,
            info.name,
            task + 1,
        );
        // A second flow, back to an earlier task (a loop, taken when its
        // predicate holds), so that every flow names a task that exists.
        let branch = (task > 0 && (split != "Xor" || self.below(4) == 0))
            .then(|| task - 1 - self.below(task.min(3)));
        if let Some(other) = branch {
            let _ = write!(out, " , <{base}#flow-{task}-{other}>");
        }
        if self.below(3) == 0 {
            let _ = write!(
                out,
                " ;\n    yawl:documentation \"This step {}.\"",
                self.pick(&PHRASES)
            );
        }
        out.push_str(" .\n");
        let _ = writeln!(
            out,
            "<{base}#flow-{task}-{}> a yawl:FlowsInto ; yawl:nextElementRef <{base}#task-{}> .",
            task + 1,
            task + 1
        );
        if let Some(other) = branch {
            let var = self.below(variables);
            let _ = writeln!(
                out,
                "<{base}#flow-{task}-{other}> a yawl:FlowsInto ; yawl:nextElementRef <{base}#task-{other}> ; \
                 yawl:predicate \"/net/var-{var} > {}\" .",
                self.below(10_000)
            );
        }
        out
    }
}

impl Iterator for Generator {
    type Item = Spec;

    fn next(&mut self) -> Option<Spec> {
        Some(self.spec())
    }
}

/// The join and split types a pattern implies (YAWL's And, Xor, Or).
fn control_types(pattern: u32) -> (&'static str, &'static str) {
    match pattern {
        2 | 42 => ("Xor", "And"),      // parallel split, thread split
        3 | 33 | 41 => ("And", "Xor"), // synchronization and its kin
        4 => ("Xor", "Xor"),           // exclusive choice
        6 => ("Xor", "Or"),            // multi-choice
        7 | 37 | 38 => ("Or", "Xor"),  // synchronizing merges
        _ => ("Xor", "Xor"),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The id in the usual 8-4-4-4-12 hex form.
pub fn uuid_text(id: &WorkflowSpecId) -> String {
    let b = id.as_bytes();
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_range_and_lean_small() {
        let mut sizes: Vec<usize> = Generator::new(DEFAULT_SEED)
            .take(2000)
            .map(|s| s.text.len())
            .collect();
        assert!(
            sizes.iter().all(|&n| (MIN_SPEC..=MAX_SPEC).contains(&n)),
            "{sizes:?}"
        );
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((1500..4000).contains(&median), "median {median}");
        assert!(
            sizes[sizes.len() * 95 / 100] > 16 * 1024,
            "a tail of large specs"
        );
    }

    #[test]
    fn the_seed_decides_everything() {
        let a: Vec<_> = Generator::new(1).take(50).collect();
        let b: Vec<_> = Generator::new(1).take(50).collect();
        let c: Vec<_> = Generator::new(2).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut ids: Vec<_> = a.iter().map(|s| s.id).collect();
        ids.sort_unstable_by_key(|id| *id.as_bytes());
        ids.dedup();
        assert_eq!(ids.len(), 50, "ids are distinct");
    }

    #[test]
    fn specs_read_as_yawl_turtle_over_the_catalogue() {
        for spec in Generator::new(3).take(200) {
            let text = &spec.text;
            assert!(text.is_ascii());
            assert!(text.contains(&format!(
                "<urn:uuid:{}> a yawl:Specification",
                uuid_text(&spec.id)
            )));
            assert!(text.contains("a yawl:Task"));
            for line in text.lines().filter(|l| l.contains("knhk:pattern ")) {
                let n: u32 = line
                    .split("knhk:pattern ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .expect("a pattern number");
                assert!((1..=43).contains(&n), "{line}");
            }
            // Every statement ends with " ." and every flow names a target.
            assert_eq!(
                text.matches("a yawl:FlowsInto").count(),
                text.matches("yawl:nextElementRef").count()
            );
        }
    }

    #[test]
    fn uuid_text_is_the_usual_form() {
        let id = WorkflowSpecId::from_bytes([0xAB; 16]);
        assert_eq!(uuid_text(&id), "abababab-abab-abab-abab-abababababab");
    }
}
